package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/boltfile"
	bolt "go.etcd.io/bbolt"
)

// Compaction. bbolt never gives pages back to the file system: Purge frees pages for reuse,
// and the file keeps its high-water length. Compact copies what the spool holds into a new
// file and puts it in place of the old one:
//
//  1. path+".compact" is written by a fresh bbolt handle (every transaction fsynced), each
//     record checked (checkRecord) as it is copied: a damaged record stops the compaction and
//     the old file stays, untouched;
//  2. the old handle is closed, path+".compact" is renamed over path (atomic), the directory
//     is fsynced, and path is opened again.
//
// A crash before the rename leaves the old file in place (Open deletes a stale .compact); a
// crash after it leaves the complete new file. It runs in the writer goroutine, so no commit
// or ack interleaves; readers wait only for the close-rename-open.

// Thresholds: compact when the pages free for reuse are more than compactFreeShare of the
// file's used size and at least compactMinFree bytes.
const (
	compactFreeShare = 0.2
	compactMinFree   = 4 << 20
	compactTxBytes   = 32 << 20 // bytes copied per transaction of the new file
)

func compactPath(path string) string { return path + ".compact" }

// CompactResult says what a compaction did.
type CompactResult struct {
	Compacted     bool  // false: not worth it (see Compact)
	Before, After int64 // file length in bytes
	Took          time.Duration
}

// Compact rewrites the spool into a new file without the pages freed by Purge when they are
// more than a fifth of the file and at least 4 MiB (force: always), and returns what it did.
// An error wrapping ErrCorrupt means a stored record failed its check: nothing was changed
// (run `lanebridge-agent check`); an error wrapping ErrFailed means the file could not be
// opened again and the process must restart.
func (s *Spool) Compact(force bool) (CompactResult, error) {
	s.purge.Lock() // no Purge transaction during the copy
	defer s.purge.Unlock()
	if !force && !s.worthCompacting() {
		return CompactResult{}, nil
	}
	res, err := s.submit(context.Background(), &request{compact: true})
	if err != nil {
		return CompactResult{}, fmt.Errorf("spool compact: %w", err)
	}
	return *res.compacted, nil
}

// worthCompacting reads bbolt's in-memory freelist: no file access.
func (s *Spool) worthCompacting() bool {
	var used int64
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if err := s.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		return false
	}
	st := s.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(s.db.Info().PageSize)
	return free >= compactMinFree && float64(free) > compactFreeShare*float64(used)
}

// compact runs in the writer goroutine.
func (s *Spool) compact() (CompactResult, error) {
	start := time.Now()
	res := CompactResult{}
	if fi, err := os.Stat(s.path); err == nil {
		res.Before = fi.Size()
	}
	tmp := compactPath(s.path)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	if err := s.copyTo(tmp); err != nil {
		_ = os.Remove(tmp)
		return res, err
	}
	// From here the old handle goes away: a failure is fatal, the file on disk is whole
	// (the old one before the rename, the new one after it).
	s.dbMu.Lock()
	err := func() error {
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("close: %w", err)
		}
		if err := os.Rename(tmp, s.path); err != nil {
			return fmt.Errorf("rename: %w", err)
		}
		if err := boltfile.SyncDir(filepath.Dir(s.path)); err != nil {
			return fmt.Errorf("sync directory: %w", err)
		}
		db, err := bolt.Open(s.path, boltfile.FileMode, s.boltOptions())
		if err != nil {
			return fmt.Errorf("open again: %w", err)
		}
		s.db = db
		return nil
	}()
	if err != nil {
		// s.db may be closed: every later read fails, and writes are refused.
		s.dbMu.Unlock()
		s.fail(err)
		return res, fmt.Errorf("%w: %w", ErrFailed, err)
	}
	s.dbMu.Unlock()
	if fi, err := os.Stat(s.path); err == nil {
		res.After = fi.Size()
	}
	res.Compacted, res.Took = true, time.Since(start)
	s.refreshSize()
	s.log.Info("spool compacted", "before_bytes", res.Before, "after_bytes", res.After, "took", res.Took)
	return res, nil
}

// copyTo writes every bucket of the spool into a new file at dst, checking each record. A
// damaged page that makes bbolt panic or fault is reported as corruption.
func (s *Spool) copyTo(dst string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: reading the spool panicked: %v", errCorrupt, p)
		}
	}()
	out, err := bolt.Open(dst, boltfile.FileMode, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType, PageSize: pageSize})
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	defer out.Close()
	err = s.view(func(src *bolt.Tx) error {
		epoch := string(src.Bucket(bucketMeta).Get(keyEpoch))
		for _, name := range allBuckets {
			b := src.Bucket(name)
			if b == nil {
				return fmt.Errorf("%w: bucket %s missing", errCorrupt, name)
			}
			c := b.Cursor()
			k, v := c.First()
			for first := true; first || k != nil; first = false {
				var n int64
				err := out.Update(func(tx *bolt.Tx) error {
					db, err := tx.CreateBucketIfNotExists(name)
					if err != nil {
						return err
					}
					db.FillPercent = 1.0 // keys arrive in order: full pages
					for ; k != nil && n < compactTxBytes; k, v = c.Next() {
						if bytes.Equal(name, bucketRecords) {
							if len(k) != 8 {
								return fmt.Errorf("%w: record key %x is not 8 bytes", errCorrupt, k)
							}
							if err := checkRecord(binary.BigEndian.Uint64(k), v, epoch); err != nil {
								return fmt.Errorf("%w: %w", errCorrupt, err)
							}
						}
						if err := db.Put(k, v); err != nil {
							return err
						}
						n += int64(len(k) + len(v))
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy into %s: %w", dst, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dst, err)
	}
	return out.Close()
}
