package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/protocol"
)

// --skip-receipt leaves receipt numbers out of the file (a gap for the close to find); a bad
// number is refused.
func TestSkipReceipt(t *testing.T) {
	out := filepath.Join(t.TempDir(), "t1.jsonl")
	var stdout, stderr strings.Builder
	if code := run([]string{"jsonl", "--out", out, "--count", "6", "--rate", "0", "--seed", "1", "--skip-receipt", "3,5"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var receipts []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r protocol.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, r.Receipt)
	}
	if want := []string{"1", "2", "4", "6"}; !slices.Equal(receipts, want) {
		t.Errorf("receipts %v, want %v", receipts, want)
	}
	if code := run([]string{"jsonl", "--out", out, "--skip-receipt", "x"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), `"x" is not a receipt number`) {
		t.Errorf("bad --skip-receipt: exit %d, %s", code, stderr.String())
	}
}
