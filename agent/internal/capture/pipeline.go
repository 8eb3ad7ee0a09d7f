package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

// Input is masked bytes handed to a Pipeline by a byte-stream source.
type Input struct {
	Data []byte // masked; ownership passes to the pipeline
	File string // dir:// sources: the file the bytes came from
	End  int64  // dir:// sources: file offset just past Data
	EOF  bool   // dir:// sources: File is complete (Data may be empty)
}

// parseCursor is the parse position of a pipeline, committed in the spool (offset key
// "parse:<id>") in the same transaction as the records and quarantine it produced.
//
// Parsing is a deterministic function of the journal: entry i is fed to the parser with its own
// time, flushes that closed something are journaled as EntryFlush, and a quiet period is
// journaled as EntryClose (a fresh parser follows). From is the first entry after the last
// close, where a fresh parser can start; Results is how many results the entries from From on
// produced and committed; Next is the next entry to parse. After a crash, the entries from From
// are parsed again and their first Results results, already committed, are skipped.
//
// Journal is the id of the journal the entry ids refer to. A cursor of another journal (the
// journal was lost, or moved aside as corrupt, and a new one created) is reset to the start
// of the current one, committed, logged and alarmed, never applied to the new journal's ids.
type parseCursor struct {
	From    uint64 `json:"from"`
	Results int    `json:"results"`
	Next    uint64 `json:"next"`
	Journal string `json:"journal,omitempty"`
}

// Pipeline journals, parses and commits the input of one byte-stream source (serial,
// tcp-listen, dir) for one terminal. Sources call Submit; Run is the only goroutine that
// touches the journal, the parser and the spool for this source.
type Pipeline struct {
	ID       string // source id: journal bucket; the spool offset key is "parse:"+ID
	Terminal string
	Profile  *profile.Profile
	Journal  *Journal
	Spool    Committer
	Log      *slog.Logger // required
	// Quiet is how long without input before the parser is closed and a fresh one started
	// (default: the profile's framing timeout or idle flush, whichever is longer, plus 1s;
	// at least 5s). It bounds how much of the journal a restart parses again.
	Quiet time.Duration
	// Tick is the Flush interval (default 250ms).
	Tick time.Duration
	// OnEOF is called after the results of a file's EntryEOF are committed (dir:// sources).
	OnEOF func(file string)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Retention is how long raw journal entries that are already parsed are kept for reparse
	// (default 35 days, like the spool's acknowledged records); older ones are purged hourly.
	Retention time.Duration

	in      chan Input
	stopped chan struct{} // closed when Run returns

	records, quarantined, flagged atomic.Uint64
	lastCapture                   atomic.Int64
	ready                         chan struct{}
}

// NewPipeline returns a pipeline; fill in the exported fields before Run.
func NewPipeline() *Pipeline {
	return &Pipeline{in: make(chan Input, 1024), ready: make(chan struct{}), stopped: make(chan struct{})}
}

// ErrPipelineStopped is returned by Submit after Run has returned.
var ErrPipelineStopped = errors.New("capture pipeline stopped")

// errNoLogger is returned by a source's Run without a logger: every source logs to the logger its
// caller gives it (Build passes Env.Log).
var errNoLogger = errors.New("capture: source has no logger (set Log)")

// Submit hands masked input to the pipeline. It blocks when the pipeline is 1024 inputs behind
// and returns ctx's error if ctx ends first. The input is durable only once journaled. Input
// submitted before Run's context ends is journaled before Run returns.
func (p *Pipeline) Submit(ctx context.Context, in Input) error {
	select {
	case p.in <- in:
		return nil
	case <-p.stopped:
		return ErrPipelineStopped
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// RunWith runs the pipeline and read, a source's reader: read starts once recovery is done and
// must return when its context ends. The pipeline stops after read has returned, journaling
// what read submitted; if the pipeline fails, read's context is cancelled.
func (p *Pipeline) RunWith(ctx context.Context, read func(ctx context.Context)) error {
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	pctx, pcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer pcancel()
	perr := make(chan error, 1)
	go func() {
		err := p.Run(pctx)
		rcancel()
		perr <- err
	}()
	select {
	case <-p.ready:
		read(rctx)
	case <-rctx.Done():
	}
	pcancel()
	return <-perr
}

// Ready is closed once recovery is done and the pipeline takes input.
func (p *Pipeline) Ready() <-chan struct{} { return p.ready }

// Stats returns counters.
func (p *Pipeline) Stats() Stats {
	var lc time.Time
	if n := p.lastCapture.Load(); n != 0 {
		lc = time.Unix(0, n)
	}
	return Stats{Records: p.records.Load(), Quarantined: p.quarantined.Load(), LastCapture: lc}
}

// OffsetKey is the spool offset key of a pipeline's parse cursor.
func OffsetKey(id string) string { return "parse:" + id }

// pstate is the parsing state of a run.
type pstate struct {
	parser   profile.Parser
	cur      parseCursor
	produced int    // results produced since cur.From
	skip     int    // results from cur.From that were already committed
	first    uint64 // entry that started the transaction being closed (approximate, for Raw refs)
	fed      bool   // the parser has been fed since the last close
	lastIn   time.Time
	eofs     []string
}

// Run recovers from the committed cursor and then journals, parses and commits input until ctx
// ends. It returns nil on a normal stop and an error for a journal or spool failure (fatal).
func (p *Pipeline) Run(ctx context.Context) error {
	if p.Log == nil {
		return errNoLogger
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Tick <= 0 {
		p.Tick = 250 * time.Millisecond
	}
	if p.Quiet <= 0 {
		p.Quiet = max(time.Duration(p.Profile.Framing.Timeout), time.Duration(p.Profile.Decoding.IdleFlush)) + time.Second
		p.Quiet = max(p.Quiet, 5*time.Second)
	}
	if p.in == nil {
		panic("capture: Pipeline not made with NewPipeline")
	}
	defer close(p.stopped)
	log := p.Log.With("terminal", p.Terminal, "profile", p.Profile.Name)
	st := &pstate{parser: p.Profile.NewParser(p.Terminal)}
	if err := p.recover(ctx, st, log); err != nil {
		return err
	}
	close(p.ready)

	if p.Retention <= 0 {
		p.Retention = 35 * 24 * time.Hour
	}
	tick := time.NewTicker(p.Tick)
	defer tick.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	var batch []Input
	for {
		select {
		case <-ctx.Done():
			// Journal what the reader handed over before it stopped.
			for {
				select {
				case in := <-p.in:
					if err := p.ingest(ctx, st, []Input{in}, log); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		case in := <-p.in:
			batch = append(batch[:0], in)
		drain:
			for len(batch) < 256 {
				select {
				case in := <-p.in:
					batch = append(batch, in)
				default:
					break drain
				}
			}
			if err := p.ingest(ctx, st, batch, log); err != nil {
				return err
			}
			clear(batch)
		case <-tick.C:
			if err := p.tick(ctx, st, log); err != nil {
				return err
			}
		case <-purge.C:
			if n, err := p.Journal.Purge(p.ID, st.cur.From, p.Now().Add(-p.Retention)); err != nil {
				log.Warn("raw journal purge failed", "err", err)
			} else if n > 0 {
				log.Info("raw journal purged", "entries", n, "retention", p.Retention)
			}
		}
	}
}

// recover parses the journaled entries from the committed cursor on, skipping results that
// were already committed, and commits the rest.
func (p *Pipeline) recover(ctx context.Context, st *pstate, log *slog.Logger) error {
	b, err := p.Spool.Offset(OffsetKey(p.ID))
	if err != nil {
		return fmt.Errorf("read parse cursor of %s: %w", p.ID, err)
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &st.cur); err != nil {
			return fmt.Errorf("decode parse cursor of %s: %w", p.ID, err)
		}
	}
	reset := len(b) > 0 && !p.Journal.owns(st.cur)
	old := st.cur
	if reset {
		st.cur = parseCursor{}
	}
	if st.cur.From == 0 {
		st.cur.From, st.cur.Next = 1, 1
	}
	st.cur.Journal = p.Journal.ID()
	if reset {
		if err := p.resetCursor(ctx, st, old, log); err != nil {
			return err
		}
	}
	last, err := p.Journal.Last(p.ID)
	if err != nil {
		return fmt.Errorf("raw journal of %s: %w", p.ID, err)
	}
	if st.cur.Next > last+1 {
		return fmt.Errorf("terminal %s: %w: cursor at entry %d, journal ends at %d (journal.db restored from an older copy? move spool.db and journal.db aside together)", p.ID, ErrJournalBehind, st.cur.Next, last)
	}
	st.skip = st.cur.Results
	from := st.cur.From
	replayed := 0
	for {
		es, err := p.Journal.Read(p.ID, from, 512)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			break
		}
		if err := p.process(ctx, st, es, log); err != nil {
			return err
		}
		replayed += len(es)
		from = es[len(es)-1].ID + 1
	}
	if replayed > 0 {
		log.Info("raw journal replayed", "from_entry", st.cur.From, "entries", replayed, "skipped_results", st.skip)
	}
	if st.fed {
		st.lastIn = p.Now()
	}
	return nil
}

// resetCursor commits the cursor of a journal that replaced the one old pointed into: parsing
// starts at this journal's first entry, so nothing in it is skipped or parsed twice. What the
// old journal held from old.From on and had not committed is not captured: that is alarmed
// unless the old cursor had not parsed anything.
func (p *Pipeline) resetCursor(ctx context.Context, st *pstate, old parseCursor, log *slog.Logger) error {
	if err := p.commit(ctx, st, collected{}, st.cur.Next-1, log); err != nil {
		return fmt.Errorf("reset parse cursor of %s: %w", p.ID, err)
	}
	if old.Next <= 1 && old.Results == 0 {
		log.Info("parse cursor reset to the new raw journal", "old_journal", old.Journal, "journal", st.cur.Journal)
		return nil
	}
	log.Warn("parse cursor pointed into another raw journal; reset to the start of this one",
		"old_journal", old.Journal, "old_next", old.Next, "old_from", old.From, "journal", st.cur.Journal)
	oldID := old.Journal
	if oldID == "" {
		oldID = "written before journal ids"
	}
	p.Journal.alarm(fmt.Sprintf("terminal %s: the parse cursor pointed into another raw journal (%s, next entry %d) and was reset to the start of this one (%s); input of the old journal from entry %d on that was not captured yet is not captured (only the old file, if kept, holds it)",
		p.ID, oldID, old.Next, st.cur.Journal, old.From))
	return nil
}

// ingest journals a batch of inputs (one fsync) and parses it.
func (p *Pipeline) ingest(ctx context.Context, st *pstate, batch []Input, log *slog.Logger) error {
	now := p.Now()
	var es []Entry
	if st.fed && now.Sub(st.lastIn) >= p.Quiet {
		es = append(es, Entry{Kind: EntryClose, Time: now})
	}
	for _, in := range batch {
		if len(in.Data) > 0 {
			es = append(es, Entry{Kind: EntryData, Time: now, Data: in.Data, File: in.File, End: in.End})
		}
		if in.EOF {
			es = append(es, Entry{Kind: EntryEOF, Time: now, File: in.File, End: in.End})
		}
	}
	if len(es) == 0 {
		return nil
	}
	es, err := p.Journal.Append(p.ID, es)
	if err != nil {
		return err
	}
	st.lastIn = now
	return p.process(ctx, st, es, log)
}

// tick flushes the parser; if that closed anything, the flush is journaled first so a replay
// closes the same transactions. After a quiet period the parser is closed (journaled too).
func (p *Pipeline) tick(ctx context.Context, st *pstate, log *slog.Logger) error {
	if !st.fed {
		return nil
	}
	now := p.Now()
	kind := EntryFlush
	var res []profile.Result
	if now.Sub(st.lastIn) >= p.Quiet {
		kind = EntryClose
	} else if res = st.parser.Flush(now); len(res) == 0 {
		return nil
	}
	es, err := p.Journal.Append(p.ID, []Entry{{Kind: kind, Time: now}})
	if err != nil {
		return err
	}
	if kind == EntryClose {
		return p.process(ctx, st, es, log)
	}
	// The flush already ran on the live parser: account for its results as the entry's.
	return p.commit(ctx, st, p.collect(st, res, es[0].ID), es[0].ID, log)
}

// collected is what parser results turned into: records to capture and input to quarantine.
type collected struct {
	recs []protocol.Record
	quar []protocol.Quarantined
}

// add takes one parser result: a record, captured from terminal with profileName, or, when
// parsing failed or the record is invalid, a quarantine entry. ref says where the input is
// (Source.Raw and the quarantine reason); a record's flags are appended to its Source.Raw.
func (c *collected) add(r profile.Result, terminal, profileName, ref string, at time.Time) {
	if r.Err == nil && r.Record != nil {
		rec := *r.Record
		if rec.Terminal == "" {
			rec.Terminal = terminal
		}
		raw := ref
		if len(r.Flags) > 0 {
			raw += flagsMark + strings.Join(r.Flags, ",")
		}
		rec.Source = &protocol.Source{Terminal: terminal, Profile: profileName, Raw: raw}
		if err := rec.ValidateBusiness(); err != nil {
			// The hub would refuse it forever: quarantine it instead.
			r.Err = fmt.Errorf("parsed record is invalid: %w", err)
		} else {
			c.recs = append(c.recs, rec)
			return
		}
	}
	reason := "unparseable"
	if r.Err != nil {
		reason = r.Err.Error()
	}
	c.quar = append(c.quar, protocol.Quarantined{
		Terminal: terminal, At: at.UTC(),
		Reason:  fmt.Sprintf("%s [%s %s]", reason, profileName, ref),
		Excerpt: excerpt([]byte(r.Raw)),
	})
}

// flagsMark starts the invariant failures in a record's Source.Raw.
const flagsMark = " flags="

// logged logs what a commit captured with broken invariants and quarantined, and returns how
// many records were flagged.
func (c *collected) logged(log *slog.Logger) (flagged int) {
	for _, r := range c.recs {
		if strings.Contains(r.Source.Raw, flagsMark) {
			flagged++
			log.Warn("record flagged", "receipt", r.Receipt, "ref", r.Source.Raw)
		}
	}
	if len(c.quar) > 0 {
		log.Warn("input quarantined", "count", len(c.quar), "first_reason", c.quar[0].Reason)
	}
	return flagged
}

// process applies journal entries to the parser and commits what they closed, with the cursor,
// in one spool transaction.
func (p *Pipeline) process(ctx context.Context, st *pstate, es []Entry, log *slog.Logger) error {
	var c collected
	for _, e := range es {
		if !st.fed {
			st.first = e.ID
		}
		var res []profile.Result
		switch e.Kind {
		case EntryData:
			res = st.parser.Feed(e.Data, e.Time)
			st.fed = true
		case EntryFlush:
			res = st.parser.Flush(e.Time)
		case EntryClose, EntryEOF:
			res = st.parser.Close()
		default:
			return fmt.Errorf("raw journal %s entry %d: unknown kind %q", p.ID, e.ID, e.Kind)
		}
		got := p.collect(st, res, e.ID)
		c.recs, c.quar = append(c.recs, got.recs...), append(c.quar, got.quar...)
		if e.Kind == EntryClose || e.Kind == EntryEOF {
			st.parser = p.Profile.NewParser(p.Terminal)
			st.cur.From, st.produced, st.skip, st.fed = e.ID+1, 0, 0, false
			if e.Kind == EntryEOF {
				st.eofs = append(st.eofs, e.File)
			}
		}
	}
	return p.commit(ctx, st, c, es[len(es)-1].ID, log)
}

// collect turns parser results into records and quarantine, skipping those already committed.
func (p *Pipeline) collect(st *pstate, res []profile.Result, entry uint64) collected {
	var c collected
	for _, r := range res {
		st.produced++
		if st.produced <= st.skip {
			continue
		}
		c.add(r, p.Terminal, p.Profile.Name, fmt.Sprintf("journal:%s/%d-%d", p.ID, st.first, entry), p.Now())
	}
	return c
}

func (p *Pipeline) commit(ctx context.Context, st *pstate, c collected, last uint64, log *slog.Logger) error {
	st.cur.Results = st.produced
	st.cur.Next = last + 1
	off, _ := json.Marshal(st.cur)
	// The commit must happen even while stopping: the journal already holds the input.
	if _, err := p.Spool.Commit(context.WithoutCancel(ctx), spool.Capture{Source: OffsetKey(p.ID), Records: c.recs, Offset: off, Quarantine: c.quar}); err != nil {
		if errors.Is(err, spool.ErrInvalidCapture) {
			return fmt.Errorf("commit capture of %s (a record passed validation here but not in the spool): %w", p.ID, err)
		}
		return fmt.Errorf("commit capture of %s: %w", p.ID, err)
	}
	st.skip = 0
	if n := len(c.recs); n > 0 {
		p.records.Add(uint64(n))
		p.lastCapture.Store(time.Now().UnixNano())
	}
	p.quarantined.Add(uint64(len(c.quar)))
	p.flagged.Add(uint64(c.logged(log)))
	eofs := st.eofs
	st.eofs = nil
	for _, f := range eofs {
		if p.OnEOF != nil {
			p.OnEOF(f)
		}
	}
	return nil
}
