package receiptgen

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"

	"github.com/lanebridge/lanebridge/protocol"
)

// bakeryDE: a German bakery till on an Epson-compatible printer, CP858, 40 columns, decimal
// comma, prices include 7 % VAT (printed as "enth. MwSt"), a quantity line under the
// description for several of one item and for goods sold by weight, tax class letter after
// each amount, drawer kick on cash. Framed by ESC @ … GS V.
func bakeryDE() *Layout {
	return &Layout{
		Name: "bakery-de", Dialect: "escpos", CodePage: "CP858", Currency: "EUR", width: 40,
		enc: charmap.CodePage858, framed: escposFrame(true, 19), taxIncl: true, rate: 7,
		catalog: []product{{"Brötchen Weizen", 45, false}, {"Roggenbrot 750g", 389, false}, {"Croissant", 129, false},
			{"Laugenbrezel", 85, false}, {"Käsekuchen Stück", 260, false}, {"Kaffee Crema", 240, false},
			{"Müsliriegel", 149, false}, {"Streuselschnecke", 175, false}, {"Oliven lose", 1890, true}, {"Dinkelvollkorn", 429, false}},
		render: renderDE, z: zDE,
	}
}

func de(v int64) string { return money(v, ",", ".", 2) }

func renderDE(l *Layout, t *tx) []string {
	out := []string{l.center("Bäckerei Sonnenschein"), l.center("Hauptstraße 5 · 10115 Berlin"), l.center("Tel. 030 1234567"), strings.Repeat("-", l.width)}
	switch t.kind {
	case protocol.KindReturn:
		out = append(out, "\x00B"+l.center("RÜCKGABE"))
	case protocol.KindVoid:
		out = append(out, "\x00B"+l.center("*** STORNO ***"))
	case protocol.KindNoSale:
		out = append(out, "\x00B"+l.center("KEIN VERKAUF"))
	}
	out = append(out, l.lr(fmt.Sprintf("Bon-Nr. %d", t.receipt), "Kasse 2"), l.lr("Datum: "+t.at.Format("02.01.2006"), t.at.Format("15:04:05")), strings.Repeat("-", l.width))
	if t.kind == protocol.KindNoSale {
		return append(out, "\x1bp", l.center("Vielen Dank!"))
	}
	sign := t.sign()
	for _, li := range t.lines {
		switch {
		case strings.Contains(li.Quantity, "."):
			out = append(out, li.Description, l.lr(fmt.Sprintf("  %s kg x %s EUR/kg", strings.Replace(li.Quantity, ".", ",", 1), de(li.UnitPrice)), de(sign*li.Amount)+" A"))
		case li.Quantity != "1":
			out = append(out, li.Description, l.lr(fmt.Sprintf("  %s x %s", li.Quantity, de(li.UnitPrice)), de(sign*li.Amount)+" A"))
		default:
			out = append(out, l.lr(li.Description, de(sign*li.Amount)+" A"))
		}
	}
	out = append(out, strings.Repeat("-", l.width), l.lr("SUMME EUR", de(sign*t.total)))
	for _, tn := range t.tenders {
		switch tn.Type {
		case protocol.TenderCard:
			out = append(out, l.lr("EC-Karte", de(tn.Amount)), "  Karte ************"+tn.Card.Last4)
		default:
			out = append(out, l.lr("Bar", de(sign*tn.Amount)))
		}
	}
	if t.change > 0 {
		out = append(out, l.lr("Rückgeld", de(t.change)))
	}
	if t.kind != protocol.KindVoid {
		out = append(out, l.lr("enth. MwSt 7% A", de(sign*t.tax)))
	}
	out = t.drawer(out)
	return append(out, "", l.center("Vielen Dank!"), l.center("Steuer-Nr. 12/345/67890"))
}

func zDE(l *Layout, z *protocol.ZReport, n int, at time.Time) []string {
	return []string{l.center("Bäckerei Sonnenschein"), strings.Repeat("-", l.width), "\x00B" + l.center(fmt.Sprintf("Z-BERICHT Nr. %04d", n)),
		l.lr("Datum: "+at.Format("02.01.2006"), at.Format("15:04:05")), strings.Repeat("-", l.width),
		l.lr("Umsatz brutto", de(z.Gross)), l.lr(fmt.Sprintf("Retouren %d", z.Refunds.Count), de(z.Refunds.Amount)),
		l.lr(fmt.Sprintf("Storno %d", z.Voids.Count), de(z.Voids.Amount)), l.lr("Netto", de(z.Net)),
		l.lr("Kein Verkauf", fmt.Sprint(z.NoSaleCount)), strings.Repeat("-", l.width)}
}

// konbiniJP: a Japanese convenience store, Shift_JIS (Kanji mode), 32 half-width columns,
// yen without minor units, "¥" before amounts, prices including 8 % consumption tax, a
// quantity line "2個 × ¥130" under an item. No ESC @: receipts end at the cut only.
func konbiniJP() *Layout {
	return &Layout{
		Name: "konbini-jp", Dialect: "escpos", CodePage: "shift_jis", Currency: "JPY", width: 32,
		enc: japanese.ShiftJIS, framed: escposFrame(false, -1), taxIncl: true, voidTax: true, rate: 8,
		catalog: []product{{"おにぎり 鮭", 150, false}, {"緑茶 500ml", 130, false}, {"サンドイッチ", 298, false},
			{"からあげ棒", 180, false}, {"カップ麺", 214, false}, {"プリン", 160, false}, {"ボールペン", 110, false}, {"のり弁当", 450, false}},
		render: renderJP, z: zJP,
	}
}

func yen(v int64) string {
	if v < 0 {
		return "-￥" + money(-v, ".", ",", 0)
	}
	return "￥" + money(v, ".", ",", 0)
}

func renderJP(l *Layout, t *tx) []string {
	out := []string{l.center("ハッピーマート 渋谷店"), l.center("東京都渋谷区道玄坂1-2-3"), l.center("TEL 03-1234-5678"),
		t.at.Format("2006年01月02日 15:04"), fmt.Sprintf("レジ01   No.%04d", t.receipt)}
	switch t.kind {
	case protocol.KindReturn:
		out = append(out, "\x00B"+l.center("返品"))
	case protocol.KindVoid:
		out = append(out, "\x00B"+l.center("取消"))
	case protocol.KindNoSale:
		out = append(out, "\x00B"+l.center("ノーセール"))
		return append(out, "\x1bp")
	}
	sign := t.sign()
	count := 0
	for _, li := range t.lines {
		out = append(out, l.lr(li.Description, yen(sign*li.Amount)))
		if li.Quantity != "1" {
			out = append(out, fmt.Sprintf("   %s個 × ￥%d", li.Quantity, li.UnitPrice))
		}
		var q int
		fmt.Sscan(li.Quantity, &q)
		count += q
	}
	out = append(out, l.lr(fmt.Sprintf("小計  %d点", count), yen(sign*t.total)), l.lr("(内消費税 8%", yen(sign*t.tax)+")"), l.lr("合計", yen(sign*t.total)))
	for _, tn := range t.tenders {
		if tn.Type == protocol.TenderCard {
			out = append(out, l.lr("クレジット", yen(tn.Amount)), "カード番号 ************"+tn.Card.Last4)
		} else {
			out = append(out, l.lr("お預り", yen(sign*tn.Amount)))
		}
	}
	if t.change > 0 || (len(t.tenders) > 0 && t.tenders[0].Type == protocol.TenderCash && t.kind == protocol.KindSale) {
		out = append(out, l.lr("お釣り", yen(t.change)))
	}
	return append(out, l.center("ありがとうございました"))
}

func zJP(l *Layout, z *protocol.ZReport, n int, at time.Time) []string {
	return []string{l.center("ハッピーマート 渋谷店"), at.Format("2006年01月02日 15:04"), "\x00B" + l.center(fmt.Sprintf("精算レポート Z%04d", n)),
		l.lr("総売上", yen(z.Gross)), l.lr(fmt.Sprintf("返品 %d", z.Refunds.Count), yen(z.Refunds.Amount)),
		l.lr(fmt.Sprintf("取消 %d", z.Voids.Count), yen(z.Voids.Amount)), l.lr("純売上", yen(z.Net)), l.lr("ノーセール", fmt.Sprint(z.NoSaleCount))}
}

// cafeKR: a Korean café's POS writing a plain-text journal (UTF-8, CR LF, no printer
// commands), 42 columns: item columns name / quantity / amount, won without minor units and
// without a symbol, VAT 10 % on top of the prices. Receipts are told apart by their first
// line only.
func cafeKR() *Layout {
	return &Layout{
		Name: "cafe-kr", Dialect: "plain", CodePage: "UTF-8", Currency: "KRW", width: 42,
		framed: plainFrame, taxIncl: false, voidTax: true, rate: 10,
		catalog: []product{{"아메리카노", 4500, false}, {"카페라떼", 5000, false}, {"바닐라라떼", 5500, false},
			{"치즈케이크", 6500, false}, {"크루아상", 3800, false}, {"녹차", 4000, false}},
		render: renderKR, z: zKR,
	}
}

func won(v int64) string { return money(v, ".", ",", 0) }

func renderKR(l *Layout, t *tx) []string {
	out := []string{"[영수증] 카페 서울숲", "서울시 성동구 서울숲길 12", fmt.Sprintf("거래번호: %06d", t.receipt), "일시: " + t.at.Format("2006-01-02 15:04:05"), strings.Repeat("=", l.width)}
	switch t.kind {
	case protocol.KindReturn:
		out = append(out, l.center("반품"))
	case protocol.KindVoid:
		out = append(out, l.center("취소"))
	case protocol.KindNoSale:
		return append(out, l.center("노세일"), strings.Repeat("=", l.width))
	}
	sign := t.sign()
	out = append(out, l.lr("상품명        수량", "금액"), strings.Repeat("-", l.width))
	for _, li := range t.lines {
		name := li.Description + strings.Repeat(" ", max(1, 14-width(li.Description)))
		out = append(out, l.lr(name+fmt.Sprintf("%4s", li.Quantity), won(sign*li.Amount)))
	}
	out = append(out, strings.Repeat("-", l.width), l.lr("공급가액", won(sign*(t.total-t.tax))), l.lr("부가세", won(sign*t.tax)), l.lr("합계", won(sign*t.total)))
	for _, tn := range t.tenders {
		if tn.Type == protocol.TenderCard {
			out = append(out, l.lr("신용카드", won(tn.Amount)), "카드번호: ************"+tn.Card.Last4)
		} else {
			out = append(out, l.lr("현금", won(sign*tn.Amount)))
		}
	}
	if t.change > 0 {
		out = append(out, l.lr("거스름돈", won(t.change)))
	}
	return append(out, strings.Repeat("=", l.width))
}

func zKR(l *Layout, z *protocol.ZReport, n int, at time.Time) []string {
	return []string{"[영수증] 카페 서울숲", "일시: " + at.Format("2006-01-02 15:04:05"), l.center(fmt.Sprintf("일일마감 Z%04d", n)), strings.Repeat("=", l.width),
		l.lr("총매출", won(z.Gross)), l.lr(fmt.Sprintf("반품 %d", z.Refunds.Count), won(z.Refunds.Amount)),
		l.lr(fmt.Sprintf("취소 %d", z.Voids.Count), won(z.Voids.Amount)), l.lr("순매출", won(z.Net)), l.lr("노세일", fmt.Sprint(z.NoSaleCount)), strings.Repeat("=", l.width)}
}
