package capture

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
)

// Dir is a drop folder of exported files (CSV or JSON lines, by profile). Each file is read
// once, journaled (masked) with its name and offset, parsed with a fresh parser and, after the
// commit that covers its end, replaced by its masked text in Path/done/ (mode 0600; the
// original is removed once that is on disk) or, with Done "delete", removed.
//
// Crash safety: the journal keeps, per file, how far it was journaled; a restart resumes the
// file there (no byte is journaled twice), and the pipeline's cursor makes parsing resume
// without loss or repetition. A file whose end is committed but which was not moved yet is
// moved at start.
//
// Caveats: a file must be complete when it appears (write it elsewhere and rename it in);
// a file that is still growing is read as far as it goes and the rest is read as a new file
// only if the exporter writes it under a new name. Names are the identity: a new file with the
// name of one whose move to done/ failed is not read until that is resolved.
type Dir struct {
	Path     string
	Pattern  string // glob of file names to take (default "*")
	Masker   *pan.Masker
	Masked   *atomic.Uint64 // optional: counts masked or removed lines
	Pipeline *Pipeline
	Log      *slog.Logger  // required
	Poll     time.Duration // default 1s
	// Settle: a file is taken only once its size and mtime have not changed for this long
	// (default 2s).
	Settle time.Duration
	// Done is what becomes of a processed file: DoneMasked (default) or DoneDelete.
	Done string

	seen     map[string]seenFile
	mu       sync.Mutex
	inflight map[string]bool // submitted to the end, not yet moved to done/
}

// What a dir:// source does with a processed file (source URL query done=).
const (
	DoneMasked = "masked" // rewrite it masked into done/, mode 0600
	DoneDelete = "delete" // remove it
)

type seenFile struct {
	size  int64
	mtime time.Time
	since time.Time
}

// Stats returns the pipeline's counters.
func (d *Dir) Stats() Stats { return d.Pipeline.Stats() }

// Run watches the folder until ctx ends.
func (d *Dir) Run(ctx context.Context) error {
	if d.Log == nil {
		return errNoLogger
	}
	if d.Poll <= 0 {
		d.Poll = time.Second
	}
	if d.Settle < 0 {
		d.Settle = 0
	} else if d.Settle == 0 {
		d.Settle = 2 * time.Second
	}
	if d.Pattern == "" {
		d.Pattern = "*"
	}
	d.seen = map[string]seenFile{}
	log := d.Log.With("terminal", d.Pipeline.Terminal, "dir", d.Path)
	d.inflight = map[string]bool{}
	d.Pipeline.OnEOF = func(name string) { d.finish(name, log) }
	return d.Pipeline.RunWith(ctx, func(ctx context.Context) { d.watch(ctx, log) })
}

// finish replaces a committed file by its masked text in done/ (or removes it) and forgets its
// journal mark.
func (d *Dir) finish(name string, log *slog.Logger) {
	src := filepath.Join(d.Path, name)
	if d.Done != DoneDelete {
		if err := d.writeDone(src, name); err != nil {
			log.Error("write masked file to done folder failed; file stays unread", "file", name, "err", err)
			return
		}
	}
	if err := os.Remove(src); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Error("remove processed file failed; file stays unread", "file", name, "err", err)
		return
	}
	if err := d.Pipeline.Journal.forgetFile(d.Pipeline.ID, name); err != nil {
		log.Error("clear journal mark failed", "file", name, "err", err)
		return
	}
	d.mu.Lock()
	delete(d.inflight, name)
	d.mu.Unlock()
	log.Info("file processed", "file", name, "done", d.Done)
}

// writeDone writes src, masked as it was journaled (UTF-8), to done/name (mode 0600) through a
// temporary file that is synced and renamed into place. A src already gone (moved before a
// crash) is no error.
func (d *Dir) writeDone(src, name string) (err error) {
	in, err := openText(src, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer in.Close()
	doneDir := filepath.Join(d.Path, "done")
	if err := os.MkdirAll(doneDir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(doneDir, ".masking-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	lm := newLineMasker(d.Masker, nil, d.Pipeline.Profile)
	buf := make([]byte, 64<<10)
	for {
		text, _, rerr := in.read(buf)
		if _, err := tmp.Write(lm.Write(text)); err != nil {
			return err
		}
		if rerr == io.EOF {
			break
		} else if rerr != nil {
			return rerr
		}
	}
	if _, err := tmp.Write(lm.Flush()); err != nil {
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(doneDir, name))
}

func (d *Dir) watch(ctx context.Context, log *slog.Logger) {
	// Masked copies a crash left half written (finish writes them again).
	stale, _ := filepath.Glob(filepath.Join(d.Path, "done", ".masking-*"))
	for _, f := range stale {
		os.Remove(f)
	}
	// Files whose end was committed before a crash but not moved yet.
	marks, err := d.Pipeline.Journal.fileMarks(d.Pipeline.ID)
	if err != nil {
		log.Error("read journal marks failed", "err", err)
	}
	for name, m := range marks {
		if m.EOF != 0 {
			d.finish(name, log)
		}
	}
	for {
		d.scan(ctx, log)
		if !sleep(ctx, d.Poll) {
			return
		}
	}
}

func (d *Dir) scan(ctx context.Context, log *slog.Logger) {
	names, err := filepath.Glob(filepath.Join(d.Path, d.Pattern))
	if err != nil {
		log.Error("bad file pattern", "pattern", d.Pattern, "err", err)
		return
	}
	sort.Strings(names)
	now := time.Now()
	for _, full := range names {
		if ctx.Err() != nil {
			return
		}
		st, err := os.Stat(full)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		name := filepath.Base(full)
		d.mu.Lock()
		busy := d.inflight[name]
		d.mu.Unlock()
		if busy {
			continue
		}
		s, ok := d.seen[name]
		if !ok || s.size != st.Size() || !s.mtime.Equal(st.ModTime()) {
			d.seen[name] = seenFile{size: st.Size(), mtime: st.ModTime(), since: now}
			if d.Settle > 0 {
				continue
			}
		} else if now.Sub(s.since) < d.Settle {
			continue
		}
		m, err := d.Pipeline.Journal.fileMark(d.Pipeline.ID, name)
		if err != nil {
			log.Error("read journal mark failed", "file", name, "err", err)
			continue
		}
		if m.EOF != 0 {
			continue // journaled completely; moved once its commit is done
		}
		if err := d.read(ctx, full, name, m.Off, log); err != nil {
			log.Warn("read file failed; retrying", "file", name, "err", err, "retry_in", d.Poll)
			continue
		}
		delete(d.seen, name)
	}
}

// read journals name from off to its end, complete lines only, then marks its end. A UTF-16
// file is read as UTF-8 (see detectEncoding); offsets stay the file's.
func (d *Dir) read(ctx context.Context, full, name string, off int64, log *slog.Logger) error {
	f, err := openText(full, off)
	if err != nil {
		return err
	}
	defer f.Close()
	if off > 0 {
		log.Info("resuming file", "file", name, "offset", off)
	}
	if f.enc.utf16 && off == 0 {
		log.Info("reading UTF-16 file as UTF-8", "file", name, "big_endian", f.enc.be)
	}
	lm := newLineMasker(d.Masker, d.Masked, d.Pipeline.Profile)
	buf := make([]byte, 64<<10)
	pos := max(off, int64(f.enc.bom))
	for {
		text, n, rerr := f.read(buf)
		if n > 0 {
			pos += int64(n)
			if out := lm.Write(text); len(out) > 0 {
				// Everything up to pos minus what the masker holds back is journaled.
				end := pos - f.held(lm.buf)
				if err := d.Pipeline.Submit(ctx, Input{Data: out, File: name, End: end}); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	out := lm.Flush()
	d.mu.Lock()
	d.inflight[name] = true
	d.mu.Unlock()
	if err := d.Pipeline.Submit(ctx, Input{Data: out, File: name, End: pos, EOF: true}); err != nil {
		d.mu.Lock()
		delete(d.inflight, name)
		d.mu.Unlock()
		return err
	}
	return nil
}
