package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/protocol"
)

// runDayContract checks DayRecords and DayPostings: one store-day's records of every epoch in
// (stream creation, seq) order and its postings, nothing of other days or other stores.
func runDayContract(t *testing.T, s *DB) {
	ctx := context.Background()
	mustAddStore(t, s, "s1")
	mustAddStore(t, s, "s2")
	day := func(store, epoch string, seq uint64, date, receipt string) protocol.Record {
		r := kindRec(store, epoch, seq, protocol.KindSale, receipt, int64(seq)*10)
		r.BusinessDate = date
		return sealed(r)
	}
	// e2 is created first, so its records come first whatever the epoch names.
	mustApply(t, s, "s1", "e2", []protocol.Record{day("s1", "e2", 1, testDate, "1"), day("s1", "e2", 2, "2024-05-02", "2"), day("s1", "e2", 3, testDate, "3")})
	mustApply(t, s, "s1", "e1", []protocol.Record{day("s1", "e1", 1, "2024-04-30", "9"), day("s1", "e1", 2, testDate, "4")})
	mustApply(t, s, "s2", "e1", []protocol.Record{day("s2", "e1", 1, testDate, "1")})

	got, err := s.DayRecords(ctx, "s1", testDate)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		if r.Store != "s1" || r.BusinessDate != testDate || r.Hash == "" || len(r.Lines) != 1 {
			t.Fatalf("DayRecords returned %+v", r)
		}
		ids = append(ids, r.Epoch+":"+r.Receipt)
	}
	if want := []string{"e2:1", "e2:3", "e1:4"}; !slices.Equal(ids, want) {
		t.Fatalf("DayRecords(s1, %s) = %v, want %v", testDate, ids, want)
	}
	if none, err := s.DayRecords(ctx, "s1", "2020-01-01"); err != nil || len(none) != 0 {
		t.Fatalf("DayRecords of an empty day = %v, %v", none, err)
	}
	if _, err := s.DayRecords(ctx, "nope", testDate); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DayRecords of an unknown store: %v, want ErrNotFound", err)
	}

	ps, err := s.DayPostings(ctx, "s1", testDate)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range ps {
		if p.Store != "s1" || p.BusinessDate != testDate || p.State != PostingPending || p.Total == 0 {
			t.Fatalf("DayPostings returned %+v", p)
		}
		keys = append(keys, p.Key)
	}
	want := []string{got[0].BusinessKey(), got[1].BusinessKey(), got[2].BusinessKey()}
	if !slices.Equal(keys, want) {
		t.Fatalf("DayPostings keys = %v, want %v", keys, want)
	}
}

// TestSQLiteDayQueriesUseDateIndex: SQLite's planner, without statistics, reads a store-day
// through the primary key's store prefix, i.e. the store's whole history, unless told to use
// records_day; closing a day then costs more with every day retained (issue 11).
func TestSQLiteDayQueriesUseDateIndex(t *testing.T) {
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db"))
	r := s.e.(*sqliteEngine).r
	for _, q := range []string{sqliteDialect.dayRecordsSQL("r.body"), "SELECT r.body FROM records r JOIN streams s ON s.store = r.store AND s.epoch = r.epoch WHERE r.store = ? AND r.business_date = ? ORDER BY s.id, r.seq"} {
		rs, err := r.Query("EXPLAIN QUERY PLAN "+q, "s1", testDate)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rs.Next() {
			var id, parent, notused int
			var detail string
			if err := rs.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rs.Close()
		uses := strings.Contains(strings.Join(plan, "\n"), "INDEX records_day")
		if q == sqliteDialect.dayRecordsSQL("r.body") && !uses {
			t.Fatalf("the day query does not use records_day:\n%s", strings.Join(plan, "\n"))
		}
		if q != sqliteDialect.dayRecordsSQL("r.body") {
			t.Logf("without INDEXED BY (uses records_day: %v):\n%s", uses, strings.Join(plan, "\n"))
		}
	}
}

func TestSQLiteDayContract(t *testing.T) {
	runDayContract(t, openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")))
}

func TestPostgresDayContract(t *testing.T) {
	runDayContract(t, openPostgresT(t, pgSchema(t)))
}
