// Package ingest applies what agents publish: record batches go to the store in seq order per
// store, and the ack is published only after the commit that made them durable returned.
// Status messages update the store's status and raise exceptions for quarantined captures and
// agent alarms.
//
// The pipeline: Handle only queues a message (the broker's read goroutine for that agent does
// nothing else); messages are spread over shard workers by store id, each with a bounded queue,
// and the payload bytes queued or in flight are bounded too (Options.MaxPendingBytes), so a
// flood blocks the senders' connections (back-pressure) instead of growing memory. A shard
// worker decodes and validates its messages in arrival order, merges consecutive batches of one
// stream and hands them to the committer, which applies whatever batches of all shards are
// waiting in one transaction (group commit: one fsync for many stores) and then publishes each
// batch's ack, in order. One store's batches therefore pass through one worker and one
// committer in arrival order, while decoding runs beside the commits.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"hash/fnv"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// Store is what the ingester writes to the hub's store.
type Store interface {
	// ApplyBatch applies records of one (store, epoch) in ascending contiguous seq order, in one
	// transaction, and reports the stream's progress (store.ErrNotFound for an unknown store).
	ApplyBatch(ctx context.Context, store, epoch string, recs []protocol.Record) (store.ApplyResult, error)
	// ApplyReplay stores again records a replay command asked for.
	ApplyReplay(ctx context.Context, store, epoch string, recs []protocol.Record) (store.ReplayResult, error)
	// PutStatus keeps the latest status of an agent.
	PutStatus(ctx context.Context, st protocol.Status, at time.Time) error
	// PutCommandResult stores an agent's result for a command it was sent.
	PutCommandResult(ctx context.Context, store string, r protocol.CommandResult) (bool, error)
	// RaiseException creates an open exception or coalesces into the one of the same
	// (store, reason, key).
	RaiseException(ctx context.Context, e store.Exception) (bool, error)
}

// GroupStore is a Store that can apply many batches in one transaction (store.DB can). The
// ingester uses it when several batches wait to be applied together.
type GroupStore interface {
	ApplyBatches(ctx context.Context, bs []store.BatchApply) []store.BatchOutcome
}

// Publisher sends a message to agents (QoS 1, not retained). Safe for concurrent use.
type Publisher interface {
	Publish(topic string, payload []byte) error
}

// Message is one MQTT message handed to the ingester.
type Message struct {
	Topic   string
	Payload []byte

	held int64 // bytes of the pending budget this message holds (set by Handle)
}

// pending is a decoded (possibly merged) record batch, or a rejected one, on its way to the
// committer, with the bytes of the pending budget its messages hold. A rejection goes through the
// committer too, so that its Ack.Rejected follows the acks of the stream's earlier batches.
type pending struct {
	b    *protocol.Batch
	rej  *rejection
	held int64
}

// rejection is a record batch that failed to decode or validate.
type rejection struct {
	store   string
	payload []byte
	err     error
}

// Ingester applies agent messages. Create with New, start with Run, feed with Handle.
type Ingester struct {
	st       Store
	pub      Publisher
	log      *slog.Logger
	queues   []chan Message
	commits  chan *pending // shard workers → committer, in each shard's order
	budget   *semaphore.Weighted
	maxHeld  int64
	m        *metrics
	onStat   func(protocol.Status)
	rec      *Recorder
	maxGroup int
}

type metrics struct {
	messages     *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	applied      prometheus.Counter
	duplicates   prometheus.Counter
	conflicts    prometheus.Counter
	resends      prometheus.Counter
	applySeconds prometheus.Histogram
	ackFailures  prometheus.Counter
}

// Options configure an Ingester.
type Options struct {
	Workers   int // shard workers decoding and merging (default 4)
	QueueSize int // messages per worker (default 256); Handle blocks when full (back-pressure)
	// MaxPendingBytes bounds the payload bytes of messages queued, being decoded or waiting for
	// their commit (default 64 MiB); Handle blocks (TryHandle drops) while it is used up.
	MaxPendingBytes int64
	// MaxGroupRecords bounds the records one group commit applies (default 16384).
	MaxGroupRecords int
	Logger          *slog.Logger // nil discards
	Registry        prometheus.Registerer
	// OnStatus, when set, is called with each agent status after it is stored (the inventory
	// push reacts to the agent's InventoryVersion). It runs on a worker and must not block.
	OnStatus func(protocol.Status)
	// Series, when set, is handed what is applied and every status, for the charts and the
	// per-store gauges (run it separately).
	Series *Recorder
}

// New returns an Ingester writing to st and acknowledging through pub.
func New(st Store, pub Publisher, o Options) *Ingester {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = 64 << 20
	}
	if o.MaxGroupRecords <= 0 {
		o.MaxGroupRecords = 16384
	}
	in := &Ingester{st: st, pub: pub, log: o.Logger.With("component", "ingest"), onStat: o.OnStatus, rec: o.Series,
		budget: semaphore.NewWeighted(o.MaxPendingBytes), maxHeld: o.MaxPendingBytes, maxGroup: o.MaxGroupRecords}
	// The committer gathers what waits here into one group commit (up to MaxGroupRecords): room
	// for every worker's full queue, so a group is not cut at a few batches while many stores
	// send small ones (fan-in). Memory stays bounded by MaxPendingBytes.
	in.commits = make(chan *pending, o.Workers*o.QueueSize)
	in.queues = make([]chan Message, o.Workers)
	for i := range in.queues {
		in.queues[i] = make(chan Message, o.QueueSize)
	}
	in.m = &metrics{
		messages:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lanebridge_hub_messages_total", Help: "MQTT messages received from agents, by topic kind."}, []string{"kind"}),
		rejected:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lanebridge_hub_rejected_messages_total", Help: "Messages rejected without applying anything, by reason."}, []string{"reason"}),
		applied:      prometheus.NewCounter(prometheus.CounterOpts{Name: "lanebridge_hub_records_applied_total", Help: "Records newly applied."}),
		duplicates:   prometheus.NewCounter(prometheus.CounterOpts{Name: "lanebridge_hub_records_duplicate_total", Help: "Records received again with the same hash (harmless resends)."}),
		conflicts:    prometheus.NewCounter(prometheus.CounterOpts{Name: "lanebridge_hub_records_conflict_total", Help: "Records received again with a different hash (exception raised)."}),
		resends:      prometheus.NewCounter(prometheus.CounterOpts{Name: "lanebridge_hub_resend_requests_total", Help: "Gaps seen: resend requests sent to agents."}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lanebridge_hub_apply_seconds", Help: "Time to apply one merged batch (with the batches group-committed beside it), commit included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		ackFailures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "lanebridge_hub_ack_publish_failures_total", Help: "Acks that could not be published (the agent resends)."}),
	}
	// Every reason and kind is exported from the start, at 0, so rates and alerts on them work
	// before the first rejection.
	for _, r := range []string{"topic", "queue_full", "status", "status_bounded", "unknown_store", "invalid", "decode", "version", "wrong_store"} {
		in.m.rejected.WithLabelValues(r)
	}
	for _, k := range []string{"records", "status"} {
		in.m.messages.WithLabelValues(k)
	}
	if o.Registry != nil {
		o.Registry.MustRegister(in.m.messages, in.m.rejected, in.m.applied, in.m.duplicates, in.m.conflicts, in.m.resends, in.m.applySeconds, in.m.ackFailures)
	}
	return in
}

// Handle queues a message for its store's worker; it does not decode it. It blocks while that
// worker's queue is full or the pending bytes are used up (back-pressure on the agent's
// connection) and returns false if ctx ends first (the message is dropped; the agent resends it).
func (in *Ingester) Handle(ctx context.Context, m Message) bool {
	store, _, err := protocol.ParseTopic(m.Topic)
	if err != nil {
		in.m.rejected.WithLabelValues("topic").Inc()
		in.log.Warn("message on unexpected topic rejected", "topic", m.Topic, "err", err)
		return true
	}
	m.held = min(int64(len(m.Payload)), in.maxHeld)
	if err := in.budget.Acquire(ctx, m.held); err != nil {
		return false
	}
	select {
	case in.queue(store) <- m:
		return true
	case <-ctx.Done():
		in.budget.Release(m.held)
		return false
	}
}

// TryHandle queues a message without blocking; a full queue (or pending budget) drops it
// (counted) and the agent resends after its ack timeout. For callers that must never block,
// such as paho's router.
func (in *Ingester) TryHandle(m Message) bool {
	store, _, err := protocol.ParseTopic(m.Topic)
	if err != nil {
		in.m.rejected.WithLabelValues("topic").Inc()
		return true
	}
	m.held = min(int64(len(m.Payload)), in.maxHeld)
	if !in.budget.TryAcquire(m.held) {
		in.m.rejected.WithLabelValues("queue_full").Inc()
		return false
	}
	select {
	case in.queue(store) <- m:
		return true
	default:
		in.budget.Release(m.held)
		in.m.rejected.WithLabelValues("queue_full").Inc()
		return false
	}
}

func (in *Ingester) queue(store string) chan Message {
	h := fnv.New32a()
	h.Write([]byte(store))
	return in.queues[int(h.Sum32()%uint32(len(in.queues)))]
}

// Run starts the workers and the committer and returns when ctx is done and they have stopped.
func (in *Ingester) Run(ctx context.Context) error {
	done := make(chan struct{}, len(in.queues)+1)
	for _, q := range in.queues {
		go func() {
			in.worker(ctx, q)
			done <- struct{}{}
		}()
	}
	go func() {
		in.committer(ctx)
		done <- struct{}{}
	}()
	for range len(in.queues) + 1 {
		<-done
	}
	return nil
}

// maxMerge bounds how many records one merged batch holds.
const maxMerge = 4096

// worker decodes the messages of its shard in arrival order, merges consecutive contiguous
// batches of one stream and hands the batches to the committer, in order.
func (in *Ingester) worker(ctx context.Context, q chan Message) {
	var held *pending // a decoded batch that could not be merged into the previous group
	next := func(m Message) *pending {
		p := in.decode(ctx, m)
		if p == nil {
			in.budget.Release(m.held) // handled (a status) or dropped
			return nil
		}
		p.held = m.held
		return p
	}
	for {
		var group *pending
		if held != nil {
			group, held = held, nil
		} else {
			select {
			case <-ctx.Done():
				return
			case m := <-q:
				if group = next(m); group == nil {
					continue
				}
			}
		}
		// Merge queued contiguous batches of the same stream.
	merge:
		for g := group.b; g != nil && len(g.Records) < maxMerge; {
			select {
			case m := <-q:
				p := next(m)
				if p == nil {
					continue
				}
				b := p.b
				last := g.Records[len(g.Records)-1].Seq
				if b != nil && !b.Replay && !g.Replay && b.Store == g.Store && b.Epoch == g.Epoch && b.Records[0].Seq <= last+1 && b.Records[len(b.Records)-1].Seq > last {
					for _, r := range b.Records {
						if r.Seq > last {
							g.Records = append(g.Records, r)
						}
					}
					group.held += p.held
					continue
				}
				held = p
				break merge
			default:
				break merge
			}
		}
		select {
		case in.commits <- group:
		case <-ctx.Done():
			return
		}
	}
}

// committer applies the batches the workers hand it: whatever is waiting (up to
// MaxGroupRecords records) in one transaction, then each batch's ack, in order.
func (in *Ingester) committer(ctx context.Context) {
	var gs []*pending
	for {
		gs = gs[:0]
		select {
		case <-ctx.Done():
			return
		case p := <-in.commits:
			gs = append(gs, p)
		}
		n := gs[0].records()
	more:
		for n < in.maxGroup {
			select {
			case p := <-in.commits:
				gs = append(gs, p)
				n += p.records()
			default:
				break more
			}
		}
		in.commit(ctx, gs)
	}
}

// commit applies gs in order: runs of normal batches as one group, replay batches alone.
func (in *Ingester) commit(ctx context.Context, gs []*pending) {
	var run []*pending
	flush := func() {
		if len(run) > 0 {
			in.applyGroup(ctx, run)
			run = run[:0]
		}
	}
	for _, p := range gs {
		if p.rej != nil {
			flush()
			in.reject(ctx, p.rej.store, p.rej.payload, p.rej.err)
			in.budget.Release(p.held)
			continue
		}
		if p.b.Replay {
			flush()
			in.replay(ctx, p.b)
			in.budget.Release(p.held)
			continue
		}
		run = append(run, p)
	}
	flush()
}

// applyGroup applies normal batches in one transaction when the store can (one alone as
// ApplyBatch), then finishes each one in order: acks only after the commit returned.
func (in *Ingester) applyGroup(ctx context.Context, run []*pending) {
	start := time.Now()
	outs := make([]store.BatchOutcome, len(run))
	if gs, ok := in.st.(GroupStore); ok && len(run) > 1 {
		bs := make([]store.BatchApply, len(run))
		for i, p := range run {
			bs[i] = store.BatchApply{Store: p.b.Store, Epoch: p.b.Epoch, Records: p.b.Records}
		}
		outs = gs.ApplyBatches(ctx, bs)
	} else {
		for i, p := range run {
			outs[i].Result, outs[i].Err = in.st.ApplyBatch(ctx, p.b.Store, p.b.Epoch, p.b.Records)
		}
	}
	took := time.Since(start)
	for i, p := range run {
		in.finish(ctx, p.b, outs[i].Result, outs[i].Err, took)
		in.budget.Release(p.held)
	}
}

func (p *pending) records() int {
	if p.b == nil {
		return 1
	}
	return len(p.b.Records)
}

// decode handles status messages itself and returns decoded or rejected record batches.
func (in *Ingester) decode(ctx context.Context, m Message) *pending {
	store, suffix, err := protocol.ParseTopic(m.Topic)
	if err != nil {
		in.m.rejected.WithLabelValues("topic").Inc()
		return nil
	}
	switch suffix {
	case protocol.SuffixRecords:
		in.m.messages.WithLabelValues("records").Inc()
		b, err := protocol.DecodeBatch(store, m.Payload)
		if err != nil {
			return &pending{rej: &rejection{store: store, payload: m.Payload, err: err}}
		}
		return &pending{b: b}
	case protocol.SuffixStatus:
		in.m.messages.WithLabelValues("status").Inc()
		if len(m.Payload) == 0 {
			return nil // a cleared retained message
		}
		st, err := protocol.DecodeStatus(store, m.Payload)
		if err != nil {
			in.m.rejected.WithLabelValues("status").Inc()
			in.log.Warn("status rejected", "store", store, "err", protocol.Excerpt(err.Error()))
			return nil
		}
		if st.Bound() {
			in.m.rejected.WithLabelValues("status_bounded").Inc()
			in.log.Warn("status cut to the hub's limits", "store", store, "bytes", len(m.Payload),
				"max_list", protocol.MaxStatusList, "max_text", protocol.MaxText)
		}
		in.status(ctx, st)
		return nil
	default:
		in.m.rejected.WithLabelValues("topic").Inc()
		return nil
	}
}

var digits = regexp.MustCompile(`[0-9]+`)

// ReasonRejectedBatch is the exception raised for a record batch the hub cannot apply.
const ReasonRejectedBatch = "rejected_batch"

// reject handles a record batch that failed to decode or validate. Unless the agent may be
// right (a newer protocol version: the hub is upgraded and the agent's resends then apply),
// the refusal is permanent: once the exception naming store, epoch, seqs and reason is stored,
// the agent is told with Ack.Rejected and stops sending those records, which it keeps. A
// payload without a readable epoch and seqs gets the exception only (keyed on its hash).
func (in *Ingester) reject(ctx context.Context, store string, payload []byte, err error) {
	reason := "invalid"
	switch {
	case errors.Is(err, protocol.ErrDecode):
		reason = "decode"
	case errors.Is(err, protocol.ErrTooNew), errors.Is(err, protocol.ErrTooOld):
		reason = "version"
	case errors.Is(err, protocol.ErrWrongStore):
		reason = "wrong_store"
	}
	in.m.rejected.WithLabelValues(reason).Inc()
	msg := protocol.Excerpt(err.Error())
	var h struct {
		Epoch   string `json:"epoch"`
		Records []struct {
			Seq uint64 `json:"seq"`
		} `json:"records"`
	}
	_ = json.Unmarshal(payload, &h) // best effort: a broken payload leaves h empty
	permanent := !errors.Is(err, protocol.ErrTooNew) && h.Epoch != "" && len(h.Records) > 0
	from, to := uint64(0), uint64(0)
	if len(h.Records) > 0 {
		from, to = h.Records[0].Seq, h.Records[len(h.Records)-1].Seq
	}
	in.log.Warn("record batch rejected", "store", store, "reason", reason, "err", msg, "bytes", len(payload),
		"epoch", protocol.Excerpt(h.Epoch), "from", from, "to", to, "permanent", permanent)
	key, detail := fmt.Sprintf("%x", fnvSum(payload)), msg
	if permanent {
		key = h.Epoch + ":" + strconv.FormatUint(from, 10)
		detail = fmt.Sprintf("batch of epoch %s, seq %d..%d, rejected for good: %s\n"+
			"The agent keeps these records and stops sending this epoch from seq %d; correct the cause "+
			"(hub version, agent profile) and restart the agent to send them again.\nbatch: %s",
			h.Epoch, from, to, msg, from, protocol.Clip(string(payload), protocol.MaxText))
	}
	if !in.raise(ctx, store, ReasonRejectedBatch, key, detail, true) || !permanent {
		return // without a stored exception the agent must keep trying
	}
	ack, _ := json.Marshal(protocol.Ack{V: protocol.Version, Store: store, Epoch: h.Epoch,
		Rejected: &protocol.Rejection{From: from, To: to, Reason: protocol.Clip(msg, 512)}})
	if err := in.pub.Publish(protocol.AcksTopic(store), ack); err != nil {
		in.m.ackFailures.Inc()
	}
}

func fnvSum(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// finish reports the outcome of applying normal batch b (durable when err is nil) and publishes
// its ack.
func (in *Ingester) finish(ctx context.Context, b *protocol.Batch, res store.ApplyResult, err error, took time.Duration) {
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			in.m.rejected.WithLabelValues("unknown_store").Inc()
			in.log.Warn("batch from unknown store", "store", b.Store, "hint", "enroll it with lanebridge-hub stores add")
			return
		}
		if ctx.Err() == nil {
			in.log.Error("apply batch failed; agent resends", "store", b.Store, "epoch", b.Epoch, "first", b.Records[0].Seq, "err", err)
		}
		return // no ack: the agent's ack timeout resends
	}
	in.m.applySeconds.Observe(took.Seconds())
	in.m.applied.Add(float64(res.Applied))
	in.m.duplicates.Add(float64(res.Duplicates))
	in.m.conflicts.Add(float64(res.Conflicts))
	in.rec.applied(b.Store, b.Records, res.Applied, res.AppliedThrough)
	ack := protocol.Ack{V: protocol.Version, Store: b.Store, Epoch: b.Epoch, AppliedThrough: res.AppliedThrough}
	if res.ResendFrom > 0 {
		in.m.resends.Inc()
		ack.ResendFrom = res.ResendFrom
		ack.Reason = fmt.Sprintf("gap: batch starts at %d, applied through %d", b.Records[0].Seq, res.AppliedThrough)
		in.log.Info("gap in stream; resend requested", "store", b.Store, "epoch", b.Epoch, "resend_from", res.ResendFrom)
	}
	if res.Conflicts > 0 {
		in.log.Error("records conflict with stored ones; exceptions raised", "store", b.Store, "epoch", b.Epoch, "conflicts", res.Conflicts)
	}
	payload, _ := json.Marshal(ack)
	if err := in.pub.Publish(protocol.AcksTopic(b.Store), payload); err != nil {
		in.m.ackFailures.Inc()
		in.log.Warn("publish ack failed; agent resends", "store", b.Store, "err", err)
	}
}

// replay stores records an agent sent again on a replay command: missing ones at or below
// the stream's progress are restored, the rest are compared by hash. The ack repeats the
// stream's progress (a replay never moves it).
func (in *Ingester) replay(ctx context.Context, b *protocol.Batch) {
	res, err := in.st.ApplyReplay(ctx, b.Store, b.Epoch, b.Records)
	if err != nil {
		if ctx.Err() == nil {
			in.log.Error("apply replay batch failed", "store", b.Store, "epoch", b.Epoch, "command", b.CommandID, "err", err)
		}
		return
	}
	in.m.applied.Add(float64(res.Restored))
	in.m.duplicates.Add(float64(res.Duplicates))
	in.m.conflicts.Add(float64(res.Conflicts))
	in.log.Info("replay batch applied", "store", b.Store, "epoch", b.Epoch, "command", b.CommandID,
		"restored", res.Restored, "duplicates", res.Duplicates, "conflicts", res.Conflicts, "ahead", res.Ahead)
	if res.AppliedThrough == 0 {
		return
	}
	payload, _ := json.Marshal(protocol.Ack{V: protocol.Version, Store: b.Store, Epoch: b.Epoch, AppliedThrough: res.AppliedThrough})
	if err := in.pub.Publish(protocol.AcksTopic(b.Store), payload); err != nil {
		in.m.ackFailures.Inc()
	}
}

func (in *Ingester) status(ctx context.Context, st *protocol.Status) {
	if err := in.st.PutStatus(ctx, *st, clock.Now().UTC()); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			in.log.Warn("store status failed", "store", st.Store, "err", err)
		}
		return
	}
	in.rec.status(*st)
	if in.onStat != nil {
		in.onStat(*st)
	}
	for _, r := range st.CommandResults {
		changed, err := in.st.PutCommandResult(ctx, st.Store, r)
		if err != nil {
			in.log.Warn("store command result failed", "store", st.Store, "command", r.ID, "err", err)
		} else if changed {
			in.log.Info("command result", "store", st.Store, "command", r.ID, "ok", r.OK, "found", r.Found, "detail", r.Detail)
		}
	}
	var quarThrough uint64
	quarOK := true
	for _, q := range st.Quarantine {
		// One exception per capture; a resent report counts into it and does not open it again.
		detail := fmt.Sprintf("terminal %s at %s: %s", q.Terminal, q.At.Format(time.RFC3339), q.Reason)
		if q.Excerpt != "" {
			detail += "\nraw (card data masked): " + q.Excerpt
		}
		if !in.raise(ctx, st.Store, store.ReasonQuarantine, st.Epoch+":"+q.ID, detail, false) {
			quarOK = false
		}
		if quarOK && q.Seq > quarThrough {
			quarThrough = q.Seq
		}
	}
	if quarThrough > 0 && st.Epoch != "" {
		// Tell the agent these are durably raised, so it sends the next page.
		payload, _ := json.Marshal(protocol.Ack{V: protocol.Version, Store: st.Store, Epoch: st.Epoch, QuarantineThrough: quarThrough})
		if err := in.pub.Publish(protocol.AcksTopic(st.Store), payload); err != nil {
			in.m.ackFailures.Inc()
		}
	}
	for _, a := range st.Alarms {
		// Alarms carry changing figures ("spool at 83% of max_size"): key on their shape so a
		// recurring alarm stays one exception, counted with each status that reports it; a
		// recurring one opens again if it was resolved while the agent still reports it.
		in.raise(ctx, st.Store, store.ReasonSpoolAlarm, st.Epoch+":"+digits.ReplaceAllString(a, "#"), a, true)
	}
}

// raise records an exception (coalesced on store, reason and key; with recurs opened again
// when raised after being resolved) and reports whether it is stored.
func (in *Ingester) raise(ctx context.Context, st, reason, key, detail string, recurs bool) bool {
	if _, err := in.st.RaiseException(ctx, store.Exception{Store: st, Reason: reason, Key: key, Detail: detail, Recurs: recurs}); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			in.log.Warn("raise exception failed", "store", st, "reason", reason, "err", err)
		}
		return false
	}
	return true
}
