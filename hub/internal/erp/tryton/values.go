package tryton

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MinorDigits is the number of decimal digits of the minor unit that Posting
// amounts and Prices use (cents for USD, the seeded company currency).
const MinorDigits = 2

// decimal is Tryton's JSON encoding of a Python Decimal.
type decimal string

func (d decimal) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"__class__": "Decimal", "decimal": string(d)})
}

func (d *decimal) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = ""
		return nil
	}
	var v struct {
		Class   string `json:"__class__"`
		Decimal string `json:"decimal"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("decimal %s: %w", b, err)
	}
	if v.Class != "Decimal" {
		return fmt.Errorf("decimal %s: class %q", b, v.Class)
	}
	*d = decimal(v.Decimal)
	return nil
}

// date is Tryton's JSON encoding of a Python date.
type date struct{ time.Time }

func (d date) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"__class__": "date",
		"year": d.Year(), "month": int(d.Month()), "day": d.Day()})
}

func (d *date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		d.Time = time.Time{}
		return nil
	}
	var v struct {
		Class string `json:"__class__"`
		Year  int    `json:"year"`
		Month int    `json:"month"`
		Day   int    `json:"day"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("date %s: %w", b, err)
	}
	d.Time = time.Date(v.Year, time.Month(v.Month), v.Day, 0, 0, 0, 0, time.UTC)
	return nil
}

// minorToDecimal renders minor units as a decimal string: 1999 → "19.99".
func minorToDecimal(v int64) decimal {
	r := new(big.Rat).SetFrac(big.NewInt(v), big.NewInt(pow10(MinorDigits)))
	return decimal(r.FloatString(MinorDigits))
}

// decimalToMinor parses a decimal string into minor units, refusing values
// that do not fit exactly ("19.995" is an error, "19.9900" is 1999).
func decimalToMinor(s decimal) (int64, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(string(s)))
	if !ok {
		return 0, fmt.Errorf("parse amount %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(pow10(MinorDigits)))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, fmt.Errorf("amount %q is not a whole number of minor units", s)
	}
	return r.Num().Int64(), nil
}

var quantityRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// parseQuantity parses a decimal quantity string ("2", "-1", "0.750").
// Tryton 6.0 stores quantities as floats.
func parseQuantity(s string) (float64, error) {
	if !quantityRE.MatchString(s) {
		return 0, fmt.Errorf("parse quantity %q: want an exact decimal like -1 or 0.750", s)
	}
	q, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("parse quantity %q: %w", s, err)
	}
	return q, nil
}

// formatQuantity renders a Tryton float quantity as a decimal string.
func formatQuantity(q float64) string {
	if q == 0 {
		return "0"
	}
	return strconv.FormatFloat(q, 'f', -1, 64)
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}
