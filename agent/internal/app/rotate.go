package app

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// rotatingFile is a size-capped log file: a write that would take it past max bytes first
// renames it to path.1 (path.1 to path.2, ..., dropping path.keep), so at most keep old files
// remain. It is the agent's log when it runs as a Windows service (no journald there).
type rotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	keep int
	f    *os.File
	size int64
}

func openRotating(path string, max int64, keep int) (*rotatingFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	r := &rotatingFile{path: path, max: max, keep: keep}
	return r, r.open()
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log file: %w", err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would not fit; a single p larger than max is written
// whole to a fresh file.
func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.size > 0 && r.size+int64(len(p)) > r.max {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	old := func(i int) string { return fmt.Sprintf("%s.%d", r.path, i) }
	if err := os.Remove(old(r.keep)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("log file: %w", err)
	}
	for i := r.keep - 1; i >= 1; i-- {
		if err := os.Rename(old(i), old(i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("log file: %w", err)
		}
	}
	if r.keep > 0 {
		if err := os.Rename(r.path, old(1)); err != nil {
			return fmt.Errorf("log file: %w", err)
		}
	} else if err := os.Remove(r.path); err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	return r.open()
}

// Close closes the current file.
func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
