package capture

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
)

// tailOffset is the committed read position of a followed file.
type tailOffset struct {
	Path string `json:"path"`
	Dev  uint64 `json:"dev"`
	Ino  uint64 `json:"ino"`
	Off  int64  `json:"off"`
	// Tail is a SHA-256 (hex) of the up to 4 KiB before Off: if the file no longer holds those
	// bytes there, it was truncated and rewritten in place (copy-truncate) and is read again
	// from the start.
	Tail string `json:"tail,omitempty"`
}

const fingerprintLen = 4096

func fingerprint(f *os.File, off int64) string {
	n := min(off, fingerprintLen)
	if n == 0 {
		return ""
	}
	buf := make([]byte, n)
	if got, _ := f.ReadAt(buf, off-n); int64(got) != n {
		return "short"
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// fingerprintOK reports whether f still holds the bytes recorded before o.Off.
func fingerprintOK(f *os.File, o tailOffset) bool {
	return o.Tail == "" || o.Off == 0 || fingerprint(f, o.Off) == o.Tail
}

// Tail follows a growing file of canonical JSON lines like `tail -F`: it survives rotation
// (rename and re-create, also while the agent was stopped: the old file is found by its inode and
// finished first) and truncation (copytruncate), and commits the offset of the last complete line
// it consumed in the same transaction as the records those lines produced.
//
// Lines are parsed, card data masked first, by Profile's parser (format canonical-jsonl), as in
// a dir:// source; nothing of a line reaches the spool, the quarantine or the log unmasked.
type Tail struct {
	ID       string // source id (the terminal id) — the offset key in the spool
	Terminal string
	Path     string
	Profile  *profile.Profile // format canonical-jsonl
	Spool    Committer
	Log      *slog.Logger   // required
	Masked   *atomic.Uint64 // optional: counts PANs masked and lines removed
	Poll     time.Duration  // default 200ms
	MaxBatch int            // lines per parsed batch (default 2000)
	// MaxGroup is how many records the committer groups into one spool commit (one fsync)
	// from the parsed batches waiting for it (default 8192).
	MaxGroup int

	parser      profile.Parser
	commits     chan tailBatch // parsed batches, in file order, to the committer
	failed      chan struct{}  // closed when the committer stopped on an error (commitErr)
	commitErr   error
	records     atomic.Uint64
	quarantined atomic.Uint64
	lastCapture atomic.Int64
}

// Stats returns counters.
func (t *Tail) Stats() Stats {
	var lc time.Time
	if n := t.lastCapture.Load(); n != 0 {
		lc = time.Unix(0, n)
	}
	return Stats{Records: t.records.Load(), Quarantined: t.quarantined.Load(), LastCapture: lc}
}

// Run follows the file until ctx is done.
func (t *Tail) Run(ctx context.Context) (err error) {
	if t.Poll <= 0 {
		t.Poll = 200 * time.Millisecond
	}
	if t.MaxBatch <= 0 {
		t.MaxBatch = 2000
	}
	if t.Log == nil {
		return errNoLogger
	}
	if t.Profile == nil || t.Profile.Format() != "canonical-jsonl" {
		return fmt.Errorf("capture: file %s needs a canonical-jsonl profile", t.Path)
	}
	if t.MaxGroup <= 0 {
		t.MaxGroup = 8192
	}
	t.parser = t.Profile.NewParser(t.Terminal)
	log := t.Log.With("terminal", t.Terminal, "source", "file://"+t.Path)

	// Parsing (this goroutine) and committing (the committer) overlap: while one group of
	// lines waits for its fsync, the next is parsed. The committer commits the batches in
	// order, each group with the offset just past its last line in the same transaction, so
	// the committed offset never passes a record that is not fsynced. On a stop, what was
	// parsed is committed before Run returns.
	t.commits, t.failed = make(chan tailBatch, 4), make(chan struct{})
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		t.committer(context.WithoutCancel(ctx), log)
	}()
	defer func() {
		close(t.commits)
		<-committed
		if err == nil {
			err = t.commitErr // a commit of what was parsed before the stop failed
		}
	}()

	var pos tailOffset
	if b, err := t.Spool.Offset(t.ID); err != nil {
		return fmt.Errorf("read offset of %s: %w", t.ID, err)
	} else if len(b) > 0 {
		if err := json.Unmarshal(b, &pos); err != nil {
			return fmt.Errorf("decode offset of %s: %w", t.ID, err)
		}
	}

	var (
		f       *os.File
		cur     tailOffset
		pending []byte // bytes after the last complete line
		waiting bool
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	open := func() error {
		nf, id, err := openIdent(t.Path)
		if err != nil {
			return err
		}
		start := int64(0)
		same := pos.Ino == id.Ino && pos.Dev == id.Dev
		if pos.Path != "" && same {
			start = pos.Off
			if st, err := nf.Stat(); err == nil && st.Size() < start {
				log.Warn("file shorter than offset; reading from start", "offset", start, "size", st.Size())
				start = 0
			} else if !fingerprintOK(nf, pos) {
				log.Warn("file rewritten; reading from start", "offset", start)
				start = 0
			}
		} else if pos.Path != "" {
			// The file was rotated while we were not looking: finish the old one first.
			if old := findByInode(filepath.Dir(t.Path), pos.Dev, pos.Ino); old != "" {
				of, oid, err := openIdent(old)
				if err == nil && oid.Ino == pos.Ino {
					nf.Close()
					log.Info("finishing rotated file", "old", old, "offset", pos.Off)
					f, cur = of, tailOffset{Path: old, Dev: oid.Dev, Ino: oid.Ino, Off: pos.Off, Tail: pos.Tail}
					_, err = f.Seek(pos.Off, io.SeekStart)
					return err
				}
			} else {
				log.Warn("rotated file not found; reading new file from start", "inode", pos.Ino)
			}
		}
		if _, err := nf.Seek(start, io.SeekStart); err != nil {
			nf.Close()
			return fmt.Errorf("seek %s: %w", t.Path, err)
		}
		f, cur = nf, tailOffset{Path: t.Path, Dev: id.Dev, Ino: id.Ino, Off: start}
		if start == pos.Off {
			cur.Tail = pos.Tail
		}
		pending = pending[:0]
		return nil
	}

	buf := make([]byte, 256<<10)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.failed:
			return t.commitErr
		case <-timer.C:
		}
		if f == nil {
			if err := open(); err != nil {
				if !waiting {
					log.Warn("waiting for file", "err", err)
					waiting = true
				}
				timer.Reset(t.Poll * 5)
				continue
			}
			waiting = false
		}
		n, err := f.Read(buf)
		if n > 0 {
			pending = append(pending, buf[:n]...)
			if err := t.consume(ctx, f, &cur, &pending, false, log); err != nil {
				return err
			}
			pos = cur
			timer.Reset(0)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			log.Warn("read failed; reopening", "err", err, "retry_in", t.Poll)
			f.Close()
			f = nil
			timer.Reset(t.Poll)
			continue
		}
		// At EOF: has the path been rotated or truncated?
		_, id, serr := statIdent(t.Path)
		switch {
		case serr == nil && (id.Ino != cur.Ino || id.Dev != cur.Dev):
			// Rotated: the old file is complete. A final line without terminator still counts.
			if err := t.consume(ctx, f, &cur, &pending, true, log); err != nil {
				return err
			}
			log.Info("file rotated", "offset", cur.Off)
			f.Close()
			f, pos = nil, tailOffset{} // new file from offset 0
			timer.Reset(0)
			continue
		case serr == nil:
			if st, err := f.Stat(); err == nil && (st.Size() < cur.Off+int64(len(pending)) || !fingerprintOK(f, cur)) {
				log.Warn("file truncated; reading from start", "offset", cur.Off)
				if _, err := f.Seek(0, io.SeekStart); err == nil {
					cur.Off, cur.Tail, pending = 0, "", pending[:0]
				}
			}
		}
		timer.Reset(t.Poll)
	}
}

// consume parses complete lines in *pending (all of it when final) and commits the records and
// the offset just past the last consumed line in one spool transaction, MaxBatch lines at most
// per transaction.
func (t *Tail) consume(ctx context.Context, f *os.File, cur *tailOffset, pending *[]byte, final bool, log *slog.Logger) error {
	for {
		data := *pending
		end := bytes.LastIndexByte(data, '\n') + 1
		if final {
			end = len(data)
		}
		if end == 0 {
			return nil
		}
		used := 0
		for lines := 0; used < end && lines < t.MaxBatch; lines++ {
			i := bytes.IndexByte(data[used:end], '\n')
			if i < 0 {
				used = end // the last line of a finished file, without terminator
				break
			}
			used += i + 1
		}
		masks := t.parser.Stats()
		res := t.parser.Feed(data[:used], time.Now())
		if used == len(data) && final {
			res = append(res, t.parser.Close()...)
		}
		if t.Masked != nil {
			after := t.parser.Stats()
			t.Masked.Add(uint64(after.PANsMasked + after.LinesDropped - masks.PANsMasked - masks.LinesDropped))
		}
		if used == len(data) && final {
			t.parser = t.Profile.NewParser(t.Terminal)
		}
		var c collected
		ref := fmt.Sprintf("file:%s@%d", filepath.Base(cur.Path), cur.Off)
		now := time.Now()
		for _, r := range res {
			c.add(r, t.Terminal, t.Profile.Name, ref, now)
		}
		next := *cur
		next.Off += int64(used)
		next.Tail = fingerprint(f, next.Off)
		off, _ := json.Marshal(next)
		select {
		case t.commits <- tailBatch{c: c, off: off}:
		case <-t.failed:
			return t.commitErr
		}
		*cur = next
		*pending = append(data[:0], data[used:]...)
	}
}

// tailBatch is what the lines of one parsed batch produced and the offset just past them.
type tailBatch struct {
	c   collected
	off []byte
}

// committer commits the parsed batches in order until t.commits is closed, grouping the
// batches waiting (up to MaxGroup records) into one spool commit with the last one's offset.
// On an error it records it, closes t.failed and drops what follows (not committed, so read
// again after a restart).
func (t *Tail) committer(ctx context.Context, log *slog.Logger) {
	for b := range t.commits {
		g := b
		for len(g.c.recs) < t.MaxGroup {
			nb, ok := t.tryNext()
			if !ok {
				break
			}
			g.c.recs, g.c.quar, g.off = append(g.c.recs, nb.c.recs...), append(g.c.quar, nb.c.quar...), nb.off
		}
		if _, err := t.Spool.Commit(ctx, spool.Capture{Source: t.ID, Records: g.c.recs, Offset: g.off, Quarantine: g.c.quar}); err != nil {
			t.commitErr = fmt.Errorf("commit capture of %s: %w", t.ID, err)
			close(t.failed)
			for range t.commits {
			}
			return
		}
		if len(g.c.recs) > 0 {
			t.records.Add(uint64(len(g.c.recs)))
			t.lastCapture.Store(time.Now().UnixNano())
		}
		t.quarantined.Add(uint64(len(g.c.quar)))
		g.c.logged(log)
	}
}

// tryNext returns the next parsed batch if one is waiting.
func (t *Tail) tryNext() (tailBatch, bool) {
	select {
	case b, ok := <-t.commits:
		return b, ok
	default:
		return tailBatch{}, false
	}
}

func excerpt(b []byte) string {
	const max = 512
	if len(b) > max {
		b = b[:max]
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

type ident struct{ Dev, Ino uint64 }

func openIdent(path string) (*os.File, ident, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ident{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, ident{}, err
	}
	return f, fileIdent(st), nil
}

func statIdent(path string) (fs.FileInfo, ident, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, ident{}, err
	}
	return st, fileIdent(st), nil
}

func findByInode(dir string, dev, ino uint64) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if id := fileIdent(info); id.Ino == ino && id.Dev == dev {
			return filepath.Join(dir, e.Name())
		}
	}
	return ""
}
