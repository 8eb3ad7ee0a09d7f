package draft

import (
	"regexp"
	"strings"
	"unicode"

	"github.com/lanebridge/lanebridge/protocol"
)

// The keyword table: the words receipts print on the lines a profile must tell apart, in the
// languages of the samples the product meets (English, German, Spanish, Portuguese, French,
// Italian, Dutch, Indonesian/Malay, Japanese, Korean, Chinese). Latin words match whole words,
// case-insensitively; CJK words match anywhere.

var kindWords = []struct {
	kind  protocol.Kind
	words []string
}{
	{protocol.KindZReport, []string{"Z REPORT", "Z-REPORT", "Z-BERICHT", "Z BERICHT", "Z-BON", "TAGESABSCHLUSS", "INFORME Z", "CIERRE Z", "CIERRE DE CAJA", "CIERRE DIARIO", "REPORTE Z", "RELATORIO Z", "RELATÓRIO Z", "LEITURA Z", "REDUÇÃO Z", "REDUCAO Z", "RAPPORT Z", "LAPORAN Z", "Zレポート", "精算", "Z 리포트", "Z리포트", "일일마감", "DAILY Z", "END OF DAY"}},
	{protocol.KindXReport, []string{"X REPORT", "X-REPORT", "X-BERICHT", "INFORME X", "LEITURA X", "LAPORAN X", "Xレポート", "X 리포트"}},
	{protocol.KindNoSale, []string{"NO SALE", "NOSALE", "NO-SALE", "#/NS", "KEIN VERKAUF", "SIN VENTA", "SEM VENDA", "PAS DE VENTE", "NESSUNA VENDITA", "GEEN VERKOOP", "TANPA PENJUALAN", "ノーセール", "노세일", "DRAWER OPEN", "OPEN DRAWER", "LADE GEÖFFNET", "KASSENLADE", "SCHUBLADE", "ABERTURA DE GAVETA", "ABRIR GAVETA", "APERTURA DE CAJÓN", "ABRIR CAJÓN", "APERTURA DE CAJON", "ABRIR CAJON", "OUVERTURE TIROIR", "BUKA LACI", "BUKA LACI KAS"}},
	{protocol.KindVoid, []string{"TRANSACTION VOID", "VOID", "VOIDED", "STORNO", "STORNIERT", "ANNULLIERT", "ANULADO", "ANULADA", "CANCELADO", "CANCELADA", "CUPOM CANCELADO", "VENTA ANULADA", "ANNULÉ", "ANNULE", "ANNULLATO", "取引中止", "取消", "取消し", "거래취소", "취소", "BATAL", "DIBATALKAN", "CANCELLED", "CANCELED", "作废"}},
	{protocol.KindReturn, []string{"RETURN", "REFUND", "RÜCKGABE", "RUECKGABE", "RETOURE", "ERSTATTUNG", "GUTSCHRIFT", "DEVOLUCIÓN", "DEVOLUCION", "DEVOLUÇÃO", "DEVOLUCAO", "REEMBOLSO", "REMBOURSEMENT", "RETOUR", "RESO", "返品", "返金", "반품", "환불", "PENGEMBALIAN", "RETUR", "退货", "退款"}},
}

// Line roles (field rule types, with tenders split by type).
const (
	roleSubtotal   = "subtotal"
	roleChange     = "change"
	roleTax        = "tax"
	roleDiscount   = "discount"
	roleTenderCash = "cash"
	roleTenderCard = "card"
	roleTenderGift = "gift"
	roleTenderChk  = "check"
	roleTenderOth  = "other"
	roleTotal      = "total"
	roleTaxable    = "taxable"
	roleItem       = "item"
)

// roleWords is in priority order: SUBTOTAL before TOTAL, tax before total ("TOTAL TAX").
// prefix: the label must start with the word (tenders, totals); otherwise it may be anywhere.
var roleWords = []struct {
	role   string
	prefix bool
	words  []string
}{
	{roleSubtotal, true, []string{"SUBTOTAL", "SUB TOTAL", "SUB-TOTAL", "ZWISCHENSUMME", "ZW.-SUMME", "ZWISCHENSUMME", "SUBTOTAAL", "SUBTOTALE", "SOUS-TOTAL", "SOUS TOTAL", "SUB JUMLAH", "SUBJUMLAH", "小計", "小计", "소계"}},
	{roleChange, true, []string{"CHANGE", "CHANGE DUE", "RÜCKGELD", "RUECKGELD", "WECHSELGELD", "ZURÜCK", "CAMBIO", "VUELTO", "TROCO", "RENDU", "MONNAIE", "RESTO", "WISSELGELD", "KEMBALI", "KEMBALIAN", "お釣り", "おつり", "お釣", "釣銭", "거스름돈", "거스름", "잔돈", "找零", "找赎"}},
	{roleTaxable, true, []string{"TAXABLE", "TAXABLE AMOUNT", "NETTO", "NETTOBETRAG", "NET AMOUNT", "BASE IMPONIBLE", "BASE", "DPP", "HT", "TOTAL HT", "공급가액", "과세물품가액", "과세물품", "課税対象額", "税抜合計"}},
	{roleTax, false, []string{"TAX", "VAT", "MWST", "MWST.", "MW-ST", "UST", "UST.", "IVA", "I.V.A.", "TVA", "BTW", "GST", "SST", "PPN", "PAJAK", "ICMS", "TRIBUTOS", "TRIBUTOS APROX", "IMPOSTOS", "IMPUESTO", "IMPUESTOS", "IGV", "IMPOSTO", "消費税", "内税", "外税", "부가세", "부가가치세", "세금", "增值税", "税额", "税金"}},
	{roleDiscount, false, []string{"DISCOUNT", "DISC", "RABATT", "NACHLASS", "DESCUENTO", "DESCONTO", "REMISE", "SCONTO", "KORTING", "DISKON", "POTONGAN", "値引", "値引き", "割引", "할인", "折扣", "优惠"}},
	{roleTenderCard, true, []string{"CARD", "CREDIT CARD", "DEBIT CARD", "VISA", "MASTERCARD", "MC", "AMEX", "DISCOVER", "MAESTRO", "DEBIT", "CREDIT", "KARTE", "EC-KARTE", "EC KARTE", "EC", "GIROCARD", "KREDITKARTE", "TARJETA", "CARTÃO", "CARTAO", "CARTE", "CB", "CARTA", "PINNEN", "PIN", "KARTU", "KARTU DEBIT", "KARTU KREDIT", "カード", "クレジット", "카드", "신용카드", "체크카드", "刷卡", "信用卡"}},
	{roleTenderCash, true, []string{"CASH", "CASH TENDERED", "ENTREGADO", "EFECTIVO ENTREGADO", "RECIBIDO", "BAR", "BARGELD", "GEGEBEN", "EFECTIVO", "DINHEIRO", "ESPÈCES", "ESPECES", "CONTANTI", "CONTANT", "KONTANT", "TUNAI", "現金", "お預り", "お預かり", "預り", "현금", "받은금액", "받은돈", "现金"}},
	{roleTenderGift, true, []string{"GIFT", "GIFT CARD", "GUTSCHEIN", "VOUCHER", "VALE", "BON CADEAU", "商品券", "상품권"}},
	{roleTenderChk, true, []string{"CHECK", "CHEQUE", "SCHECK", "CHEQUE BANCAIRE"}},
	{roleTenderOth, true, []string{"QRIS", "PIX", "GOPAY", "OVO", "DANA", "E-MONEY", "EMONEY", "PAYPAL", "MOBILE", "電子マネー", "페이"}},
	{roleTotal, false, []string{"TOTAL A PAGAR", "TOTAL À PAYER", "TOTAL DUE", "GRAND TOTAL", "TOTAL", "SUMME", "GESAMT", "GESAMTSUMME", "ZU ZAHLEN", "TOTAAL", "TOTALE", "SUMA", "TOPLAM", "VALOR TOTAL", "IMPORTE", "MONTANT", "AMOUNT DUE", "BALANCE DUE", "JUMLAH", "TOTAL BELANJA", "TOTAL BAYAR", "合計", "合计", "總計", "总计", "お買上計", "합계", "총액", "결제금액"}},
}

// zWords maps report lines to z_report fields.
var zWords = []struct {
	field string
	words []string
}{
	{"no_sale_count", []string{"NO SALE", "NOSALE", "#/NS", "KEIN VERKAUF", "SIN VENTA", "SEM VENDA", "ABERTURAS GAVETA", "ABERTURA DE GAVETA", "APERTURAS CAJON", "APERTURAS DE CAJON", "BUKA LACI", "DRAWER OPEN", "SCHUBLADE", "ノーセール", "노세일"}},
	{"refunds", []string{"REFUND", "REFUNDS", "RETURN", "RETURNS", "RÜCKGABE", "RETOUREN", "RETOURE", "DEVOLUCIÓN", "DEVOLUCIONES", "DEVOLUÇÕES", "DEVOLUCOES", "RETOURS", "RETUR", "返品", "반품", "환불"}},
	{"voids", []string{"VOID", "VOIDS", "STORNO", "STORNOS", "CANCEL", "ANULACIONES", "CANCELAMENTOS", "ANNULATIONS", "BATAL", "取消", "취소"}},
	{"gross", []string{"GROSS", "GROSS SALES", "BRUTTO", "BRUTOUMSATZ", "BRUTTOUMSATZ", "BRUTO", "VENTAS BRUTAS", "VENDA BRUTA", "総売上", "총매출", "PENJUALAN KOTOR"}},
	{"grand_total", []string{"GT", "GRAND TOTAL", "GRANDTOTAL", "GESAMTSUMME", "累計", "총누계"}},
	{"net", []string{"NET", "NET SALES", "NETTO", "NETTOUMSATZ", "NETO", "VENTAS NETAS", "VENDA LIQUIDA", "VENDA LÍQUIDA", "UMSATZ", "純売上", "순매출", "PENJUALAN BERSIH", "TOTAL"}},
	{"taxable", []string{"TAXABLE", "TXBL", "NETTOBETRAG"}},
	{"tax", []string{"TAX", "VAT", "MWST", "UST", "IVA", "TVA", "BTW", "GST", "PPN", "消費税", "부가세"}},
	{"tender", []string{"CASH", "CARD", "BAR", "KARTE", "EFECTIVO", "TARJETA", "DINHEIRO", "CARTÃO", "TUNAI", "KARTU", "CHECK", "CHEQUE", "現金", "カード", "현금", "카드"}},
}

// receiptWords label the receipt number on a header line.
var receiptWords = []string{"RECEIPT", "RECEIPT NO", "RCPT", "TRANS", "TRANSACTION", "TXN", "TRX", "BON", "BON-NR", "BONNR", "BELEG", "BELEG-NR", "BELEGNR", "TICKET", "INVOICE", "FACTURA", "FATURA", "CUPOM", "BOLETA", "FOLIO", "COO", "CCF", "NFC-E", "NFCE", "DOC", "Nº", "N°", "NOTA", "STRUK", "NO", "NR", "NUM", "#", "伝票", "レシート", "영수증", "번호", "单号"}

// skuWords label an item's article number on the line under it.
var skuWords = []string{"PLU", "SKU", "EAN", "UPC", "JAN", "ART", "ART.", "ART-NR", "ARTNR", "ARTIKEL", "ARTICLE", "ITEM NO", "CODE", "COD", "CÓDIGO", "CODIGO", "KODE", "品番", "商品コード", "상품코드"}

// originalWords label the original receipt on a return.
var originalWords = []string{"ORIG", "ORIGINAL", "ORIG TRANS", "URSPRUNG", "URSPR", "ORIGEN", "ORIGINAL BON", "REF", "元取引", "원거래"}

// tenderRoles are the roles that are tenders, with their protocol tender type.
var tenderRoles = map[string]string{roleTenderCash: protocol.TenderCash, roleTenderCard: protocol.TenderCard,
	roleTenderGift: protocol.TenderGift, roleTenderChk: protocol.TenderCheck, roleTenderOth: protocol.TenderOther}

// decoration is stripped around labels before they are compared with the table.
const decoration = " \t*#=-_.:;[]()<>|~+/\\"

func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// hasWord reports whether label (upper-cased, decoration trimmed) holds word: whole words for
// Latin script, anywhere for CJK; with prefix, only at the start.
func hasWord(label, word string, prefix bool) bool {
	for from := 0; from <= len(label); {
		i := strings.Index(label[from:], word)
		if i < 0 {
			return false
		}
		i += from
		if prefix && i != 0 {
			return false
		}
		if wordBoundary(label, i, i+len(word)) {
			return true
		}
		from = i + 1
	}
	return false
}

func wordBoundary(s string, i, j int) bool {
	first, _ := firstRune(s[i:j])
	last := lastRune(s[i:j])
	if !isCJK(first) && i > 0 {
		if r := lastRune(s[:i]); unicode.IsLetter(r) || unicode.IsDigit(r) {
			return false
		}
	}
	if !isCJK(last) && j < len(s) {
		if r, _ := firstRune(s[j:]); unicode.IsLetter(r) || unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

func firstRune(s string) (rune, int) {
	for i, r := range s {
		return r, i
	}
	return 0, 0
}

func lastRune(s string) rune {
	var last rune
	for _, r := range s {
		last = r
	}
	return last
}

// normLabel upper-cases a label and trims decoration.
func normLabel(s string) string {
	return strings.ToUpper(strings.Trim(s, decoration))
}

// roleOf returns the role the label's words give, and the word that gave it.
func roleOf(label string) (string, string) {
	l := normLabel(label)
	// "TOTAL (IVA INCLUIDO)", "SUMME inkl. MwSt", "TOTAL TTC": a total that says it includes tax.
	for _, w := range totalWords() {
		if hasWord(l, w, true) && inclRE.MatchString(l[len(w):]) {
			return roleTotal, w
		}
	}
	for _, rw := range roleWords {
		for _, w := range rw.words {
			if hasWord(l, w, rw.prefix) {
				return rw.role, w
			}
		}
	}
	return "", ""
}

// kindTitle returns the kind a title line announces ("RETURN", "*** VOID ***", "Z REPORT 0042").
func kindTitle(line string) (protocol.Kind, string) {
	l := normLabel(line)
	for _, kw := range kindWords {
		for _, w := range kw.words {
			if kw.kind.IsReport() {
				if hasWord(strings.TrimLeft(l, "0123456789./:- "), w, true) {
					return kw.kind, w
				}
				continue
			}
			if l == w || titleWith(l, w) {
				return kw.kind, w
			}
		}
	}
	return "", ""
}

func zFieldOf(label string) (string, string) {
	l := normLabel(label)
	for _, zw := range zWords {
		for _, w := range zw.words {
			if hasWord(l, w, false) {
				return zw.field, w
			}
		}
	}
	return "", ""
}

func hasAnyWord(label string, words []string) (string, bool) {
	l := normLabel(label)
	for _, w := range words {
		if hasWord(l, w, false) {
			return w, true
		}
	}
	return "", false
}

// titleWith: the line is a title holding the kind word first or last, with at most five other
// words and no digits ("NOTA DE CREDITO - DEVOLUCION", "CUPOM CANCELADO").
func titleWith(l, w string) bool {
	if strings.ContainsAny(l, "0123456789") || len(strings.Fields(l)) > len(strings.Fields(w))+5 {
		return false
	}
	return (strings.HasPrefix(l, w) || strings.HasSuffix(l, w)) && hasWord(l, w, false)
}

// inclRE: what follows a total word when the total says it includes the tax.
var inclRE = regexp.MustCompile(`(?i)^\s*(?:\(|\s)*(?:[^\s\d]+\s+)?(?:INCL|INKL|INCLUIDO|INCLUDED|INCLUSO|INCLUS|TTC|TERMASUK|INC\b)`)

func totalWords() []string {
	for _, rw := range roleWords {
		if rw.role == roleTotal {
			return rw.words
		}
	}
	return nil
}
