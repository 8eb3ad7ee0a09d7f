package receiptgen

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/lanebridge/lanebridge/protocol"
)

// UnseenLayouts returns the third pair of layouts, written after the draft code had passed on
// the other five and run once before any change: super-cl 0 of 41 right (quantity read into
// the description of its quantity-first item column, "NOTA DE CREDITO - DEVOLUCION" and
// "APERTURA DE CAJON" not known as titles; money right on all 41), grocer-us 17 of 41 (its
// 12-hour times: the sample's "AM" was taken literally, so afternoon receipts had no date and
// were quarantined); none silently wrong about money. Quantity-first columns, longer titles and
// 12-hour times were then added to the draft.
func UnseenLayouts() []*Layout { return []*Layout{superCL(), grocerUS()} }

// superCL: a Chilean supermarket "boleta", ESC/POS CP850, 42 columns, pesos without decimals
// printed "$12.990", quantity first in the item line, VAT 19 % included, "TOTAL A PAGAR".
func superCL() *Layout {
	return &Layout{
		Name: "super-cl", Dialect: "escpos", CodePage: "CP850", Currency: "CLP", width: 42,
		enc: charmap.CodePage850, framed: escposFrame(true, 2), taxIncl: true, voidTax: true, rate: 19,
		catalog: []product{{"LECHE ENTERA 1L", 1090, false}, {"PAN MARRAQUETA", 1990, false}, {"ACEITE MARAVILLA 1L", 2890, false},
			{"ARROZ GRADO 1 1KG", 1490, false}, {"TE CEYLAN 100 BOLS", 2390, false}, {"BEBIDA COLA 3L", 2590, false}},
		render: renderCL, z: zCL,
	}
}

func clp(v int64) string {
	if v < 0 {
		return "-$" + money(-v, ",", ".", 0)
	}
	return "$" + money(v, ",", ".", 0)
}

func renderCL(l *Layout, t *tx) []string {
	out := []string{l.center("SUPERMERCADO EL ANDES"), l.center("AV. PROVIDENCIA 1234, SANTIAGO"), l.center("RUT: 76.123.456-7"),
		l.center(fmt.Sprintf("BOLETA ELECTRONICA N° %07d", t.receipt)), "FECHA: " + t.at.Format("02/01/2006") + "   HORA: " + t.at.Format("15:04"),
		"CAJA: 03   CAJERO: MARIA", strings.Repeat("-", l.width)}
	switch t.kind {
	case protocol.KindReturn:
		out = append(out, l.center("NOTA DE CREDITO - DEVOLUCION"))
	case protocol.KindVoid:
		out = append(out, l.center("BOLETA ANULADA"))
	case protocol.KindNoSale:
		return append(out, l.center("APERTURA DE CAJON"), "\x1bp")
	}
	out = append(out, "CANT DESCRIPCION                     TOTAL")
	sign := t.sign()
	for _, li := range t.lines {
		out = append(out, l.lr(fmt.Sprintf("%-4s %s", li.Quantity, li.Description), clp(sign*li.Amount)))
	}
	out = append(out, strings.Repeat("-", l.width), l.lr("TOTAL A PAGAR", clp(sign*t.total)))
	for _, tn := range t.tenders {
		if tn.Type == protocol.TenderCard {
			out = append(out, l.lr("TARJETA DEBITO", clp(tn.Amount)), "  N° TARJETA: ************"+tn.Card.Last4)
		} else {
			out = append(out, l.lr("EFECTIVO", clp(sign*tn.Amount)))
		}
	}
	if t.change > 0 {
		out = append(out, l.lr("VUELTO", clp(t.change)))
	}
	out = append(out, l.lr("IVA INCLUIDO (19%)", clp(sign*t.tax)), l.center("GRACIAS POR SU COMPRA"))
	out = t.drawer(out)
	return out
}

func zCL(l *Layout, z *protocol.ZReport, n int, at time.Time) []string {
	return []string{l.center("SUPERMERCADO EL ANDES"), "FECHA: " + at.Format("02/01/2006") + "   HORA: " + at.Format("15:04"),
		l.center(fmt.Sprintf("CIERRE DE CAJA Z N° %d", n)), strings.Repeat("-", l.width),
		l.lr("VENTAS BRUTAS", clp(z.Gross)), l.lr(fmt.Sprintf("DEVOLUCIONES %d", z.Refunds.Count), clp(z.Refunds.Amount)),
		l.lr(fmt.Sprintf("ANULACIONES %d", z.Voids.Count), clp(z.Voids.Amount)), l.lr("VENTAS NETAS", clp(z.Net)),
		l.lr("APERTURAS CAJON", fmt.Sprint(z.NoSaleCount))}
}

// grocerUS: a US grocery lane, ESC/POS CP437, 40 columns, a raster logo first, 12-hour
// times, tax flags F/T after amounts, weighed produce "2.31 lb @ 0.59/lb", returns with a
// trailing minus, 8.25 % sales tax on top, "BALANCE DUE" and "CHANGE DUE".
func grocerUS() *Layout {
	return &Layout{
		Name: "grocer-us", Dialect: "escpos", CodePage: "CP437", Currency: "USD", width: 40,
		framed: logoFrame, taxIncl: false, voidTax: true, rate: 8,
		catalog: []product{{"BANANAS", 59, true}, {"WHOLE MILK GAL", 349, false}, {"SODA 12PK", 599, false},
			{"EGGS LARGE DZ", 289, false}, {"WHITE BREAD", 229, false}, {"PEANUT BUTTER", 379, false}, {"APPLES GALA", 149, true}},
		render: renderUS, z: zUS,
	}
}

func us(v int64) string {
	if v < 0 {
		return money(-v, ".", ",", 2) + "-"
	}
	return money(v, ".", ",", 2)
}

func renderUS(l *Layout, t *tx) []string {
	out := []string{l.center("FRESHWAY MARKET #0217"), l.center("1200 Elm St, Springfield IL"), l.center("(217) 555-0142"),
		t.at.Format("01/02/06 3:04 PM") + "  LANE 4  OP 112", fmt.Sprintf("TRANS# %06d", t.receipt)}
	switch t.kind {
	case protocol.KindReturn:
		out = append(out, "\x00B"+l.center("** REFUND **"))
	case protocol.KindVoid:
		out = append(out, "\x00B"+l.center("** VOIDED **"))
	case protocol.KindNoSale:
		return append(out, "\x00B"+l.center("NO SALE"), "\x1bp")
	}
	sign := t.sign()
	n := 0
	for _, li := range t.lines {
		code := " F"
		if li.Description == "SODA 12PK" {
			code = " T"
		}
		if sign < 0 {
			code = ""
		}
		switch {
		case strings.Contains(li.Quantity, "."):
			out = append(out, l.lr(fmt.Sprintf("%s %s lb @ %s/lb", li.Description, li.Quantity, us(li.UnitPrice)), us(sign*li.Amount)+code))
		default:
			out = append(out, l.lr(li.Description, us(sign*li.Amount)+code))
			if li.Quantity != "1" {
				out = append(out, fmt.Sprintf("  %s @ %s", li.Quantity, us(li.UnitPrice)))
			}
		}
		n++
	}
	out = append(out, l.lr("            SUBTOTAL", us(sign*(t.total-t.tax))), l.lr("            TAX 8%", us(sign*t.tax)), l.lr("            BALANCE DUE", us(sign*t.total)))
	for _, tn := range t.tenders {
		if tn.Type == protocol.TenderCard {
			out = append(out, l.lr("            VISA", us(tn.Amount)), "  ACCT ************"+tn.Card.Last4)
		} else {
			out = append(out, l.lr("            CASH", us(sign*tn.Amount)))
		}
	}
	if t.change > 0 {
		out = append(out, l.lr("            CHANGE DUE", us(t.change)))
	}
	out = append(out, fmt.Sprintf("   ITEMS SOLD %d", n), l.center("THANK YOU FOR SHOPPING FRESHWAY"))
	out = t.drawer(out)
	return out
}

func zUS(l *Layout, z *protocol.ZReport, n int, at time.Time) []string {
	return []string{l.center("FRESHWAY MARKET #0217"), at.Format("01/02/06 3:04 PM") + "  LANE 4", "\x00B" + l.center(fmt.Sprintf("END OF DAY REPORT Z%04d", n)),
		l.lr("GROSS SALES", us(z.Gross)), l.lr(fmt.Sprintf("REFUNDS %d", z.Refunds.Count), us(z.Refunds.Amount)),
		l.lr(fmt.Sprintf("VOIDS %d", z.Voids.Count), us(z.Voids.Amount)), l.lr("NET SALES", us(z.Net)), l.lr("NO SALE", fmt.Sprint(z.NoSaleCount))}
}

// logoFrame: ESC @, a 64×24 raster logo (GS v 0), the lines, feed and cut.
func logoFrame(lines []string) []byte {
	var b bytes.Buffer
	b.WriteString("\x1b@\x1dv0\x00\x08\x00\x18\x00")
	for i := 0; i < 8*24; i++ {
		b.WriteByte(byte(i*37) | 0x0a&byte(i))
	}
	b.Write(escposFrame(false, 0)(lines))
	return b.Bytes()
}
