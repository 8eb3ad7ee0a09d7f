package reconcile

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// zoneFixture: a real SQLite store with LA (America/Los_Angeles) and AKL (Pacific/Auckland),
// LA with sales of 2026-12-01 on T1 and no Z report.
func zoneFixture(t *testing.T) (*store.DB, *Closer, *time.Time) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	zones := map[string]string{"LA": "America/Los_Angeles", "AKL": "Pacific/Auckland"}
	for id := range zones {
		if err := st.AddStore(ctx, id, "x"); err != nil {
			t.Fatal(err)
		}
	}
	r := protocol.Record{Kind: protocol.KindSale, Store: "LA", Terminal: "T1", Receipt: "1", BusinessDate: "2026-12-01", Epoch: "e1", Seq: 1,
		Total: 100, Tenders: []protocol.Tender{{Type: "cash", Amount: 100}}, CapturedAt: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
	r.Seal()
	if _, err := st.ApplyBatch(ctx, "LA", "e1", []protocol.Record{r}); err != nil {
		t.Fatal(err)
	}
	now := new(time.Time)
	c := &Closer{St: st, NoERP: true, ZDue: ZDueBy("01:00"), Now: func() time.Time { return *now },
		Location: func(_ context.Context, id string) *time.Location {
			loc, _ := time.LoadLocation(zones[id])
			return loc
		}}
	return st, c, now
}

func TestNoZReportOnlyAfterDeadlineInStoreZone(t *testing.T) {
	_, c, now := zoneFixture(t)
	noZ := func(at time.Time) bool {
		t.Helper()
		*now = at
		res, err := c.Close(context.Background(), "LA", "2026-12-01")
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(res.Issues, func(is Issue) bool { return is.Reason == ReasonNoZReport })
	}
	// 02:00 UTC on the 2nd is past 01:00 in UTC, but 18:00 on the 1st in Los Angeles.
	if noZ(time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)) {
		t.Fatal("no_z_report raised while the day is still trading in the store's zone")
	}
	if noZ(time.Date(2026, 12, 2, 8, 59, 0, 0, time.UTC)) { // 00:59 in Los Angeles
		t.Fatal("no_z_report raised before close.no_z_by in the store's zone")
	}
	if !noZ(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)) { // 01:00 in Los Angeles
		t.Fatal("no no_z_report after close.no_z_by in the store's zone")
	}
}

func TestSchedulerClosesInStoreZone(t *testing.T) {
	st, c, _ := zoneFixture(t)
	ctx := context.Background()
	s := &Scheduler{C: c, At: "02:00", tried: map[[2]string]bool{}}
	at, _ := time.Parse("15:04", s.At)
	closed := func(id, date string) bool {
		_, err := st.GetClose(ctx, id, date)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	// 11:00 UTC on the 2nd: 03:00 in Los Angeles (due), 00:00 on the 3rd in Auckland (not yet).
	s.closeDue(ctx, at, time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC))
	if !closed("LA", "2026-12-01") || closed("AKL", "2026-12-02") || closed("AKL", "2026-12-01") {
		t.Fatal("at 11:00 UTC want LA's 2026-12-01 closed and nothing of AKL")
	}
	s.closeDue(ctx, at, time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)) // 02:00 on the 3rd in Auckland
	if !closed("AKL", "2026-12-02") || closed("LA", "2026-12-02") {
		t.Fatal("at 13:00 UTC want AKL's 2026-12-02 closed and LA's 2026-12-02 not yet")
	}
}
