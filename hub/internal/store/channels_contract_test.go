package store

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

// runChannelPushContract: cursor and shown figures per channel, monotonic, concurrent savers.
func runChannelPushContract(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	if c, shown, err := s.ChannelPushState(ctx, "web"); err != nil || c != 0 || len(shown) != 0 {
		t.Fatalf("fresh channel: cursor %d shown %v, %v; want 0 and none", c, shown, err)
	}
	if err := s.SaveChannelPush(ctx, "web", 7, []ChannelShown{{"A", "3", 5}, {"B", "0", 7}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveChannelPush(ctx, "amazon", 2, []ChannelShown{{"A", "9", 2}}); err != nil {
		t.Fatal(err)
	}
	// An older save (a late retry) moves nothing back; a newer figure replaces.
	if err := s.SaveChannelPush(ctx, "web", 4, []ChannelShown{{"A", "1", 4}, {"B", "2", 8}}); err != nil {
		t.Fatal(err)
	}
	c, shown, err := s.ChannelPushState(ctx, "web")
	want := map[string]ChannelShown{"A": {"A", "3", 5}, "B": {"B", "2", 8}}
	if err != nil || c != 7 || !reflect.DeepEqual(shown, want) {
		t.Fatalf("web: cursor %d shown %v, %v; want 7 and %v", c, shown, err, want)
	}
	if c, shown, _ := s.ChannelPushState(ctx, "amazon"); c != 2 || shown["A"].Shown != "9" || len(shown) != 1 {
		t.Fatalf("amazon: cursor %d shown %v; want its own state", c, shown)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := int64(10 + i)
			if err := s.SaveChannelPush(ctx, "web", v, []ChannelShown{{"A", "x", v}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c, shown, _ := s.ChannelPushState(ctx, "web"); c != 17 || shown["A"].Version != 17 {
		t.Fatalf("after concurrent saves: cursor %d, A %+v; want the newest (17)", c, shown["A"])
	}
}

func TestSQLiteChannelPushContract(t *testing.T) {
	runChannelPushContract(t, func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) })
}

func TestPostgresChannelPushContract(t *testing.T) {
	runChannelPushContract(t, func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) })
}
