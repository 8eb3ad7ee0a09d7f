package protocol

import (
	"slices"
	"strconv"
)

// ReceiptNumber returns the number of a receipt, for gap detection and the receipt ranges of
// CommandReplay: a receipt has a number when it is all ASCII digits, at most 18 of them
// ("000123" is 123). Anything else ("A-17", "+12", "12 ", "") has none: a receipt that is
// not plainly a number is never guessed into one.
func ReceiptNumber(receipt string) (int64, bool) {
	if receipt == "" || len(receipt) > 18 {
		return 0, false
	}
	for i := 0; i < len(receipt); i++ {
		if receipt[i] < '0' || receipt[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(receipt, 10, 64)
	return n, err == nil
}

// ReceiptGaps returns, in ascending order, the inclusive ranges of numbers missing between the
// smallest and the largest of numbers, or nil when none is missing. numbers may be in any
// order and may repeat; it is not modified.
func ReceiptGaps(numbers []int64) [][2]int64 {
	if !slices.IsSorted(numbers) {
		numbers = slices.Sorted(slices.Values(numbers))
	}
	var gaps [][2]int64
	for i := 1; i < len(numbers); i++ {
		// prev < cur whenever cur > prev+1 is evaluated, so prev+1 cannot overflow.
		if prev, cur := numbers[i-1], numbers[i]; prev < cur && cur > prev+1 {
			gaps = append(gaps, [2]int64{prev + 1, cur - 1})
		}
	}
	return gaps
}
