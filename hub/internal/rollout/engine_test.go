package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// recorder stands in for the broker (the commands it would deliver are what is checked).
type recorder struct {
	mu   sync.Mutex
	sent []protocol.Command
	to   []string
}

func (r *recorder) Publish(topic string, payload []byte) error {
	c, err := protocol.DecodeCommand(payload)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent, r.to = append(r.sent, *c), append(r.to, topic)
	return nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.to
	r.to, r.sent = nil, nil
	for i, t := range out {
		out[i] = strings.Split(t, "/")[2]
	}
	return out
}

type env struct {
	t    *testing.T
	st   *store.DB
	pub  *recorder
	eng  *Engine
	now  time.Time
	rid  int64
	ctx  context.Context
	rel  store.Release
	list []string
}

// newEnv enrols n stores S01..Sn on v1.0.0, linux/amd64, online, backlog 0, and publishes
// v1.1.0. The clock starts at 03:00 UTC, inside the default window.
func newEnv(t *testing.T, n int) *env {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, pub: &recorder{}, now: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), ctx: ctx}
	e.eng = New(st, e.pub, Options{ResendAfter: time.Minute, StoreTimeout: 10 * time.Minute, Zone: "UTC", Now: func() time.Time { return e.now }})
	rel := store.Release{Version: "v1.1.0", OS: "linux", Arch: "amd64", Channel: "stable", SHA256: strings.Repeat("0", 64), Size: 1,
		Manifest: protocol.SignedManifest{Body: "{}", Signature: "sig"}, File: "f", Expires: e.now.Add(30 * 24 * time.Hour)}
	if rel.ID, err = st.AddRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	e.rel = rel
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("S%02d", i)
		if err := st.AddStore(ctx, id, "h"); err != nil {
			t.Fatal(err)
		}
		e.list = append(e.list, id)
		e.status(id, "v1.0.0", 0, nil)
	}
	return e
}

func (e *env) status(id, version string, backlog uint64, u *protocol.UpdateReport) {
	e.t.Helper()
	st := protocol.Status{V: protocol.Version, Store: id, State: "online", Version: version, Backlog: backlog, Clock: e.now,
		OS: "linux", Arch: "amd64", Channel: "stable", Update: u}
	if err := e.st.PutStatus(e.ctx, st, e.now); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) start(waves, maxf string) {
	e.t.Helper()
	ts, err := ParseWaves(waves)
	if err != nil {
		e.t.Fatal(err)
	}
	stores, _ := e.st.ListStores(e.ctx)
	rels, _ := e.st.Releases(e.ctx, "")
	w, rs, _, err := Plan("v1.1.0", Filter{}, ts, stores, rels)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.rid, err = e.st.AddRollout(e.ctx, store.Rollout{Version: "v1.1.0", MaxFailures: maxf, Waves: w}, rs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) tick() {
	e.t.Helper()
	if err := e.eng.Tick(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) rollout() store.Rollout {
	e.t.Helper()
	ro, err := e.st.Rollout(e.ctx, e.rid)
	if err != nil {
		e.t.Fatal(err)
	}
	return ro
}

func (e *env) storeState(id string) store.RolloutStore {
	for _, rs := range e.rollout().Stores {
		if rs.Store == id {
			return rs
		}
	}
	e.t.Fatalf("store %s not in the rollout", id)
	return store.RolloutStore{}
}

// healthy reports what an agent reports after a good update.
func (e *env) healthy(id string) {
	e.status(id, "v1.1.0", 0, &protocol.UpdateReport{CommandID: fmt.Sprintf("rollout-%d-%s", e.rid, id), Version: "v1.1.0", State: protocol.UpdateHealthy})
}

func (e *env) report(id, state string) {
	e.status(id, "v1.0.0", 0, &protocol.UpdateReport{CommandID: fmt.Sprintf("rollout-%d-%s", e.rid, id), Version: "v1.1.0", State: state, Detail: "because"})
}

func eq(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestWavesAdvanceOnlyWhenHealthy(t *testing.T) {
	e := newEnv(t, 10)
	e.start("1,30%,100%", "0")
	e.tick()
	if got := e.pub.take(); !eq(got, []string{"S01"}) {
		t.Fatalf("wave 1 sent to %v, want S01", got)
	}
	c := e.storeState("S01")
	if c.State != store.StoreSent || c.CommandID == "" || c.Attempts != 1 {
		t.Fatalf("S01 = %+v", c)
	}
	// The command is stored (idempotent by id) and points at the release's binary.
	if cr, err := e.st.Command(e.ctx, c.CommandID); err != nil || cr.Command.Type != protocol.CommandUpdate ||
		cr.Command.URL != "/api/v1/agent/releases/v1.1.0/linux/amd64/binary?channel=stable" || cr.Command.Manifest.Signature != "sig" {
		t.Fatalf("stored command = %+v, %v", cr, err)
	}
	// trial is not healthy: the wave waits.
	e.report("S01", protocol.UpdateTrial)
	e.tick()
	if got := e.pub.take(); len(got) != 0 || e.rollout().Wave != 0 {
		t.Fatalf("advanced during trial: sent %v, wave %d", got, e.rollout().Wave)
	}
	e.healthy("S01")
	e.tick() // S01 healthy, wave 1 done -> wave 2
	if ro := e.rollout(); ro.Wave != 1 {
		t.Fatalf("wave = %d after S01 healthy", ro.Wave)
	}
	e.tick()
	if got := e.pub.take(); !eq(got, []string{"S02", "S03"}) {
		t.Fatalf("wave 2 sent to %v, want S02,S03", got)
	}
	// An agent stamped without the v reports the same version.
	e.status("S02", "1.1.0", 0, &protocol.UpdateReport{CommandID: fmt.Sprintf("rollout-%d-S02", e.rid), Version: "1.1.0", State: protocol.UpdateHealthy})
	e.tick()
	if st := e.storeState("S02").State; st != protocol.UpdateHealthy {
		t.Fatalf("S02 reporting 1.1.0 healthy: %s", st)
	}
	if e.rollout().Wave != 1 {
		t.Fatal("advanced with S03 still sent")
	}
	e.healthy("S03")
	e.tick()
	e.tick()
	if got := e.pub.take(); len(got) != 7 {
		t.Fatalf("wave 3 sent to %v", got)
	}
	for _, id := range e.list[3:] {
		e.healthy(id)
	}
	e.tick()
	ro := e.rollout()
	if ro.State != store.RolloutDone {
		t.Fatalf("rollout = %s %s", ro.State, ro.Reason)
	}
	for _, w := range ro.Waves {
		if w.StartedAt.IsZero() || w.FinishedAt.IsZero() {
			t.Errorf("wave %d of a done rollout: started %v, finished %v", w.Wave+1, w.StartedAt, w.FinishedAt)
		}
	}
	audit, _ := e.st.Audit(e.ctx, 0, 100)
	var actions []string
	for _, a := range audit {
		if a.Actor == "hub:rollout" {
			actions = append(actions, a.Action)
		}
	}
	if j := strings.Join(actions, ","); !strings.Contains(j, "rollout done") || strings.Count(j, "rollout wave") != 2 || strings.Count(j, "rollout store healthy") != 10 {
		t.Fatalf("audit actions = %s", j)
	}
}

func TestWindowBacklogAndOffline(t *testing.T) {
	e := newEnv(t, 3)
	if err := e.st.SetStoreMaintenance(e.ctx, "S02", "Mon-Sun 01:00-02:00"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetStoreSchedule(e.ctx, "S03", "", "Asia/Tokyo"); err != nil { // 03:00 UTC is 12:00 there
		t.Fatal(err)
	}
	e.status("S01", "v1.0.0", 5, nil)
	e.start("100%", "100%") // S01 times out below (store_timeout 10m) and must not halt it
	e.tick()
	if got := e.pub.take(); len(got) != 0 {
		t.Fatalf("sent to %v: backlog, window and zone should all hold", got)
	}
	for id, want := range map[string]string{"S01": "backlog of 5", "S02": "outside its maintenance window", "S03": "Asia/Tokyo"} {
		if d := e.storeState(id).Detail; !strings.Contains(d, want) {
			t.Errorf("%s detail %q, want %q", id, d, want)
		}
	}
	e.status("S01", "v1.0.0", 0, nil)
	e.tick()
	if got := e.pub.take(); !eq(got, []string{"S01"}) {
		t.Fatalf("after the backlog drained: sent to %v", got)
	}
	// S03's window: 02:00-05:00 Tokyo is 17:00-20:00 UTC. An offline S03 is not sent to.
	e.now = time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	if err := e.st.PutStatus(e.ctx, protocol.Status{V: protocol.Version, Store: "S03", State: "offline"}, e.now); err != nil {
		t.Fatal(err)
	}
	e.status("S01", "v1.0.0", 0, nil) // keep S01 online, unanswered
	e.tick()
	for _, id := range e.pub.take() {
		if id == "S03" {
			t.Fatal("sent to an offline store")
		}
	}
	e.status("S03", "v1.0.0", 0, nil)
	e.tick()
	got := e.pub.take()
	if !eq(got, []string{"S03"}) && !eq(got, []string{"S01", "S03"}) {
		t.Fatalf("inside Tokyo's window: sent to %v: %+v", got, e.storeState("S03"))
	}
	// S02 at 01:30 UTC, its own window.
	e.now = time.Date(2026, 12, 2, 1, 30, 0, 0, time.UTC)
	for _, id := range e.list {
		e.status(id, "v1.0.0", 0, nil)
	}
	e.tick()
	if got := e.pub.take(); !strings.Contains(strings.Join(got, ","), "S02") {
		t.Fatalf("inside S02's window: sent to %v", got)
	}
}

func TestResendAndTimeout(t *testing.T) {
	e := newEnv(t, 1)
	e.start("100%", "100%")
	e.tick()
	if got := e.pub.take(); len(got) != 1 {
		t.Fatalf("sent %v", got)
	}
	id := e.storeState("S01").CommandID
	e.now = e.now.Add(30 * time.Second)
	e.status("S01", "v1.0.0", 0, nil)
	e.tick()
	if got := e.pub.take(); len(got) != 0 {
		t.Fatalf("resent before resend_after: %v", got)
	}
	e.now = e.now.Add(31 * time.Second)
	e.status("S01", "v1.0.0", 0, nil)
	e.tick()
	e.pub.mu.Lock()
	if len(e.pub.sent) != 1 || e.pub.sent[0].ID != id {
		t.Fatalf("resend = %+v, want the same command id %s", e.pub.sent, id)
	}
	e.pub.mu.Unlock()
	e.pub.take()
	if rs := e.storeState("S01"); rs.Attempts != 2 {
		t.Fatalf("attempts = %d", rs.Attempts)
	}
	// Downloading stops the resends; no outcome within store_timeout is a timeout.
	e.report("S01", protocol.UpdateDownloading)
	e.now = e.now.Add(5 * time.Minute)
	e.tick()
	if got := e.pub.take(); len(got) != 0 || e.storeState("S01").State != protocol.UpdateDownloading {
		t.Fatalf("while downloading: sent %v, state %s", got, e.storeState("S01").State)
	}
	e.now = e.now.Add(5 * time.Minute)
	e.tick()
	if rs := e.storeState("S01"); rs.State != store.StoreTimeout {
		t.Fatalf("state = %s, want timeout", rs.State)
	}
	if ro := e.rollout(); ro.State != store.RolloutDone || !strings.Contains(ro.Reason, "1 failures") {
		t.Fatalf("rollout %s %q (100%% failures allowed)", ro.State, ro.Reason)
	}
}

func TestHaltWhenFailuresCrossThreshold(t *testing.T) {
	e := newEnv(t, 20)
	e.start("2,50%,100%", "5%") // 5% of 20: one failure tolerated, two halt
	e.tick()
	if got := e.pub.take(); !eq(got, []string{"S01", "S02"}) {
		t.Fatalf("wave 1: %v", got)
	}
	e.healthy("S01")
	e.report("S02", protocol.UpdateRolledBack)
	e.tick()
	e.tick()
	if ro := e.rollout(); ro.State != store.RolloutRunning || ro.Wave != 1 {
		t.Fatalf("one failure of 20 under 5%%: %s wave %d %s", ro.State, ro.Wave, ro.Reason)
	}
	sent := e.pub.take()
	if len(sent) != 8 {
		t.Fatalf("wave 2 sent to %d stores", len(sent))
	}
	e.report("S03", protocol.UpdateRefused)
	e.tick()
	ro := e.rollout()
	if ro.State != store.RolloutHalted || !strings.Contains(ro.Reason, "2 failures of 20") || !strings.Contains(ro.Reason, "S03 refused") || ro.Wave != 1 {
		t.Fatalf("rollout = %s wave %d %q", ro.State, ro.Wave, ro.Reason)
	}
	// A halted rollout sends nothing more and the third wave never starts.
	e.now = e.now.Add(time.Hour)
	for _, id := range e.list {
		e.status(id, "v1.0.0", 0, nil)
	}
	e.tick()
	if got := e.pub.take(); len(got) != 0 {
		t.Fatalf("halted rollout sent to %v", got)
	}
	if rs := e.storeState("S20"); rs.State != store.StorePending || rs.Wave != 2 {
		t.Fatalf("S20 = %+v", rs)
	}
	// Metrics count the per-store states of paused/running rollouts only; halted shows in lanebridge_hub_rollouts.
	b, _ := json.Marshal(ro)
	if !strings.Contains(string(b), `"state":"halted"`) {
		t.Fatalf("json %s", b)
	}
}

// A large wave is offered a few stores at a time: never more in flight than the hub serves
// downloads to.
func TestInFlightCap(t *testing.T) {
	e := newEnv(t, 5)
	e.eng.o.MaxInFlight = 2
	e.start("100%", "0")
	e.tick()
	if got := e.pub.take(); !eq(got, []string{"S01", "S02"}) {
		t.Fatalf("first tick sent to %v", got)
	}
	if d := e.storeState("S03").Detail; !strings.Contains(d, "2 stores are downloading") {
		t.Fatalf("S03 detail %q", d)
	}
	e.report("S01", protocol.UpdateDownloading)
	e.tick()
	if got := e.pub.take(); len(got) != 0 {
		t.Fatalf("sent to %v with 2 in flight", got)
	}
	e.report("S01", protocol.UpdateTrial) // downloaded: a slot frees
	e.tick()
	if got := e.pub.take(); !eq(got, []string{"S03"}) {
		t.Fatalf("after S01 downloaded: sent to %v", got)
	}
}

// An agent that reports "failed" (not applied) is offered the release again under a new id,
// up to Tries commands; then it counts as a failure.
func TestFailedIsRetried(t *testing.T) {
	e := newEnv(t, 1)
	e.start("100%", "0")
	var ids []string
	for try := 1; try <= 3; try++ {
		e.tick()
		e.pub.mu.Lock()
		if len(e.pub.sent) != 1 {
			e.pub.mu.Unlock()
			t.Fatalf("try %d: sent %d commands", try, len(e.pub.sent))
		}
		id := e.pub.sent[0].ID
		e.pub.mu.Unlock()
		e.pub.take()
		ids = append(ids, id)
		e.status("S01", "v1.0.0", 0, &protocol.UpdateReport{CommandID: id, Version: "v1.1.0", State: protocol.UpdateFailed, Detail: "download: 503"})
		e.tick()
		if ro := e.rollout(); try < 3 && ro.State != store.RolloutRunning {
			t.Fatalf("try %d: rollout %s %s", try, ro.State, ro.Reason)
		}
	}
	if !eq(ids, []string{"rollout-1-S01", "rollout-1-S01-2", "rollout-1-S01-3"}) {
		t.Fatalf("command ids %v", ids)
	}
	if rs := e.storeState("S01"); rs.State != protocol.UpdateFailed || rs.Tries != 3 {
		t.Fatalf("S01 = %+v", rs)
	}
	if ro := e.rollout(); ro.State != store.RolloutHalted {
		t.Fatalf("rollout %s after the third failure (max 0)", ro.State)
	}
}

func TestExpiredReleaseHalts(t *testing.T) {
	e := newEnv(t, 2)
	e.start("1,100%", "100%")
	e.tick()
	e.pub.take()
	e.now = e.rel.Expires
	e.tick()
	if ro := e.rollout(); ro.State != store.RolloutHalted || !strings.Contains(ro.Reason, "expired") {
		t.Fatalf("rollout %s %q", ro.State, ro.Reason)
	}
	if got := e.pub.take(); len(got) != 0 {
		t.Fatalf("sent %v", got)
	}
}

func TestPausedRolloutSendsNothing(t *testing.T) {
	e := newEnv(t, 2)
	e.start("100%", "0")
	if err := e.st.SetRolloutState(e.ctx, e.rid, []string{store.RolloutRunning}, store.RolloutPaused, ""); err != nil {
		t.Fatal(err)
	}
	e.tick()
	if got := e.pub.take(); len(got) != 0 {
		t.Fatalf("paused rollout sent to %v", got)
	}
	if err := e.st.SetRolloutState(e.ctx, e.rid, []string{store.RolloutPaused}, store.RolloutRunning, ""); err != nil {
		t.Fatal(err)
	}
	e.tick()
	if got := e.pub.take(); len(got) != 2 {
		t.Fatalf("resumed rollout sent to %v", got)
	}
}

// Two hub replicas on one database: only the one holding the lease sends; the other takes
// over when the first stops renewing it.
func TestOneReplicaSteps(t *testing.T) {
	e := newEnv(t, 2)
	e.start("100%", "100%")
	other := &recorder{}
	second := New(e.st, other, Options{Tick: time.Second, ResendAfter: time.Minute, Zone: "UTC", Owner: "second", Now: func() time.Time { return e.now }})
	e.tick()
	if err := second.Tick(e.ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.pub.take()) != 2 || len(other.take()) != 0 {
		t.Fatal("both replicas stepped, or the first did not")
	}
	e.now = e.now.Add(2 * time.Minute) // the first stopped ticking
	for _, id := range e.list {
		e.status(id, "v1.0.0", 0, nil)
	}
	if err := second.Tick(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := other.take(); len(got) != 2 {
		t.Fatalf("the second replica did not take over: %v", got)
	}
}

func TestPlan(t *testing.T) {
	st := func(id, os, version string) store.StoreInfo {
		return store.StoreInfo{ID: id, State: store.StoreActive, Status: &protocol.Status{OS: os, Arch: "amd64", Version: version}}
	}
	stores := []store.StoreInfo{st("C", "linux", "v1.0.0"), st("A", "linux", "v1.0.0"), st("B", "linux", "v2.0.0"),
		st("D", "windows", "v1.0.0"), st("E", "", ""), st("F", "linux", "dev"), st("G", "linux", "v1.9.9")}
	rels := []store.Release{{ID: 1, Version: "v2.0.0", OS: "linux", Arch: "amd64", Channel: "stable", MinFrom: "v1.0.0"}}
	stores = append(stores, st("H", "linux", "v0.9.0"))
	ts, _ := ParseWaves("1,100%")
	w, rs, skipped, err := Plan("v2.0.0", Filter{}, ts, stores, rels)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, fmt.Sprint(r.Store, r.Wave))
	}
	if !eq(ids, []string{"A0", "C1", "G1"}) || w[0].Stores != 1 || w[1].Stores != 3 || len(skipped) != 3 || !strings.Contains(skipped[2], "min_from") {
		t.Fatalf("plan = %v %+v skipped %v", ids, w, skipped)
	}
	if _, _, _, err := Plan("v3.0.0", Filter{}, ts, stores, rels); err == nil {
		t.Fatal("planned an unpublished version")
	}
	for _, bad := range []string{"", "0", "10%,5%", "50%", "1,x", "101%", "5,2,100%"} {
		if _, err := ParseWaves(bad); err == nil {
			t.Errorf("ParseWaves(%q) accepted", bad)
		}
	}
	for _, c := range []struct {
		spec string
		n    int
		want float64
	}{{"5%", 20, 1}, {"5%", 1, 0.05}, {"0", 100, 0}, {"3", 10, 3}, {"0%", 5, 0}} {
		m, err := ParseMaxFailures(c.spec)
		if err != nil || m.Allowed(c.n) != c.want {
			t.Errorf("max failures %s of %d = %v, %v; want %v", c.spec, c.n, m.Allowed(c.n), err, c.want)
		}
	}
}
