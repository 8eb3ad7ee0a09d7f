package capture

import (
	"path/filepath"
	"testing"
	"time"
)

// TestJournalPurge: only entries below the parse cursor's restart point and older than the
// cutoff go; the sequence (Last) is kept, so a restart's cursor check still holds.
func TestJournalPurge(t *testing.T) {
	j, err := OpenJournal(filepath.Join(t.TempDir(), "journal.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var es []Entry
	for i := range 30 {
		at := old
		if i >= 20 {
			at = old.AddDate(0, 3, 0) // entries 21..30 are recent
		}
		es = append(es, Entry{Kind: EntryData, Time: at, Data: []byte("line\n")})
	}
	if _, err := j.Append("T1", es); err != nil {
		t.Fatal(err)
	}
	cutoff := old.AddDate(0, 1, 0)
	tests := []struct {
		below     uint64
		wantGone  int
		wantFirst uint64
	}{
		{below: 5, wantGone: 4, wantFirst: 5},    // the cursor restarts at 5: 1..4 go
		{below: 26, wantGone: 16, wantFirst: 21}, // 5..20 are old; 21.. are recent and stay
		{below: 31, wantGone: 0, wantFirst: 21},
	}
	for _, tt := range tests {
		n, err := j.Purge("T1", tt.below, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := j.Read("T1", 1, 1)
		if n != tt.wantGone || len(got) != 1 || got[0].ID != tt.wantFirst {
			t.Fatalf("Purge(below %d) deleted %d, first left %v; want %d and %d", tt.below, n, got, tt.wantGone, tt.wantFirst)
		}
	}
	if last, _ := j.Last("T1"); last != 30 {
		t.Fatalf("Last = %d after purge, want 30", last)
	}
}
