// Package replay executes the hub's commands from lanebridge/v1/{store}/down/commands. The one
// command so far, replay, sends again from the spool the records the hub lacks: by terminal,
// business date and numeric receipt range, or by epoch and seq range.
//
// # Basics
//
// The uplink hands decoded commands to [Executor.Commands] without blocking; [Executor.Run]
// executes them one at a time: it selects the retained records, publishes them in ascending seq
// order as protocol.Batch messages with Replay and CommandID set (BatchSize records each), and
// records a protocol.CommandResult that the status heartbeat carries ([Executor.Results],
// newest last). OnResult lets the agent publish its status at once.
//
// # Guarantees and caveats
//
//   - Idempotent by command ID: a command whose ID already succeeded is not executed again, its
//     result is reported again. A failed command (publish failed) is not remembered as done,
//     so the hub may send it again. To replay the same range again, the hub sends a new ID.
//   - Results are kept in a small JSON file (temp, fsync, rename) so that they and the done IDs
//     survive a restart; the last Keep are reported.
//   - Only acknowledged records (seq <= LastAck) are replayed: they are at or below the hub's
//     progress, as protocol.Batch.Replay requires. Matching records not yet acknowledged are
//     named in Detail; they reach the hub in the normal flow.
//   - Found counts records replayed. OK with Found 0 means the agent does not have them (never
//     captured, purged after retention, or of another epoch).
//   - The broker's PUBACK of a replay batch is not the hub's acknowledgement; nothing here
//     waits for the hub. The result may reach the hub before the replayed records do.
//   - A receipt-range replay reads every retained record (about 35 days by default), chunked so
//     that capture is not held up.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

// Spool is the part of the spool a replay reads. Safe for concurrent use.
type Spool interface {
	Epoch() string
	LastAck() uint64
	ScanReceipts(rr spool.ReceiptRange, max int) ([]spool.RawRecord, bool, error)
	ReadRange(from, to uint64, max int) ([]spool.RawRecord, bool, error)
}

// Publisher publishes a batch payload on the store's records topic (QoS 1) and waits, bounded
// by ctx, for the broker to take it. Safe for concurrent use.
type Publisher interface {
	PublishRecords(ctx context.Context, payload []byte) error
}

// Options configure an Executor.
type Options struct {
	Store string
	// BatchSize is the number of records per replay batch (default 256).
	BatchSize int
	// MaxRecords bounds one command (default 50000); a larger match is cut and says so.
	MaxRecords int
	// ResultsFile keeps results and done IDs across restarts ("" keeps them in memory).
	ResultsFile string
	// Keep is the number of results Results reports (default 20).
	Keep int
	// Remember is the number of results (and so done IDs) kept (default 256).
	Remember int
	// Queue is the capacity of the command channel (default 64).
	Queue int
	// OnResult is called from Run after each command. It must not block.
	OnResult func()
	Logger   *slog.Logger
	Now      func() time.Time
}

// Executor executes commands. Results is safe for concurrent use.
type Executor struct {
	sp   Spool
	pub  Publisher
	opts Options
	log  *slog.Logger
	in   chan *protocol.Command

	mu      sync.Mutex
	results []protocol.CommandResult // oldest first, at most Remember
}

// New builds an executor and loads earlier results from ResultsFile.
func New(sp Spool, pub Publisher, opts Options) (*Executor, error) {
	if err := protocol.ValidateStoreID(opts.Store); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = 50000
	}
	if opts.Keep <= 0 {
		opts.Keep = 20
	}
	if opts.Remember < opts.Keep {
		opts.Remember = max(256, opts.Keep)
	}
	if opts.Queue <= 0 {
		opts.Queue = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Executor{sp: sp, pub: pub, opts: opts, log: opts.Logger.With("component", "replay"), in: make(chan *protocol.Command, opts.Queue)}
	if opts.ResultsFile != "" {
		b, err := os.ReadFile(opts.ResultsFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("replay: read %s: %w", opts.ResultsFile, err)
		default:
			var f resultsFile
			if err := json.Unmarshal(b, &f); err != nil {
				// Results are a report, not data: start afresh rather than refuse to run.
				e.log.Warn("command results file unreadable; starting without it", "path", opts.ResultsFile, "err", err)
			} else {
				e.results = f.Results
			}
		}
	}
	return e, nil
}

type resultsFile struct {
	Results []protocol.CommandResult `json:"results"`
}

// Commands is where the uplink hands decoded commands; it must send without blocking and may
// drop a command when the queue is full (the hub, seeing no result, sends it again).
func (e *Executor) Commands() chan<- *protocol.Command { return e.in }

// Results returns the last Keep results, oldest first.
func (e *Executor) Results() []protocol.CommandResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.results[max(0, len(e.results)-e.opts.Keep):])
}

// Run executes queued commands until ctx is done; it returns nil.
func (e *Executor) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-e.in:
			e.Execute(ctx, c)
			if e.opts.OnResult != nil {
				e.opts.OnResult()
			}
		}
	}
}

// done returns the earlier successful result of id.
func (e *Executor) done(id string) (protocol.CommandResult, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.results {
		if r.ID == id && r.OK {
			return r, true
		}
	}
	return protocol.CommandResult{}, false
}

// Execute runs one command and records its result; a command whose ID already succeeded is
// not run again.
func (e *Executor) Execute(ctx context.Context, c *protocol.Command) protocol.CommandResult {
	if r, ok := e.done(c.ID); ok {
		e.log.Info("command already done; reporting its result again", "id", c.ID)
		return r
	}
	r := e.execute(ctx, c)
	r.ID, r.At = c.ID, e.opts.Now().UTC()
	if r.OK {
		e.log.Info("command done", "id", c.ID, "type", c.Type, "found", r.Found, "detail", r.Detail)
	} else {
		e.log.Warn("command failed", "id", c.ID, "type", c.Type, "detail", r.Detail)
	}
	e.record(r)
	return r
}

func (e *Executor) record(r protocol.CommandResult) {
	e.mu.Lock()
	e.results = slices.DeleteFunc(e.results, func(o protocol.CommandResult) bool { return o.ID == r.ID })
	e.results = append(e.results, r)
	if n := len(e.results) - e.opts.Remember; n > 0 {
		e.results = slices.Delete(e.results, 0, n)
	}
	snap := slices.Clone(e.results)
	e.mu.Unlock()
	if e.opts.ResultsFile != "" {
		if err := writeFileAtomic(e.opts.ResultsFile, resultsFile{Results: snap}); err != nil {
			e.log.Error("command results not saved; a restart may run a command again (harmless)", "err", err)
		}
	}
}

func (e *Executor) execute(ctx context.Context, c *protocol.Command) protocol.CommandResult {
	if c.Type != protocol.CommandReplay {
		return protocol.CommandResult{Detail: fmt.Sprintf("unknown command type %q", c.Type)}
	}
	var (
		raws      []spool.RawRecord
		truncated bool
		err       error
		what      string
	)
	switch {
	case c.Terminal != "":
		from, to := c.FromReceipt, c.ToReceipt
		if to == 0 {
			to = from
		}
		if from < 0 || to < from {
			return protocol.CommandResult{Detail: fmt.Sprintf("receipt range %d-%d is empty or negative", from, to)}
		}
		what = fmt.Sprintf("terminal %s, business date %s, receipts %d-%d", c.Terminal, orAny(c.BusinessDate), from, to)
		raws, truncated, err = e.sp.ScanReceipts(spool.ReceiptRange{Terminal: c.Terminal, BusinessDate: c.BusinessDate, From: from, To: to}, e.opts.MaxRecords)
	default:
		from, to := max(c.FromSeq, 1), c.ToSeq
		if to == 0 {
			to = from
		}
		if to < from {
			return protocol.CommandResult{Detail: fmt.Sprintf("seq range %d-%d is empty", from, to)}
		}
		what = fmt.Sprintf("epoch %s, seqs %d-%d", c.Epoch, from, to)
		if c.Epoch != e.sp.Epoch() {
			return protocol.CommandResult{OK: true, Detail: fmt.Sprintf("%s: not this spool's epoch (%s); those records are not here", what, e.sp.Epoch())}
		}
		raws, truncated, err = e.sp.ReadRange(from, to, e.opts.MaxRecords)
	}
	if err != nil {
		return protocol.CommandResult{Detail: fmt.Sprintf("%s: read spool: %v", what, err)}
	}
	// Only what the hub acknowledged is at or below its progress; the rest is still on its way.
	lastAck := e.sp.LastAck()
	var pending []uint64
	send := raws[:0:0]
	for _, r := range raws {
		if r.Seq <= lastAck {
			send = append(send, r)
		} else {
			pending = append(pending, r.Seq)
		}
	}
	seqs := make([]uint64, len(send))
	for i, r := range send {
		seqs[i] = r.Seq
	}
	for i := 0; i < len(send); i += e.opts.BatchSize {
		chunk := send[i:min(i+e.opts.BatchSize, len(send))]
		payload := protocol.AppendBatch(nil, protocol.BatchHeader{Store: e.opts.Store, Epoch: e.sp.Epoch(), Replay: true, CommandID: c.ID}, spool.JSONs(chunk))
		if err := e.pub.PublishRecords(ctx, payload); err != nil {
			return protocol.CommandResult{Found: i, Seqs: seqs[:i], Detail: fmt.Sprintf("%s: publish failed after %d of %d records: %v; send the command again", what, i, len(send), err)}
		}
	}
	detail := fmt.Sprintf("%s: %d record(s) replayed", what, len(send))
	if len(send) == 0 {
		detail = fmt.Sprintf("%s: no retained acknowledged record matches", what)
	}
	if len(pending) > 0 {
		detail += fmt.Sprintf("; %d matching record(s) not yet acknowledged (seq %d-%d) follow in the normal flow", len(pending), pending[0], pending[len(pending)-1])
	}
	if truncated {
		detail += fmt.Sprintf("; cut at %d records, send a narrower range for the rest", e.opts.MaxRecords)
	}
	return protocol.CommandResult{OK: true, Found: len(send), Seqs: seqs, Detail: detail}
}

func orAny(s string) string {
	if s == "" {
		return "any"
	}
	return s
}

func writeFileAtomic(path string, v any) (err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
