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

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
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

// Tail follows a growing file like `tail -F`: it survives rotation (rename and re-create, also
// while the agent was stopped: the old file is found by its inode and finished first) and
// truncation (copytruncate), and commits the offset of the last complete line it consumed in the
// same transaction as the records those lines produced.
type Tail struct {
	ID       string // source id (the terminal id) — the offset key in the spool
	Terminal string
	Path     string
	Parse    LineParser
	Mask     func([]byte) []byte // masks card data in quarantined lines (default MaskLine)
	Spool    Committer
	Log      *slog.Logger
	Poll     time.Duration // default 200ms
	MaxBatch int           // lines per commit (default 2000)

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
func (t *Tail) Run(ctx context.Context) error {
	if t.Poll <= 0 {
		t.Poll = 200 * time.Millisecond
	}
	if t.MaxBatch <= 0 {
		t.MaxBatch = 2000
	}
	if t.Log == nil {
		t.Log = slog.Default()
	}
	log := t.Log.With("terminal", t.Terminal, "source", "file://"+t.Path)

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
				log.Warn("file is shorter than the committed offset: truncated, reading from the start", "offset", start, "size", st.Size())
				start = 0
			} else if !fingerprintOK(nf, pos) {
				log.Warn("file content before the committed offset changed: truncated and rewritten, reading from the start", "offset", start)
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
				log.Warn("rotated file not found; starting the new file from the beginning", "inode", pos.Ino)
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
			log.Warn("read failed; reopening", "err", err)
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
			log.Info("file rotated; following the new one")
			f.Close()
			f, pos = nil, tailOffset{} // new file from offset 0
			timer.Reset(0)
			continue
		case serr == nil:
			if st, err := f.Stat(); err == nil && (st.Size() < cur.Off+int64(len(pending)) || !fingerprintOK(f, cur)) {
				log.Warn("file truncated; reading from the start")
				if _, err := f.Seek(0, io.SeekStart); err == nil {
					cur.Off, cur.Tail, pending = 0, "", pending[:0]
				}
			}
		}
		timer.Reset(t.Poll)
	}
}

// consume parses complete lines in *pending (all of it when final) and commits the records and
// the offset just past the last consumed line in one spool transaction.
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
		var (
			recs  []protocol.Record
			quar  []protocol.Quarantined
			used  int
			lines int
		)
		for used < end && lines < t.MaxBatch {
			i := bytes.IndexByte(data[used:end], '\n')
			var line []byte
			if i < 0 {
				line, used = data[used:end], end
			} else {
				line, used = data[used:used+i], used+i+1
			}
			lines++
			line = bytes.TrimRight(line, "\r")
			rec, ok, err := t.Parse(line)
			if err != nil {
				// The raw text is kept for review with card data masked before it is written.
				mask := t.Mask
				if mask == nil {
					mask = MaskLine
				}
				quar = append(quar, protocol.Quarantined{Terminal: t.Terminal, At: time.Now().UTC(), Reason: err.Error(), Excerpt: excerpt(mask(line))})
				continue
			}
			if !ok {
				continue
			}
			if rec.Terminal == "" {
				rec.Terminal = t.Terminal
			}
			rec.Source = &protocol.Source{Terminal: t.Terminal, Profile: "canonical-jsonl", Raw: fmt.Sprintf("file:%s@%d", filepath.Base(cur.Path), cur.Off)}
			recs = append(recs, rec)
		}
		next := *cur
		next.Off += int64(used)
		next.Tail = fingerprint(f, next.Off)
		off, _ := json.Marshal(next)
		if _, err := t.Spool.Commit(ctx, spool.Capture{Source: t.ID, Records: recs, Offset: off, Quarantine: quar}); err != nil {
			return fmt.Errorf("commit capture of %s: %w", t.ID, err)
		}
		*cur = next
		*pending = append(data[:0], data[used:]...)
		if len(recs) > 0 {
			t.records.Add(uint64(len(recs)))
			t.lastCapture.Store(time.Now().UnixNano())
		}
		if len(quar) > 0 {
			t.quarantined.Add(uint64(len(quar)))
			log.Warn("input quarantined", "lines", len(quar), "first_reason", quar[0].Reason)
		}
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
