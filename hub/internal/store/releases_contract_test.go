package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// runReleasesContract covers releases (unique per version/os/arch/channel), rollouts with
// their waves and stores, state changes, wave advance and store maintenance windows.
func runReleasesContract(t *testing.T, s *DB) {
	ctx := context.Background()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rel := Release{Version: "v1.2.0", OS: "linux", Arch: "amd64", Channel: "stable", SHA256: strings.Repeat("ab", 32), Size: 42,
		Manifest: protocol.SignedManifest{Body: `{"v":1}`, Signature: "untrusted comment: x\nRW..."}, File: strings.Repeat("ab", 32),
		Expires: exp, PublishedBy: "cli:ana"}
	id, err := s.AddRelease(ctx, rel)
	if err != nil || id == 0 {
		t.Fatalf("AddRelease = %d, %v", id, err)
	}
	if _, err := s.AddRelease(ctx, rel); !errors.Is(err, ErrExists) {
		t.Fatalf("AddRelease twice: %v, want ErrExists", err)
	}
	arm := rel
	arm.Arch = "arm64"
	idArm, err := s.AddRelease(ctx, arm)
	if err != nil || idArm == id {
		t.Fatalf("AddRelease arm64 = %d, %v", idArm, err)
	}
	list, err := s.Releases(ctx, "v1.2.0")
	if err != nil || len(list) != 2 || list[0].ID != idArm {
		t.Fatalf("Releases = %+v, %v", list, err)
	}
	got, err := s.Release(ctx, id)
	if err != nil || got.Manifest != rel.Manifest || !got.Expires.Equal(exp) || got.Size != 42 || got.PublishedBy != "cli:ana" {
		t.Fatalf("Release = %+v, %v", got, err)
	}
	if l, _ := s.Releases(ctx, "v9.9.9"); len(l) != 0 {
		t.Fatalf("Releases(v9.9.9) = %v", l)
	}

	for _, st := range []string{"A", "B", "C"} {
		mustAddStore(t, s, st)
	}
	if err := s.SetStoreMaintenance(ctx, "A", "Mon-Sun 01:00-04:00"); err != nil {
		t.Fatal(err)
	}
	if si, _ := s.GetStore(ctx, "A"); si.Maintenance != "Mon-Sun 01:00-04:00" {
		t.Fatalf("maintenance = %q", si.Maintenance)
	}
	if err := s.SetStoreMaintenance(ctx, "nope", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetStoreMaintenance(unknown) = %v", err)
	}

	ro := Rollout{Version: "v1.2.0", MaxFailures: "5%", CreatedBy: "cli:ana",
		Waves: []Wave{{Wave: 0, Target: "1", Stores: 1}, {Wave: 1, Target: "100%", Stores: 3}}}
	rid, err := s.AddRollout(ctx, ro, []RolloutStore{{Store: "A", Wave: 0, Release: id, FromVersion: "v1.1.0"},
		{Store: "B", Wave: 1, Release: id}, {Store: "C", Wave: 1, Release: idArm}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRollout(ctx, ro, nil); !errors.Is(err, ErrRolloutState) {
		t.Fatalf("second running rollout: %v, want ErrRolloutState", err)
	}
	r, err := s.Rollout(ctx, rid)
	if err != nil || r.State != RolloutRunning || len(r.Waves) != 2 || len(r.Stores) != 3 || r.Stores[0].Store != "A" ||
		r.Stores[0].State != StorePending || r.Stores[0].FromVersion != "v1.1.0" || r.Waves[0].StartedAt.IsZero() || !r.Waves[1].StartedAt.IsZero() {
		t.Fatalf("Rollout = %+v, %v", r, err)
	}
	sent := time.Now().UTC().Truncate(time.Second)
	if err := s.PutRolloutStore(ctx, rid, RolloutStore{Store: "A", State: StoreSent, CommandID: "c1", Tries: 2, Attempts: 1, SentAt: sent}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRolloutStore(ctx, rid, RolloutStore{Store: "Z", State: StoreSent}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PutRolloutStore(not in rollout) = %v", err)
	}
	if moved, err := s.AdvanceRollout(ctx, rid, 1, time.Now()); moved || err != nil {
		t.Fatalf("advance from the wrong wave = %v, %v", moved, err)
	}
	if moved, err := s.AdvanceRollout(ctx, rid, 0, time.Now()); !moved || err != nil {
		t.Fatalf("advance = %v, %v", moved, err)
	}
	r, _ = s.Rollout(ctx, rid)
	if r.Wave != 1 || r.Waves[0].FinishedAt.IsZero() || r.Waves[1].StartedAt.IsZero() || r.Stores[0].CommandID != "c1" ||
		!r.Stores[0].SentAt.Equal(sent) || r.Stores[0].Attempts != 1 || r.Stores[0].Tries != 2 {
		t.Fatalf("after advance: %+v", r)
	}
	if err := s.SetRolloutState(ctx, rid, []string{RolloutRunning}, RolloutPaused, "by ana"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRolloutState(ctx, rid, []string{RolloutRunning}, RolloutHalted, ""); !errors.Is(err, ErrRolloutState) {
		t.Fatalf("halt a paused rollout: %v", err)
	}
	if moved, _ := s.AdvanceRollout(ctx, rid, 1, time.Now()); moved {
		t.Fatal("a paused rollout advanced")
	}
	if err := s.SetRolloutState(ctx, 999, []string{RolloutRunning}, RolloutPaused, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown rollout: %v", err)
	}
	if l, err := s.Rollouts(ctx, RolloutPaused); err != nil || len(l) != 1 || l[0].Reason != "by ana" || len(l[0].Waves) != 2 {
		t.Fatalf("Rollouts(paused) = %+v, %v", l, err)
	}
	if err := s.SetRolloutState(ctx, rid, []string{RolloutRunning, RolloutPaused}, RolloutAborted, "stop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRollout(ctx, ro, nil); err != nil {
		t.Fatalf("a rollout after the aborted one: %v", err)
	}

	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		owner string
		at    time.Duration
		want  bool
	}{{"a", 0, true}, {"b", time.Second, false}, {"a", 5 * time.Second, true}, {"b", 14 * time.Second, false}, {"b", 16 * time.Second, true}, {"a", 17 * time.Second, false}} {
		got, err := s.ClaimLease(ctx, "rollouts", c.owner, t0.Add(c.at), 10*time.Second)
		if err != nil || got != c.want {
			t.Fatalf("ClaimLease(%s at +%s) = %v, %v; want %v", c.owner, c.at, got, err, c.want)
		}
	}
}

func TestSQLiteReleasesContract(t *testing.T) {
	runReleasesContract(t, openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")))
}

func TestPostgresReleasesContract(t *testing.T) {
	runReleasesContract(t, openPostgresT(t, pgSchema(t)))
}
