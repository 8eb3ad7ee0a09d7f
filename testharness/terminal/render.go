package terminal

import (
	"bytes"
	"fmt"
	"strings"
)

func (g *Generator) render(t *txn) []byte {
	if t.kind == "void" {
		t.tax, t.tenders, t.change, t.discount = 0, nil, 0, 0
	}
	switch g.profile {
	case "sharp-journal":
		return g.renderSharp(t)
	case "casio-journal":
		return g.renderCasio(t)
	default:
		return g.renderEpson(t)
	}
}

func (g *Generator) renderZ(receipt int) []byte {
	switch g.profile {
	case "sharp-journal":
		return g.zSharp(receipt)
	case "casio-journal":
		return g.zCasio(receipt)
	default:
		return g.zEpson(receipt)
	}
}

// ---- Sharp ER-A style journal ----

// sharpCols is the journal width: amounts end in column 28, as in
// pos-samples/synthetic/sharp-style-journal.txt.
const sharpCols = 28

func (g *Generator) sharpHeader(w *bytes.Buffer, receipt int) {
	y, m, d := g.date[0], g.date[1], g.date[2]
	fmt.Fprintf(w, "%02d/%02d/%04d %02d:%02d  #%04d  %s\nCLERK01\n", m, d, y, (g.minute/60)%24, g.minute%60, receipt, g.terminal)
}

func (g *Generator) renderSharp(t *txn) []byte {
	var w bytes.Buffer
	g.sharpHeader(&w, t.receipt)
	sign := int64(1)
	switch t.kind {
	case "no_sale":
		w.WriteString("            NO SALE\n")
		return w.Bytes()
	case "return":
		w.WriteString("REFUND\n")
		sign = -1
	case "void":
		w.WriteString("*** VOID MODE ***\n")
	}
	for _, it := range t.items {
		col(&w, sharpCols, fmt.Sprintf("DEPT%02s          T1", it.desc), money(sign*it.qty*it.unit, true))
		if it.qty > 1 {
			fmt.Fprintf(&w, "  %d @ %s\n", it.qty, money(it.unit, true))
		}
		if it.voided {
			w.WriteString("VOID\n")
			col(&w, sharpCols, fmt.Sprintf("DEPT%02s          T1", it.desc), money(-it.qty*it.unit, true))
		}
	}
	if t.kind == "sale" {
		col(&w, sharpCols, "SUBTOTAL", money(t.net(), true))
		col(&w, sharpCols, "TXBL1", money(t.net(), true))
	}
	if t.kind != "void" {
		// A refund prints its tax but no subtotal or taxable line, as in
		// pos-samples/synthetic/sharp-style-journal.txt.
		col(&w, sharpCols, "TAX1", money(sign*t.tax, true))
	}
	col(&w, sharpCols, "TOTAL", money(sign*t.total(), true))
	if t.kind == "void" {
		col(&w, sharpCols, "CASH", money(t.total(), true))
	}
	for _, td := range t.tenders {
		name := td.name
		if name == "CARD" {
			name = "CHARGE"
		}
		col(&w, sharpCols, name, money(sign*td.amount, true))
	}
	if t.change > 0 {
		col(&w, sharpCols, "CHANGE", money(t.change, true))
	}
	return w.Bytes()
}

func (g *Generator) zSharp(receipt int) []byte {
	var w bytes.Buffer
	g.sharpHeader(&w, receipt)
	fmt.Fprintf(&w, "Z1   GENERAL           %04d\n", 1)
	fmt.Fprintf(&w, "+DEPT TL    Q %5d\n", g.day.nSale)
	col(&w, 27, "", money(g.day.gross, true))
	col(&w, 27, "TXBL1", money(g.day.net, true))
	col(&w, 27, "TAX1", money(g.day.tax, true))
	fmt.Fprintf(&w, "REFUND      Q %6d\n", g.day.nRefund)
	col(&w, 27, "", money(-g.day.refunds, true))
	fmt.Fprintf(&w, "VOID        Q %6d\n", g.day.nVoid)
	col(&w, 27, "", money(-g.day.voids, true))
	fmt.Fprintf(&w, "NO SALE %12d\n", g.day.nNoSale)
	fmt.Fprintf(&w, "CASH        Q %5d\n", g.day.nCash)
	col(&w, 27, "", money(g.day.cash, true))
	fmt.Fprintf(&w, "CHARGE      Q %5d\n", g.day.nCard)
	col(&w, 27, "", money(g.day.card, true))
	col(&w, 27, "GT", money(g.day.gt, true))
	return w.Bytes()
}

// ---- Casio TE/SE style journal ----

// casioCols is where amounts end on the journal, as in
// pos-samples/synthetic/casio-style-journal.txt: column 25 for "$" amounts, one less for the
// discount line, which prints none.
const casioCols = 25

func (g *Generator) casioHeader(w *bytes.Buffer, mode string, receipt int) {
	y, m, d := g.date[0], g.date[1], g.date[2]
	fmt.Fprintf(w, "%02d-%02d-%04d %02d:%02d\n%-3s %s %06d\n", d, m, y, (g.minute/60)%24, g.minute%60, mode, g.terminal, receipt)
}

func (g *Generator) renderCasio(t *txn) []byte {
	var w bytes.Buffer
	mode := "REG"
	if t.kind == "return" {
		mode = "RF"
	}
	g.casioHeader(&w, mode, t.receipt)
	if t.kind == "no_sale" {
		w.WriteString("#/NS     ************\n")
		return w.Bytes()
	}
	for _, it := range t.items {
		col(&w, casioCols, fmt.Sprintf(" %d DEPT%03s", it.qty, it.desc), money(it.qty*it.unit, true))
		if it.qty > 1 {
			fmt.Fprintf(&w, "   @%s\n", money(it.unit, false))
		}
	}
	if t.kind == "void" {
		w.WriteString("CANCEL   ************\n")
		return w.Bytes()
	}
	if t.discount > 0 {
		w.WriteString("   10%\n")
		col(&w, casioCols-1, "   %-", money(-t.discount, false))
	}
	col(&w, casioCols, "TL", money(t.total(), true))
	for _, td := range t.tenders {
		name := td.name
		if name == "CARD" {
			name = "CH"
		}
		col(&w, casioCols, name, money(td.amount, true))
	}
	if t.change > 0 {
		col(&w, casioCols, "CG", money(t.change, true))
	}
	return w.Bytes()
}

func (g *Generator) zCasio(receipt int) []byte {
	var w bytes.Buffer
	g.casioHeader(&w, "Z", receipt)
	w.WriteString("Z      DAILY Z\nZ      FIX          0001\n")
	col(&w, 24, "GROSS", fmt.Sprint(g.day.nSale))
	col(&w, 24, "", money(g.day.gross, true))
	col(&w, 24, "NET           No", fmt.Sprint(g.day.nSale))
	col(&w, 24, "", money(g.day.net, true))
	col(&w, 24, "CAID", money(g.day.cash, true))
	col(&w, 24, "CHID", money(g.day.card, true))
	col(&w, 24, "RF            No", fmt.Sprint(g.day.nRefund))
	col(&w, 24, "", money(g.day.refunds, true))
	col(&w, 24, "CANCEL        No", fmt.Sprint(g.day.nVoid))
	col(&w, 24, "", money(g.day.voids, true))
	fmt.Fprintf(&w, "GT   $%017s\n", money(g.day.gt, false))
	return w.Bytes()
}

// ---- Epson TM receipt printer (ESC/POS) ----

const (
	escInit = "\x1b@"
	cut     = "\x1dV\x00"
	drawer  = "\x1bp\x002\xfa"
	boldOn  = "\x1bE\x01"
	boldOff = "\x1bE\x00"
)

func (g *Generator) epsonLine(w *bytes.Buffer, s string) { w.WriteString(s + "\n\r") }

// epsonCol right-aligns value in 42 printed columns: style commands take no column.
func (g *Generator) epsonCol(w *bytes.Buffer, label, value string) {
	g.epsonLine(w, label+strings.Repeat(" ", max(2, 42-printed(label)-printed(value)))+value)
}

// printed is the number of columns s takes on paper: its ESC E n (bold) commands print nothing.
func printed(s string) int {
	return len(s) - 3*(strings.Count(s, boldOn)+strings.Count(s, boldOff))
}

func (g *Generator) epsonHeader(w *bytes.Buffer, title string, receipt int, trans bool) {
	y, m, d := g.date[0], g.date[1], g.date[2]
	w.WriteString(escInit)
	g.epsonLine(w, "             "+boldOn+"DEMO MART #0042"+boldOff)
	g.epsonLine(w, "            12 Example Street")
	if title != "" {
		g.epsonLine(w, strings.Repeat(" ", (42-len(title))/2)+title)
	}
	g.epsonLine(w, fmt.Sprintf("%02d/%02d/%04d %02d:%02d  %s  CLERK 07", m, d, y, (g.minute/60)%24, g.minute%60, g.terminal))
	if trans {
		g.epsonLine(w, fmt.Sprintf("TRANS %06d", receipt))
	}
	g.epsonLine(w, strings.Repeat("-", 42))
}

func (g *Generator) renderEpson(t *txn) []byte {
	var w bytes.Buffer
	title := map[string]string{"sale": "SALE", "return": "RETURN", "void": "SALE", "no_sale": "NO SALE"}[t.kind]
	g.epsonHeader(&w, title, t.receipt, true)
	if t.kind == "no_sale" {
		g.epsonLine(&w, "#/NS")
		w.WriteString(cut + drawer)
		return w.Bytes()
	}
	for _, it := range t.items {
		name := "ITEM " + it.desc
		switch {
		case t.kind == "return":
			g.epsonCol(&w, "RETURN "+name, money(-it.qty*it.unit, false))
		case it.qty > 1:
			g.epsonCol(&w, fmt.Sprintf("%d @ %s  %s", it.qty, money(it.unit, false), name), money(it.qty*it.unit, false))
		default:
			g.epsonCol(&w, name, money(it.unit, false))
		}
		if it.sku != "" {
			g.epsonLine(&w, "  PLU "+it.sku)
		}
		if it.voided {
			g.epsonCol(&w, "VOID "+name, money(-it.qty*it.unit, false))
		}
	}
	switch t.kind {
	case "void":
		g.epsonLine(&w, "*** TRANSACTION VOID ***")
		w.WriteString(cut)
		return w.Bytes()
	case "return":
		g.epsonCol(&w, "TAX 8.25%", money(-t.tax, false))
		g.epsonCol(&w, boldOn+"REFUND TOTAL", money(-t.total(), false)+boldOff)
		g.epsonCol(&w, "CASH REFUND", money(t.total(), false))
		g.epsonLine(&w, fmt.Sprintf("ORIG TRANS %06d", t.original))
		w.WriteString(cut + drawer)
		return w.Bytes()
	}
	if t.discount > 0 {
		g.epsonCol(&w, "  DISC 10%", money(-t.discount, false))
	}
	g.epsonCol(&w, "SUBTOTAL", money(t.net(), false))
	g.epsonCol(&w, "TAX 8.25%", money(t.tax, false))
	g.epsonCol(&w, boldOn+"TOTAL", money(t.total(), false)+boldOff)
	for _, td := range t.tenders {
		if td.name == "CARD" {
			g.epsonCol(&w, "VISA ************1111", money(td.amount, false))
		} else {
			g.epsonCol(&w, "CASH", money(td.amount, false))
		}
	}
	if t.change > 0 {
		g.epsonCol(&w, "CHANGE", money(t.change, false))
	}
	w.WriteString(cut + drawer)
	return w.Bytes()
}

func (g *Generator) zEpson(receipt int) []byte {
	var w bytes.Buffer
	g.epsonHeader(&w, "", receipt, false)
	g.epsonLine(&w, fmt.Sprintf("        Z REPORT  Z %04d", receipt))
	g.epsonCol(&w, fmt.Sprintf("GROSS SALES  QT %d", g.day.nSale), money(g.day.gross, false))
	// This layout's NET is what the drawer and cards took (tax included): Σtenders = net.
	g.epsonCol(&w, fmt.Sprintf("NET SALES  NO %d", g.day.nSale), money(g.day.cash+g.day.card, false))
	g.epsonCol(&w, fmt.Sprintf("REFUND  NO %d", g.day.nRefund), money(-g.day.refunds, false))
	g.epsonCol(&w, fmt.Sprintf("VOID  NO %d", g.day.nVoid), money(-g.day.voids, false))
	g.epsonLine(&w, fmt.Sprintf("NO SALE  NO %d", g.day.nNoSale))
	g.epsonCol(&w, "CASH", money(g.day.cash, false))
	g.epsonCol(&w, "CARD", money(g.day.card, false))
	g.epsonCol(&w, "TAX 1", money(g.day.tax, false))
	g.epsonCol(&w, "GT", money(g.day.gt, false))
	w.WriteString(cut)
	return w.Bytes()
}
