package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the protocol's major version. It only goes up; every change is dated in doc.go.
const Version = 1

// Kind is what a record represents.
type Kind string

// The kinds of record.
const (
	KindSale    Kind = "sale"
	KindReturn  Kind = "return"
	KindVoid    Kind = "void"
	KindNoSale  Kind = "no_sale"
	KindPaidIn  Kind = "paid_in"
	KindPaidOut Kind = "paid_out"
	KindXReport Kind = "x_report"
	KindZReport Kind = "z_report"
)

// Kinds lists every valid kind in a stable order.
var Kinds = []Kind{KindSale, KindReturn, KindVoid, KindNoSale, KindPaidIn, KindPaidOut, KindXReport, KindZReport}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// IsReport reports whether k is an X or Z report.
func (k Kind) IsReport() bool { return k == KindXReport || k == KindZReport }

// Tender types.
const (
	TenderCash  = "cash"
	TenderCard  = "card"
	TenderCheck = "check"
	TenderGift  = "gift"
	TenderOther = "other"
)

// Line is one item line of a transaction.
type Line struct {
	SKU         string `json:"sku,omitempty"`
	Description string `json:"description,omitempty"`
	Quantity    string `json:"quantity"`
	UnitPrice   int64  `json:"unit_price"`
	Amount      int64  `json:"amount"`
	Department  string `json:"department,omitempty"`
	Voided      bool   `json:"voided,omitempty"`
}

// Discount is a transaction-level discount; Amount is positive and reduces the total.
type Discount struct {
	Description string `json:"description,omitempty"`
	Amount      int64  `json:"amount"`
}

// Tax is one tax line. Rate is an exact decimal percentage string ("8.25").
type Tax struct {
	Code    string `json:"code"`
	Rate    string `json:"rate,omitempty"`
	Taxable int64  `json:"taxable"`
	Amount  int64  `json:"amount"`
}

// Card is what may be kept of a payment card: never more than brand and last four digits.
type Card struct {
	Brand string `json:"brand,omitempty"`
	Last4 string `json:"last4,omitempty"`
}

// Tender is one payment.
type Tender struct {
	Type   string `json:"type"`
	Amount int64  `json:"amount"`
	Card   *Card  `json:"card,omitempty"`
}

// Counted is a count with an amount.
type Counted struct {
	Count  int64 `json:"count"`
	Amount int64 `json:"amount"`
}

// TenderTotal is a per-tender total in a report.
type TenderTotal struct {
	Type   string `json:"type"`
	Count  int64  `json:"count,omitempty"`
	Amount int64  `json:"amount"`
}

// ZReport holds the totals of an X or Z report as the register printed them.
type ZReport struct {
	Counter     int64         `json:"counter,omitempty"`
	Gross       int64         `json:"gross"`
	Net         int64         `json:"net"`
	Refunds     Counted       `json:"refunds"`
	Voids       Counted       `json:"voids"`
	NoSaleCount int64         `json:"no_sale_count"`
	Tenders     []TenderTotal `json:"tenders,omitempty"`
	Taxes       []Tax         `json:"taxes,omitempty"`
	GrandTotal  int64         `json:"grand_total,omitempty"`
}

// Source says where a record was captured.
type Source struct {
	Terminal string `json:"terminal,omitempty"`
	Profile  string `json:"profile,omitempty"`
	Raw      string `json:"raw,omitempty"` // reference into the agent's raw capture journal
}

// Record is the canonical record. Business fields come from the terminal; Epoch, Seq,
// CapturedAt, Hash and Source are assigned by the agent when it captures the record.
type Record struct {
	Kind            Kind       `json:"kind"`
	Store           string     `json:"store"`
	Terminal        string     `json:"terminal"`
	Receipt         string     `json:"receipt,omitempty"`
	BusinessDate    string     `json:"business_date"`
	Time            string     `json:"time,omitempty"`
	Currency        string     `json:"currency,omitempty"`
	Lines           []Line     `json:"lines,omitempty"`
	Discounts       []Discount `json:"discounts,omitempty"`
	Taxes           []Tax      `json:"taxes,omitempty"`
	Total           int64      `json:"total"`
	Tenders         []Tender   `json:"tenders,omitempty"`
	Change          int64      `json:"change,omitempty"`
	OriginalReceipt string     `json:"original_receipt,omitempty"`
	Z               *ZReport   `json:"z,omitempty"`

	Epoch      string    `json:"epoch,omitempty"`
	Seq        uint64    `json:"seq,omitempty"`
	CapturedAt time.Time `json:"captured_at,omitzero"`
	Hash       string    `json:"hash,omitempty"`
	Source     *Source   `json:"source,omitempty"`

	// Wire holds the record's JSON exactly as received when it was decoded by DecodeBatch
	// (never encoded, not part of the canonical form). Stores may keep it instead of encoding
	// the record again.
	Wire json.RawMessage `json:"-"`
}

// Canonical returns the canonical form of r: its JSON encoding with Hash cleared. Go's encoder
// writes struct fields in declaration order, so the form is stable for a given record.
func (r Record) Canonical() []byte {
	r.Hash = ""
	r.Wire = nil
	b, err := json.Marshal(r)
	if err != nil {
		// Record holds only strings, integers and times; Marshal cannot fail on it.
		panic(fmt.Sprintf("protocol: canonical form: %v", err))
	}
	return b
}

// ComputeHash returns the hex SHA-256 of r's canonical form.
func (r Record) ComputeHash() string {
	sum := sha256.Sum256(r.Canonical())
	return hex.EncodeToString(sum[:])
}

// Seal sets r.Hash from its canonical form.
func (r *Record) Seal() { r.Hash = r.ComputeHash() }

// BusinessKey identifies the transaction a record captured, across resends, replays and
// re-captures under a new epoch: store|terminal|business_date|receipt|kind. A record without a
// receipt number is keyed by its own identity instead (receipt "@epoch:seq", KeyReceipt). The
// hub posts each business key to the ERP once and counts it once in a day.
func (r *Record) BusinessKey() string {
	return strings.Join([]string{r.Store, r.Terminal, r.BusinessDate, r.KeyReceipt(), string(r.Kind)}, "|")
}

// KeyReceipt is the receipt part of BusinessKey.
func (r *Record) KeyReceipt() string {
	if r.Receipt != "" {
		return r.Receipt
	}
	return "@" + r.Epoch + ":" + strconv.FormatUint(r.Seq, 10)
}

// ContentHash is the hex SHA-256 of a record's business content: its canonical form without
// the agent-assigned identity (epoch, seq, capture time, hash, source). Two captures of the
// same transaction have the same content hash; the same business key with another content hash
// is a receipt number reused for a different transaction.
func (r Record) ContentHash() string {
	r.Epoch, r.Seq, r.CapturedAt, r.Hash, r.Source = "", 0, time.Time{}, "", nil
	return r.ComputeHash()
}

// isDate reports whether s has the shape YYYY-MM-DD (ASCII digits).
func isDate(s string) bool {
	return len(s) == 10 && s[4] == '-' && s[7] == '-' && isDigits(s[:4], 4, 4) && isDigits(s[5:7], 2, 2) && isDigits(s[8:], 2, 2)
}

// isDigits reports whether s is min to max ASCII digits.
func isDigits(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidationError names the field that is wrong.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// ValidateBusiness checks the terminal-provided fields of a record (what a capture source
// produces before the agent assigns identity).
func (r *Record) ValidateBusiness() error {
	if !r.Kind.Valid() {
		return &ValidationError{"kind", "unknown kind " + quote(string(r.Kind))}
	}
	if r.Terminal == "" {
		return &ValidationError{"terminal", "missing"}
	}
	if err := r.checkText(); err != nil {
		return err
	}
	if !isDate(r.BusinessDate) {
		return &ValidationError{"business_date", quote(r.BusinessDate) + " is not YYYY-MM-DD"}
	}
	if _, err := time.Parse("2006-01-02", r.BusinessDate); err != nil {
		return &ValidationError{"business_date", quote(r.BusinessDate) + " is not a date"}
	}
	if r.Time != "" {
		if _, err := time.Parse(time.RFC3339, r.Time); err != nil {
			return &ValidationError{"time", quote(r.Time) + " is not RFC 3339"}
		}
	}
	for i, l := range r.Lines {
		if !ValidQuantity(l.Quantity) {
			return &ValidationError{fmt.Sprintf("lines[%d].quantity", i), quote(l.Quantity) + " is not an exact decimal"}
		}
	}
	if err := r.checkMoney(); err != nil {
		return err
	}
	for i, t := range r.Tenders {
		switch t.Type {
		case TenderCash, TenderCard, TenderCheck, TenderGift, TenderOther:
		default:
			return &ValidationError{fmt.Sprintf("tenders[%d].type", i), "unknown tender type " + quote(t.Type)}
		}
		if t.Card != nil && t.Card.Last4 != "" && !isDigits(t.Card.Last4, 4, 4) {
			return &ValidationError{fmt.Sprintf("tenders[%d].card.last4", i), "must be exactly 4 digits"}
		}
	}
	if r.Kind.IsReport() && r.Z == nil {
		return &ValidationError{"z", "a report needs its z totals"}
	}
	return nil
}

// checkText rejects NUL in the record's text fields: no terminal prints one as text, and
// PostgreSQL cannot store it.
func (r *Record) checkText() error {
	if !r.hasNUL() {
		return nil // the usual case, without building the field names
	}
	texts := map[string]string{"terminal": r.Terminal, "receipt": r.Receipt, "time": r.Time, "currency": r.Currency,
		"original_receipt": r.OriginalReceipt}
	for i, l := range r.Lines {
		texts[fmt.Sprintf("lines[%d]", i)] = l.SKU + l.Description + l.Department
	}
	for i, d := range r.Discounts {
		texts[fmt.Sprintf("discounts[%d].description", i)] = d.Description
	}
	for i, t := range r.Taxes {
		texts[fmt.Sprintf("taxes[%d]", i)] = t.Code + t.Rate
	}
	for i, t := range r.Tenders {
		if t.Card != nil {
			texts[fmt.Sprintf("tenders[%d].card", i)] = t.Card.Brand + t.Card.Last4
		}
	}
	if r.Z != nil {
		for i, t := range r.Z.Tenders {
			texts[fmt.Sprintf("z.tenders[%d].type", i)] = t.Type
		}
		for i, t := range r.Z.Taxes {
			texts[fmt.Sprintf("z.taxes[%d]", i)] = t.Code + t.Rate
		}
	}
	for field, s := range texts {
		if strings.IndexByte(s, 0) >= 0 {
			return &ValidationError{field, "contains NUL"}
		}
	}
	return nil
}

// hasNUL reports whether any text field checkText looks at holds a NUL.
func (r *Record) hasNUL() bool {
	nul := func(ss ...string) bool {
		for _, s := range ss {
			if strings.IndexByte(s, 0) >= 0 {
				return true
			}
		}
		return false
	}
	if nul(r.Terminal, r.Receipt, r.Time, r.Currency, r.OriginalReceipt) {
		return true
	}
	for _, l := range r.Lines {
		if nul(l.SKU, l.Description, l.Department) {
			return true
		}
	}
	for _, d := range r.Discounts {
		if nul(d.Description) {
			return true
		}
	}
	for _, t := range r.Taxes {
		if nul(t.Code, t.Rate) {
			return true
		}
	}
	for _, t := range r.Tenders {
		if t.Card != nil && nul(t.Card.Brand, t.Card.Last4) {
			return true
		}
	}
	if r.Z != nil {
		for _, t := range r.Z.Tenders {
			if nul(t.Type) {
				return true
			}
		}
		for _, t := range r.Z.Taxes {
			if nul(t.Code, t.Rate) {
				return true
			}
		}
	}
	return false
}

// moneyInRange reports whether every amount checkMoney looks at is within ±MaxMoney.
func (r *Record) moneyInRange() bool {
	in := func(vs ...int64) bool {
		for _, v := range vs {
			if v > MaxMoney || v < -MaxMoney {
				return false
			}
		}
		return true
	}
	if !in(r.Total, r.Change) {
		return false
	}
	for _, l := range r.Lines {
		if !in(l.UnitPrice, l.Amount) {
			return false
		}
	}
	for _, d := range r.Discounts {
		if !in(d.Amount) {
			return false
		}
	}
	for _, t := range r.Taxes {
		if !in(t.Taxable, t.Amount) {
			return false
		}
	}
	for _, t := range r.Tenders {
		if !in(t.Amount) {
			return false
		}
	}
	if z := r.Z; z != nil {
		if !in(z.Gross, z.Net, z.Refunds.Amount, z.Voids.Amount, z.GrandTotal) {
			return false
		}
		for _, t := range z.Tenders {
			if !in(t.Amount) {
				return false
			}
		}
		for _, t := range z.Taxes {
			if !in(t.Taxable, t.Amount) {
				return false
			}
		}
	}
	return true
}

// checkMoney rejects an amount beyond ±MaxMoney minor units.
func (r *Record) checkMoney() error {
	if r.moneyInRange() {
		return nil // the usual case, without building the field names
	}
	type amount struct {
		field string
		v     int64
	}
	as := []amount{{"total", r.Total}, {"change", r.Change}}
	for i, l := range r.Lines {
		as = append(as, amount{fmt.Sprintf("lines[%d].unit_price", i), l.UnitPrice}, amount{fmt.Sprintf("lines[%d].amount", i), l.Amount})
	}
	for i, d := range r.Discounts {
		as = append(as, amount{fmt.Sprintf("discounts[%d].amount", i), d.Amount})
	}
	taxes := func(prefix string, ts []Tax) {
		for i, t := range ts {
			as = append(as, amount{fmt.Sprintf("%s[%d].taxable", prefix, i), t.Taxable}, amount{fmt.Sprintf("%s[%d].amount", prefix, i), t.Amount})
		}
	}
	taxes("taxes", r.Taxes)
	for i, t := range r.Tenders {
		as = append(as, amount{fmt.Sprintf("tenders[%d].amount", i), t.Amount})
	}
	if z := r.Z; z != nil {
		as = append(as, amount{"z.gross", z.Gross}, amount{"z.net", z.Net}, amount{"z.refunds.amount", z.Refunds.Amount},
			amount{"z.voids.amount", z.Voids.Amount}, amount{"z.grand_total", z.GrandTotal})
		for i, t := range z.Tenders {
			as = append(as, amount{fmt.Sprintf("z.tenders[%d].amount", i), t.Amount})
		}
		taxes("z.taxes", z.Taxes)
	}
	for _, a := range as {
		if a.v > MaxMoney || a.v < -MaxMoney {
			return &ValidationError{a.field, fmt.Sprintf("%d minor units is beyond ±10^13", a.v)}
		}
	}
	return nil
}

// ValidQuantity reports whether q is an exact decimal string such as "2", "-1" or "0.456":
// an optional minus, 1 to 12 digits, and optionally a point and 1 to 6 digits.
func ValidQuantity(q string) bool {
	q, _ = strings.CutPrefix(q, "-")
	whole, frac, dot := strings.Cut(q, ".")
	return isDigits(whole, 1, 12) && (!dot || isDigits(frac, 1, 6))
}

// Validate checks a captured record: business fields, identity and hash.
func (r *Record) Validate() error {
	if err := ValidateStoreID(r.Store); err != nil {
		return &ValidationError{"store", err.Error()}
	}
	if err := r.ValidateBusiness(); err != nil {
		return err
	}
	if r.Epoch == "" {
		return &ValidationError{"epoch", "missing"}
	}
	if r.Seq == 0 {
		return &ValidationError{"seq", "missing (sequence numbers start at 1)"}
	}
	if r.Seq > MaxSeq {
		return &ValidationError{"seq", fmt.Sprintf("%d is beyond 2^53", r.Seq)}
	}
	if src := r.Source; strings.IndexByte(r.Epoch, 0) >= 0 || src != nil && strings.IndexByte(src.Terminal+src.Profile+src.Raw, 0) >= 0 {
		return &ValidationError{"epoch/source", "contains NUL"}
	}
	if r.Hash == "" {
		return &ValidationError{"hash", "missing"}
	}
	if r.Wire != nil && wireHashOK(r.Wire, r.Hash) {
		return nil
	}
	if got := r.ComputeHash(); got != r.Hash {
		return &ValidationError{"hash", "does not match the record's canonical form"}
	}
	return nil
}

// ErrBadStoreID is returned for a store id that cannot be used in a topic.
var ErrBadStoreID = errors.New("invalid store id")

// ValidateStoreID rejects empty ids, ids longer than 64 bytes and ids containing '/', '+', '#',
// NUL or whitespace.
func ValidateStoreID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrBadStoreID)
	}
	if len(id) > 64 {
		return fmt.Errorf("%w: %s is longer than 64 bytes", ErrBadStoreID, quote(id))
	}
	if strings.ContainsAny(id, "/+#\x00 \t\r\n") {
		return fmt.Errorf("%w: %q contains '/', '+', '#', NUL or whitespace", ErrBadStoreID, id)
	}
	return nil
}

// wireHashOK checks a record's hash against its wire bytes without encoding it again: when the
// sender used Go's encoder for this version of Record (the agent does), the wire form is the
// canonical form plus the "hash" member, so removing that member gives the bytes that were
// hashed. Anything else (other encoders, other field order) returns false and the caller
// recomputes the canonical form.
func wireHashOK(wire []byte, hash string) bool {
	if len(hash) != 64 {
		return false
	}
	member := []byte(`,"hash":"` + hash + `"`)
	i := bytes.Index(wire, member)
	if i < 0 {
		return false
	}
	h := sha256.New()
	h.Write(wire[:i])
	h.Write(wire[i+len(member):])
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])) == hash
}
