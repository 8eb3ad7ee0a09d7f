package protocol

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// qtyScale is the number of decimal places a Qty keeps: protocol quantities have at most six.
const qtyScale = 6

const qtyUnit = 1_000_000 // 10^qtyScale

// ErrQtyOverflow is returned when a sum of quantities leaves the range of a Qty (±9.2e12).
var ErrQtyOverflow = errors.New("quantity overflow")

// Qty is an exact decimal quantity in millionths, the arithmetic agent and hub share so that
// the hub's available figures and the agent's overlay agree to the last digit. The zero value is 0. Arithmetic is exact;
// sums that would overflow return ErrQtyOverflow, never a wrapped value.
type Qty int64

// ParseQty parses an exact decimal string as the protocol writes it ("2", "-1", "0.456").
// The empty string is 0 (an item without a stock figure).
func ParseQty(s string) (Qty, error) {
	if s == "" {
		return 0, nil
	}
	if !ValidQuantity(s) {
		return 0, fmt.Errorf("quantity %q is not an exact decimal", s)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	w, err := strconv.ParseInt(whole, 10, 64) // at most 12 digits
	if err != nil {
		return 0, fmt.Errorf("quantity %q: %w", s, err)
	}
	var f int64
	if frac != "" {
		f, err = strconv.ParseInt(frac+strings.Repeat("0", qtyScale-len(frac)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("quantity %q: %w", s, err)
		}
	}
	v := w*qtyUnit + f // < 10^18, no overflow
	if neg {
		v = -v
	}
	return Qty(v), nil
}

// Add returns q+o, or ErrQtyOverflow.
func (q Qty) Add(o Qty) (Qty, error) {
	if (o > 0 && q > math.MaxInt64-o) || (o < 0 && q < math.MinInt64-o) {
		return 0, fmt.Errorf("%w: %s + %s", ErrQtyOverflow, q, o)
	}
	return q + o, nil
}

// Sub returns q-o, or ErrQtyOverflow.
func (q Qty) Sub(o Qty) (Qty, error) {
	if o == math.MinInt64 {
		return 0, fmt.Errorf("%w: %s - %s", ErrQtyOverflow, q, o)
	}
	return q.Add(-o)
}

// String formats q as the protocol writes quantities: no exponent, no trailing zeros.
func (q Qty) String() string {
	v := int64(q)
	sign := ""
	var u uint64
	if v < 0 {
		sign = "-"
		u = uint64(-(v + 1)) + 1 // safe for MinInt64
	} else {
		u = uint64(v)
	}
	whole, frac := u/qtyUnit, u%qtyUnit
	if frac == 0 {
		return sign + strconv.FormatUint(whole, 10)
	}
	fs := fmt.Sprintf("%06d", frac)
	return sign + strconv.FormatUint(whole, 10) + "." + strings.TrimRight(fs, "0")
}
