package protocol

import (
	"math"
	"slices"
	"testing"
)

func TestReceiptNumber(t *testing.T) {
	tests := []struct {
		receipt string
		want    int64
		ok      bool
	}{
		{"123", 123, true},
		{"000123", 123, true},
		{"0", 0, true},
		{"999999999999999999", 999999999999999999, true}, // 18 digits
		{"9223372036854775807", 0, false},                // 19 digits: longer than any register prints
		{"0000000000000000042", 0, false},
		{"+12", 0, false},
		{"-3", 0, false},
		{"9223372036854775808", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"A-17", 0, false},
		{"12a", 0, false},
		{" 12", 0, false},
		{"12 ", 0, false},
		{"1_000", 0, false},
		{"0x10", 0, false},
		{"1.0", 0, false},
		{"١٢", 0, false}, // Arabic-Indic digits
		{"+", 0, false},
		{"-", 0, false},
	}
	for _, tt := range tests {
		if got, ok := ReceiptNumber(tt.receipt); got != tt.want || ok != tt.ok {
			t.Errorf("ReceiptNumber(%q) = %d, %v; want %d, %v", tt.receipt, got, ok, tt.want, tt.ok)
		}
	}
}

func TestReceiptGaps(t *testing.T) {
	tests := []struct {
		name    string
		numbers []int64
		want    [][2]int64
	}{
		{"none", nil, nil},
		{"one", []int64{5}, nil},
		{"contiguous", []int64{1, 2, 3, 4}, nil},
		{"one missing", []int64{1, 3}, [][2]int64{{2, 2}}},
		{"a range missing", []int64{1, 2, 6}, [][2]int64{{3, 5}}},
		{"several", []int64{1, 2, 5, 6, 9}, [][2]int64{{3, 4}, {7, 8}}},
		{"unsorted", []int64{9, 1, 5, 2, 6}, [][2]int64{{3, 4}, {7, 8}}},
		{"duplicates", []int64{3, 1, 1, 3, 3, 4}, [][2]int64{{2, 2}}},
		{"all the same", []int64{7, 7, 7}, nil},
		{"leading zeros do not matter", []int64{100, 103}, [][2]int64{{101, 102}}},
		{"negative", []int64{-2, 1}, [][2]int64{{-1, 0}}},
		{"extremes", []int64{math.MinInt64, math.MaxInt64}, [][2]int64{{math.MinInt64 + 1, math.MaxInt64 - 1}}},
		{"at the top", []int64{math.MaxInt64 - 2, math.MaxInt64, math.MaxInt64}, [][2]int64{{math.MaxInt64 - 1, math.MaxInt64 - 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.numbers)
			got := ReceiptGaps(in)
			if !slices.Equal(got, tt.want) || (tt.want == nil) != (got == nil) {
				t.Fatalf("ReceiptGaps(%v) = %v, want %v", tt.numbers, got, tt.want)
			}
			if !slices.Equal(in, tt.numbers) {
				t.Fatalf("ReceiptGaps modified its input: %v, was %v", in, tt.numbers)
			}
		})
	}
}
