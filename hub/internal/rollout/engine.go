package rollout

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/hub/internal/tradinghours"
	"github.com/lanebridge/lanebridge/protocol"
)

// Store is what the engine reads and changes.
type Store interface {
	Rollouts(ctx context.Context, state string) ([]store.Rollout, error)
	Rollout(ctx context.Context, id int64) (store.Rollout, error)
	Release(ctx context.Context, id int64) (store.Release, error)
	ListStores(ctx context.Context) ([]store.StoreInfo, error)
	AddCommand(ctx context.Context, store string, c protocol.Command) error
	PutRolloutStore(ctx context.Context, id int64, rs store.RolloutStore) error
	AdvanceRollout(ctx context.Context, id int64, from int, at time.Time) (bool, error)
	SetRolloutState(ctx context.Context, id int64, from []string, state, reason string) error
	AddAudit(ctx context.Context, e store.AuditEntry) error
	// ClaimLease takes or renews a lease for owner; false while another owner holds it.
	ClaimLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error)
}

// Publisher sends a command to an agent (QoS 1).
type Publisher interface {
	Publish(topic string, payload []byte) error
}

// Options configure the engine; zero values take the defaults.
type Options struct {
	// Tick is how often running rollouts are stepped (rollouts.tick, default 30s).
	Tick time.Duration
	// ResendAfter is how long a sent command may go unanswered (no Update report for it)
	// before it is sent again, same id (rollouts.resend_after, default 5m).
	ResendAfter time.Duration
	// StoreTimeout is how long after the first send a store may take to report healthy or a
	// failure before it counts as failed with "timeout" (rollouts.store_timeout, default 1h).
	StoreTimeout time.Duration
	// Tries is how many commands a store whose agent reports "failed" (download or disk
	// error, not applied) is offered before it counts as a failure (rollouts.tries, default 3).
	Tries int
	// MaxInFlight caps the stores offered the release and not yet past downloading and
	// verifying (sent, downloading, verifying), so that a large wave does not run into the
	// hub's download limit (default 20; the hub passes rollouts.max_downloads).
	MaxInFlight int
	// OnlineWithin is how recent a store's online status must be (default 90s, as the fleet page).
	OnlineWithin time.Duration
	// Window and Zone are the maintenance window and time zone of stores without their own
	// (rollouts.maintenance_window, default DefaultWindow; alerts.time_zone).
	Window, Zone string
	// Owner names this engine for the lease that lets one hub replica step the rollouts at a
	// time (default: random).
	Owner    string
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Engine steps the running rollouts.
type Engine struct {
	st  Store
	pub Publisher
	o   Options
	log *slog.Logger

	stores   *prometheus.GaugeVec
	rollouts *prometheus.GaugeVec
	sched    map[[2]string]schedOrErr
}

type schedOrErr struct {
	s   *tradinghours.Schedule
	err error
}

// New returns an engine; Run steps it.
func New(st Store, pub Publisher, o Options) *Engine {
	o.Tick = cmp.Or(o.Tick, 30*time.Second)
	o.ResendAfter = cmp.Or(o.ResendAfter, 5*time.Minute)
	o.StoreTimeout = cmp.Or(o.StoreTimeout, time.Hour)
	o.OnlineWithin = cmp.Or(o.OnlineWithin, 90*time.Second)
	o.MaxInFlight = cmp.Or(o.MaxInFlight, 20)
	o.Tries = cmp.Or(o.Tries, 3)
	o.Window = cmp.Or(o.Window, DefaultWindow)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Owner == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Owner = hex.EncodeToString(b[:])
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{st: st, pub: pub, o: o, log: o.Logger.With("component", "rollout"), sched: map[[2]string]schedOrErr{},
		stores: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lanebridge_hub_rollout_stores",
			Help: "Stores of running and paused rollouts by their state in the rollout."}, []string{"state"}),
		rollouts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lanebridge_hub_rollouts",
			Help: "Rollouts by state."}, []string{"state"})}
	if o.Registry != nil {
		o.Registry.MustRegister(e.stores, e.rollouts)
	}
	return e
}

// Run steps the running rollouts every Tick until ctx ends. A failed step is logged and
// retried at the next tick.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.o.Tick)
	defer t.Stop()
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("rollout step failed; retrying at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// failure reports whether a per-store state counts against max_failures.
func failure(state string) bool {
	switch state {
	case protocol.UpdateRolledBack, protocol.UpdateRefused, protocol.UpdateFailed, store.StoreTimeout:
		return true
	}
	return false
}

// inflight reports whether a store was offered the release and may still be downloading it.
func inflight(state string) bool {
	return state == store.StoreSent || state == protocol.UpdateDownloading || state == protocol.UpdateVerifying
}

// terminal reports whether a store is finished in its rollout.
func terminal(state string) bool {
	return failure(state) || state == protocol.UpdateHealthy || state == store.StoreSkipped
}

// Tick steps every running rollout once, when this engine holds the rollouts lease (renewed
// each tick, lost after three missed ticks), and refreshes the metrics.
func (e *Engine) Tick(ctx context.Context) error {
	held, err := e.st.ClaimLease(ctx, "rollouts", e.o.Owner, e.o.Now(), 3*e.o.Tick+time.Second)
	if err != nil {
		return err
	}
	if !held {
		return e.metrics(ctx) // another replica steps them
	}
	all, err := e.st.Rollouts(ctx, "")
	if err != nil {
		return err
	}
	var infos map[string]store.StoreInfo
	var errs []error
	for _, ro := range all {
		if ro.State != store.RolloutRunning {
			continue
		}
		if infos == nil {
			list, err := e.st.ListStores(ctx)
			if err != nil {
				return err
			}
			infos = make(map[string]store.StoreInfo, len(list))
			for _, si := range list {
				infos[si.ID] = si
			}
		}
		if err := e.step(ctx, ro.ID, infos); err != nil {
			errs = append(errs, fmt.Errorf("rollout %d: %w", ro.ID, err))
		}
	}
	return errors.Join(append(errs, e.metrics(ctx))...)
}

func (e *Engine) metrics(ctx context.Context) error {
	all, err := e.st.Rollouts(ctx, "")
	if err != nil {
		return err
	}
	e.rollouts.Reset()
	e.stores.Reset()
	for _, ro := range all {
		e.rollouts.WithLabelValues(ro.State).Inc()
		if ro.State != store.RolloutRunning && ro.State != store.RolloutPaused {
			continue
		}
		full, err := e.st.Rollout(ctx, ro.ID)
		if err != nil {
			return err
		}
		for _, rs := range full.Stores {
			e.stores.WithLabelValues(rs.State).Inc()
		}
	}
	return nil
}

func (e *Engine) audit(ctx context.Context, action, target, detail string) {
	if err := e.st.AddAudit(ctx, store.AuditEntry{Actor: "hub:rollout", Action: action, Target: target, Detail: detail,
		Remote: "local", Outcome: "ok"}); err != nil {
		e.log.Error("audit log write failed", "action", action, "target", target, "err", err)
	}
}

// step advances one rollout: judges each store of the waves reached, halts on too many
// failures, advances the wave when it is finished.
func (e *Engine) step(ctx context.Context, id int64, infos map[string]store.StoreInfo) error {
	ro, err := e.st.Rollout(ctx, id)
	if err != nil {
		return err
	}
	maxf, err := ParseMaxFailures(ro.MaxFailures)
	if err != nil {
		return err
	}
	now := e.o.Now()
	rels := map[int64]store.Release{}
	failures, finished := 0, true
	inFlight := 0
	for _, rs := range ro.Stores {
		if inflight(rs.State) {
			inFlight++
		}
	}
	var failed []string
	for _, rs := range ro.Stores {
		if rs.Wave > ro.Wave {
			continue
		}
		rel, ok := rels[rs.Release]
		if !ok {
			if rel, err = e.st.Release(ctx, rs.Release); err != nil {
				return err
			}
			rels[rs.Release] = rel
		}
		if !now.Before(rel.Expires) && !terminal(rs.State) {
			// Agents refuse an expired manifest: halt rather than count every store as failed.
			reason := fmt.Sprintf("halted at wave %d: release %s %s/%s %s expired at %s; publish it again and start a new rollout",
				ro.Wave+1, rel.Version, rel.OS, rel.Arch, rel.Channel, rel.Expires.UTC().Format(time.RFC3339))
			return e.halt(ctx, id, reason)
		}
		next, err := e.judge(ctx, ro, rel, rs, infos[rs.Store], now, &inFlight)
		if err != nil {
			return err
		}
		if inflight(rs.State) && !inflight(next.State) {
			inFlight-- // its download is over: a later store may take the slot in this tick
		}
		if next != rs {
			next.UpdatedAt = now
			if err := e.st.PutRolloutStore(ctx, id, next); err != nil {
				return err
			}
			if next.State != rs.State {
				e.log.Info("rollout store", "rollout", id, "store", rs.Store, "from", rs.State, "to", next.State, "detail", next.Detail)
				e.audit(ctx, "rollout store "+next.State, fmt.Sprintf("rollout/%d/%s", id, rs.Store),
					fmt.Sprintf("%s -> %s %s", rs.State, next.State, next.Detail))
			}
		}
		if failure(next.State) {
			failures++
			failed = append(failed, fmt.Sprintf("%s %s", next.Store, next.State))
		}
		finished = finished && terminal(next.State)
	}
	if float64(failures) > maxf.Allowed(len(ro.Stores)) {
		reason := fmt.Sprintf("halted at wave %d: %d failures of %d stores cross max_failures %s (%s)", ro.Wave+1, failures,
			len(ro.Stores), ro.MaxFailures, strings.Join(first(failed, 10), ", "))
		return e.halt(ctx, id, reason)
	}
	if !finished {
		return nil
	}
	if ro.Wave+1 >= len(ro.Waves) {
		reason := fmt.Sprintf("all %d waves finished: %d failures of %d stores", len(ro.Waves), failures, len(ro.Stores))
		if err := e.st.SetRolloutState(ctx, id, []string{store.RolloutRunning}, store.RolloutDone, reason); err != nil {
			return err
		}
		e.audit(ctx, "rollout done", fmt.Sprintf("rollout/%d", id), reason)
		return nil
	}
	moved, err := e.st.AdvanceRollout(ctx, id, ro.Wave, now)
	if moved {
		w := ro.Waves[ro.Wave+1]
		e.log.Info("rollout wave", "rollout", id, "wave", w.Wave+1, "target", w.Target, "stores", w.Stores)
		e.audit(ctx, "rollout wave", fmt.Sprintf("rollout/%d", id), fmt.Sprintf("wave %d (%s, %d stores cumulative) started", w.Wave+1, w.Target, w.Stores))
	}
	return err
}

// sameVersion compares semantic versions ("1.2.0" is "v1.2.0"), else the strings.
func sameVersion(a, b string) bool {
	c, err := protocol.CompareVersions(a, b)
	return a == b || err == nil && c == 0
}

// halt stops a running rollout by itself, with the reason.
func (e *Engine) halt(ctx context.Context, id int64, reason string) error {
	if err := e.st.SetRolloutState(ctx, id, []string{store.RolloutRunning}, store.RolloutHalted, reason); err != nil {
		return err
	}
	e.log.Warn("rollout halted", "rollout", id, "reason", reason)
	e.audit(ctx, "rollout halted", fmt.Sprintf("rollout/%d", id), reason)
	return nil
}

func first(s []string, n int) []string { return s[:min(len(s), n)] }

// judge returns a store's next state in its rollout, sending or resending the command when
// the store is ready.
func (e *Engine) judge(ctx context.Context, ro store.Rollout, rel store.Release, rs store.RolloutStore, si store.StoreInfo, now time.Time, inFlight *int) (store.RolloutStore, error) {
	if terminal(rs.State) {
		return rs, nil
	}
	if si.ID == "" || si.State != store.StoreActive {
		rs.State, rs.Detail = store.StoreSkipped, "store "+cmp.Or(si.State, "removed")+" since the rollout started"
		return rs, nil
	}
	st := si.Status
	version := rel.Version
	// The outcome the agent reported for this rollout's command.
	if st != nil && rs.CommandID != "" {
		if u := st.Update; u != nil && (u.CommandID == rs.CommandID || u.CommandID == "" && sameVersion(u.Version, version)) {
			switch {
			case u.State == protocol.UpdateHealthy && sameVersion(st.Version, version):
				rs.State, rs.Detail = protocol.UpdateHealthy, "runs "+version
				return rs, nil
			case u.State == protocol.UpdateHealthy:
				// healthy, yet the status names another version: wait for the next status.
			case u.State == protocol.UpdateFailed && max(rs.Tries, 1) < e.o.Tries:
				// Not applied (download or disk): offer it again, under a new id.
				rs.State, rs.Detail = store.StorePending, fmt.Sprintf("try %d failed: %s; trying again", max(rs.Tries, 1), u.Detail)
				rs.Tries, rs.CommandID, rs.Attempts, rs.SentAt = max(rs.Tries, 1), "", 0, time.Time{}
				return rs, nil
			case u.State != "":
				rs.State, rs.Detail = u.State, u.Detail
				if terminal(rs.State) {
					return rs, nil
				}
			}
		}
	}
	if rs.State == store.StorePending && st != nil {
		if c, err := protocol.CompareVersions(st.Version, version); err == nil && c >= 0 {
			rs.State, rs.Detail = protocol.UpdateHealthy, "already runs "+st.Version
			return rs, nil
		}
	}
	if !rs.SentAt.IsZero() && now.Sub(rs.SentAt) >= e.o.StoreTimeout {
		rs.State, rs.Detail = store.StoreTimeout, fmt.Sprintf("no outcome %s after the first send (%d sends)", e.o.StoreTimeout, rs.Attempts)
		return rs, nil
	}
	resend := rs.State == store.StoreSent && !now.Before(rs.SentAt.Add(time.Duration(rs.Attempts)*e.o.ResendAfter))
	if rs.State != store.StorePending && !resend {
		return rs, nil
	}
	why := e.notReady(si, now)
	if why == "" && rs.State == store.StorePending && *inFlight >= e.o.MaxInFlight {
		why = fmt.Sprintf("%d stores are downloading (at most %d at once)", *inFlight, e.o.MaxInFlight)
	}
	if why != "" {
		if rs.State == store.StorePending {
			rs.Detail = "waiting: " + why
		}
		return rs, nil
	}
	if rs.State == store.StorePending {
		*inFlight++
	}
	if rs.CommandID == "" {
		rs.Tries++
		rs.CommandID = fmt.Sprintf("rollout-%d-%s", ro.ID, rs.Store)
		if rs.Tries > 1 {
			rs.CommandID += fmt.Sprintf("-%d", rs.Tries)
		}
	}
	c := protocol.Command{V: protocol.Version, ID: rs.CommandID, Type: protocol.CommandUpdate, Manifest: &rel.Manifest, URL: BinaryPath(rel)}
	if rs.Attempts == 0 {
		if err := e.st.AddCommand(ctx, rs.Store, c); err != nil && !errors.Is(err, store.ErrExists) {
			return rs, err
		}
	}
	body, err := json.Marshal(c)
	if err != nil {
		return rs, err
	}
	if err := e.pub.Publish(protocol.CommandsTopic(rs.Store), body); err != nil {
		e.log.Warn("publish update command", "store", rs.Store, "err", err)
		return rs, nil // retried at the next tick
	}
	if rs.Attempts == 0 {
		rs.SentAt = now
	}
	rs.Attempts++
	rs.State, rs.Detail = store.StoreSent, fmt.Sprintf("offered %s (send %d)", version, rs.Attempts)
	return rs, nil
}

// notReady says why a store may not be sent the update now ("" when it may): offline,
// outside its maintenance window (in its zone), or with a backlog.
func (e *Engine) notReady(si store.StoreInfo, now time.Time) string {
	st := si.Status
	if st == nil || st.State != "online" || now.Sub(si.StatusAt) >= e.o.OnlineWithin {
		return "offline"
	}
	if st.Backlog > 0 {
		return fmt.Sprintf("backlog of %d records to drain", st.Backlog)
	}
	spec, zone := cmp.Or(si.Maintenance, e.o.Window), cmp.Or(si.TimeZone, e.o.Zone)
	k := [2]string{spec, zone}
	s, ok := e.sched[k]
	if !ok {
		s.s, s.err = tradinghours.New(spec, zone)
		e.sched[k] = s
	}
	if s.err != nil {
		return "maintenance window: " + s.err.Error()
	}
	if !s.s.Trading(now) {
		return "outside its maintenance window " + s.s.String()
	}
	return ""
}
