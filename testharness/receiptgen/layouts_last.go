package receiptgen

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/lanebridge/lanebridge/protocol"
)

// LastLayouts returns two layouts written after every change to the draft code and run blind;
// TestDraftLastLayouts holds them to their first-run figures (see the issue 12 report).
func LastLayouts() []*Layout { return []*Layout{superNL(), quanVN()} }

// superNL: a Dutch supermarket, ESC/POS CP858, 40 columns, decimal comma, "TOTAAL", "PIN" and
// "Contant", "Wisselgeld", BTW 9 % included in a BTW table, bonus lines are not printed.
func superNL() *Layout {
	return &Layout{
		Name: "super-nl", Dialect: "escpos", CodePage: "CP858", Currency: "EUR", width: 40,
		enc: charmap.CodePage858, framed: escposFrame(true, 19), taxIncl: true, voidTax: true, rate: 9,
		catalog: []product{{"HALFVOLLE MELK 1L", 119, false}, {"BRUIN BROOD", 229, false}, {"GOUDA JONG 500G", 549, false},
			{"APPELS ELSTAR", 249, false}, {"HAGELSLAG", 199, false}, {"KOFFIE 250G", 389, false}},
		render: renderNL, z: zNL,
	}
}

func nl(v int64) string { return money(v, ",", ".", 2) }

func renderNL(l *Layout, t *tx) []string {
	out := []string{l.center("BUURTSUPER DE HOEK"), l.center("Kerkstraat 12, 1011 AB Amsterdam"), strings.Repeat("=", l.width)}
	switch t.kind {
	case protocol.KindReturn:
		out = append(out, l.center("RETOUR"))
	case protocol.KindVoid:
		out = append(out, l.center("GEANNULEERD"))
	case protocol.KindNoSale:
		return append(out, l.center("LADE OPEN"), fmt.Sprintf("Bon %d  %s", t.receipt, t.at.Format("02-01-2006 15:04")), "\x1bp")
	}
	sign := t.sign()
	for _, li := range t.lines {
		if li.Quantity == "1" {
			out = append(out, l.lr(li.Description, nl(sign*li.Amount)))
		} else {
			out = append(out, l.lr(fmt.Sprintf("%s x %s", li.Quantity, li.Description), nl(sign*li.Amount)))
		}
	}
	out = append(out, strings.Repeat("-", l.width), l.lr(fmt.Sprintf("TOTAAL %d ARTIKELEN", len(t.lines)), nl(sign*t.total)))
	for _, tn := range t.tenders {
		if tn.Type == protocol.TenderCard {
			out = append(out, l.lr("PIN", nl(tn.Amount)), "Kaart: ************"+tn.Card.Last4)
		} else {
			out = append(out, l.lr("Contant", nl(sign*tn.Amount)))
		}
	}
	if t.change > 0 {
		out = append(out, l.lr("Wisselgeld", nl(t.change)))
	}
	out = append(out, "BTW      Over      Bedrag", fmt.Sprintf("9%%   %8s  %8s", nl(sign*(t.total-t.tax)), nl(sign*t.tax)),
		fmt.Sprintf("Bon %d  %s", t.receipt, t.at.Format("02-01-2006 15:04")), l.center("Bedankt en tot ziens!"))
	return t.drawer(out)
}

func zNL(l *Layout, z *protocol.ZReport, n int, at time.Time) []string {
	return []string{l.center("BUURTSUPER DE HOEK"), l.center(fmt.Sprintf("Z-RAPPORT %d", n)), at.Format("02-01-2006 15:04"), strings.Repeat("=", l.width),
		l.lr("Bruto omzet", nl(z.Gross)), l.lr(fmt.Sprintf("Retouren %d", z.Refunds.Count), nl(z.Refunds.Amount)),
		l.lr(fmt.Sprintf("Annuleringen %d", z.Voids.Count), nl(z.Voids.Amount)), l.lr("Netto omzet", nl(z.Net)), l.lr("Lade open", fmt.Sprint(z.NoSaleCount))}
}

// quanVN: a Vietnamese café, plain text UTF-8 (LF), 32 columns, đồng without decimals grouped
// with ".", "TỔNG CỘNG", "TIỀN MẶT", "TIỀN THỐI", VAT 8 % added.
func quanVN() *Layout {
	return &Layout{
		Name: "quan-vn", Dialect: "plain", CodePage: "UTF-8", Currency: "VND", width: 32,
		framed: plainFrameLF, taxIncl: false, voidTax: true, rate: 8,
		catalog: []product{{"Cà phê sữa đá", 29000, false}, {"Bạc xỉu", 32000, false}, {"Trà đào", 35000, false},
			{"Bánh mì thịt", 25000, false}, {"Nước cam", 30000, false}},
		render: renderVN, z: zVN,
	}
}

func vnd(v int64) string { return money(v, ",", ".", 0) }

func renderVN(l *Layout, t *tx) []string {
	out := []string{"QUÁN CÀ PHÊ SÀI GÒN", "12 Lê Lợi, Q.1, TP.HCM", fmt.Sprintf("Số HĐ: %d", t.receipt), "Ngày: " + t.at.Format("02/01/2006 15:04"), strings.Repeat("-", l.width)}
	switch t.kind {
	case protocol.KindReturn:
		out = append(out, l.center("TRẢ HÀNG"))
	case protocol.KindVoid:
		out = append(out, l.center("HỦY HÓA ĐƠN"))
	case protocol.KindNoSale:
		return append(out, l.center("MỞ KÉT"))
	}
	sign := t.sign()
	for _, li := range t.lines {
		out = append(out, li.Description, l.lr(fmt.Sprintf("  %s x %s", li.Quantity, vnd(li.UnitPrice)), vnd(sign*li.Amount)))
	}
	out = append(out, strings.Repeat("-", l.width), l.lr("Thuế VAT 8%", vnd(sign*t.tax)), l.lr("TỔNG CỘNG", vnd(sign*t.total)))
	for _, tn := range t.tenders {
		if tn.Type == protocol.TenderCard {
			out = append(out, l.lr("THẺ", vnd(tn.Amount)), "Số thẻ: ************"+tn.Card.Last4)
		} else {
			out = append(out, l.lr("TIỀN MẶT", vnd(sign*tn.Amount)))
		}
	}
	if t.change > 0 {
		out = append(out, l.lr("TIỀN THỐI", vnd(t.change)))
	}
	return append(out, "Cảm ơn quý khách!")
}

func zVN(l *Layout, z *protocol.ZReport, n int, at time.Time) []string {
	return []string{"QUÁN CÀ PHÊ SÀI GÒN", "Ngày: " + at.Format("02/01/2006 15:04"), fmt.Sprintf("BÁO CÁO Z %d", n), strings.Repeat("-", l.width),
		l.lr("Doanh thu gộp", vnd(z.Gross)), l.lr(fmt.Sprintf("Trả hàng %d", z.Refunds.Count), vnd(z.Refunds.Amount)),
		l.lr(fmt.Sprintf("Hủy %d", z.Voids.Count), vnd(z.Voids.Amount)), l.lr("Doanh thu thuần", vnd(z.Net)), l.lr("Mở két", fmt.Sprint(z.NoSaleCount))}
}

// plainFrameLF: text lines with LF, receipts separated by a blank line.
func plainFrameLF(lines []string) []byte {
	var b strings.Builder
	for _, s := range lines {
		if s != "\x1bp" {
			b.WriteString(strings.TrimPrefix(s, "\x00B") + "\n")
		}
	}
	b.WriteString("\n")
	return []byte(b.String())
}
