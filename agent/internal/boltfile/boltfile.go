// Package boltfile opens the agent's bbolt files (the spool, the item master and the raw
// journal) one way: a held lock fails after a timeout with [ErrLocked] instead of blocking, an
// existing file is checked before it is used, and a corrupt file is moved aside, never written
// to and never silently replaced: the caller gets an [Alarm] to report and a fresh file.
//
// # The check
//
// [Open] checks an existing file read-only, so a corrupt file is never written to. A file is
// corrupt when it is empty; when bbolt refuses it (no valid meta page, a checksum or version
// mismatch, too small); when its meta page claims more pages than the file holds (truncated);
// when reading it makes bbolt panic or fault; when the file's own invariants ([Options.Check])
// fail; or when bbolt's tx.Check reports a problem. Any other failure (lock held, permissions,
// I/O) is returned as is and the file is left alone.
//
// A corrupt page can make bbolt panic or fault (a truncated file faults on the mmap), so the
// check runs with debug.SetPanicOnFault and recovers. bbolt's tx.Check runs in a goroutine of
// its own that nothing can recover: the check first walks every bucket and key (touching every
// page tx.Check reads) and the freelist is loaded at open, so a page that would crash tx.Check
// has already been caught. A crash there remains possible in principle.
//
// # Caveats
//
//   - bbolt checksums only its meta pages: damage inside a value is found only by the file's
//     own invariants (the spool hashes its records).
//   - After a recovered panic the abandoned handle's mmap leaks until the process exits; on
//     Windows the leaked handle may keep the file from being renamed, and Open then fails.
//   - Windows cannot fsync a directory; NTFS journals the renames.
package boltfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	// ErrLocked means another process holds the file's lock: normally another lanebridge-agent
	// (the service, or a `lanebridge-agent run` in a terminal).
	ErrLocked = errors.New("file is locked by another process")
	// ErrCorrupt marks a file that failed the check. Open does not return it: it moves such a
	// file aside. Options.Check may wrap it; whatever Check returns counts as corruption.
	ErrCorrupt = errors.New("file is corrupt")
)

// Defaults for the lock timeouts.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultReadOnlyTimeout = 500 * time.Millisecond
)

const (
	// FileMode is the mode of the files created.
	FileMode       = 0o600
	maxCheckErrors = 5
	// asideLayout timestamps a corrupt file moved aside: path + ".corrupt-" + time.
	asideLayout = "20060102T150405.000000000Z"
)

// Options configure Open.
type Options struct {
	// Name says what the file is in alarms ("spool", "inventory", "raw journal").
	Name string
	// Timeout bounds the wait for the file lock (default DefaultTimeout).
	Timeout time.Duration
	// Check verifies the file's own invariants in a read transaction on an existing file. Any
	// error it returns means the file is corrupt. nil: bbolt's checks only.
	Check func(*bolt.Tx) error
	// DeepCheckMaxBytes, when positive, makes Open skip the walk of every page and bbolt's
	// tx.Check, whose cost grows with the file, on a file longer than this: Open then relies
	// on bbolt's meta and size checks and on Check, which must read what the caller needs
	// sound. [Verify] runs everything on demand. 0: always the whole check.
	DeepCheckMaxBytes int64
	// Init writes a new file's first content (buckets, meta). The file is built under a
	// temporary name and renamed into place, so a file at the path always has it.
	Init func(*bolt.Tx) error
	// Restart completes the alarm of a corrupt file moved aside: what the caller starts with
	// instead (e.g. "a new spool with a new epoch was started").
	Restart string
	// Bolt holds options for the handle Open returns (freelist type, mmap size, OpenFile);
	// Open sets Timeout and clears ReadOnly. Its PageSize applies to a file Open creates (an
	// existing file keeps its own).
	Bolt bolt.Options
	// Now is the clock that names a corrupt file moved aside (tests); nil means time.Now.
	Now func() time.Time
}

// Alarm is a corrupt file beside the one opened.
type Alarm struct {
	// MovedTo is where the corrupt file lies (path + ".corrupt-<time>").
	MovedTo string
	// Err is what the check found (wraps ErrCorrupt), for the file this Open moved aside; nil
	// for a file moved aside by an earlier Open.
	Err error
	// Message is the alarm for the status: what happened and where the file is.
	Message string
}

// File is a file opened by Open.
type File struct {
	DB *bolt.DB
	// Created: this Open created the file (there was none, or a corrupt one was moved aside),
	// and Options.Init ran.
	Created bool
	// Moved is the corrupt file this Open moved aside; nil if the file was sound.
	Moved *Alarm
	// Kept are corrupt files moved aside by earlier Opens and still lying beside the file,
	// oldest first: they stay an alarm until an operator deals with them.
	Kept []Alarm
}

// Alarms returns the messages of Moved and Kept.
func (f *File) Alarms() []string {
	var out []string
	if f.Moved != nil {
		out = append(out, f.Moved.Message)
	}
	for _, a := range f.Kept {
		out = append(out, a.Message)
	}
	return out
}

// Open opens or creates the bbolt file at path for writing. An existing file is checked first
// (see the package documentation); a corrupt one is renamed to path+".corrupt-<time>" (the
// directory fsynced), a new file is created with Options.Init, and the corrupt file is
// reported in File.Moved. Any other failure to open is returned and the file is left alone; a
// lock held for longer than Options.Timeout yields an error wrapping ErrLocked.
func Open(path string, o Options) (*File, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	f := &File{}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("%s: is a directory", path)
	case err == nil:
		cerr := check(path, o)
		if cerr == nil {
			break
		}
		if !errors.Is(cerr, ErrCorrupt) {
			return nil, cerr
		}
		aside := path + ".corrupt-" + o.Now().UTC().Format(asideLayout)
		if err := os.Rename(path, aside); err != nil {
			return nil, fmt.Errorf("move corrupt file aside: %w (corruption: %v)", err, cerr)
		}
		if err := SyncDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("sync directory after moving corrupt file aside: %w", err)
		}
		f.Moved = &Alarm{MovedTo: aside, Err: cerr,
			Message: fmt.Sprintf("%s file was corrupt and was moved aside to %s; %s: %v", o.Name, aside, o.Restart, cerr)}
		if err := create(path, o); err != nil {
			return nil, err
		}
		f.Created = true
	case errors.Is(err, fs.ErrNotExist):
		if err := create(path, o); err != nil {
			return nil, err
		}
		f.Created = true
	default:
		return nil, err
	}

	if old, err := filepath.Glob(globEscape(path) + ".corrupt-*"); err == nil {
		sort.Strings(old)
		for _, p := range old {
			if f.Moved == nil || p != f.Moved.MovedTo {
				f.Kept = append(f.Kept, Alarm{MovedTo: p,
					Message: fmt.Sprintf("a corrupt %s file is kept at %s; inspect it and remove it", o.Name, p)})
			}
		}
	}

	bo := o.Bolt
	bo.Timeout, bo.ReadOnly = o.Timeout, false
	db, err := bolt.Open(path, FileMode, &bo)
	if err != nil {
		return nil, lockErr(path, o.Timeout, err)
	}
	f.DB = db
	return f, nil
}

// Verify runs the whole check of Open (the walk of every page, o.Check, bbolt's tx.Check;
// o.DeepCheckMaxBytes is ignored) on an existing file, read-only, without moving or changing anything.
// It returns nil, an error wrapping ErrCorrupt, or another error: the lock is held
// (ErrLocked after o.Timeout, default DefaultReadOnlyTimeout), the file is missing, I/O.
func Verify(path string, o Options) error {
	if o.Timeout <= 0 {
		o.Timeout = DefaultReadOnlyTimeout
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	o.DeepCheckMaxBytes = 0
	return check(path, o)
}

// OpenReadOnly opens an existing file for reading while another process may hold it for
// reading too (a shared lock). It does not check the file and never creates or moves one. A
// writer holding the file yields an error wrapping ErrLocked after timeout (default
// DefaultReadOnlyTimeout); a missing file an error wrapping fs.ErrNotExist.
func OpenReadOnly(path string, timeout time.Duration) (*bolt.DB, error) {
	if timeout <= 0 {
		timeout = DefaultReadOnlyTimeout
	}
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, FileMode, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return nil, lockErr(path, timeout, err)
	}
	return db, nil
}

// lockErr names a lock timeout: ErrLocked, the file, and who probably holds it.
func lockErr(path string, timeout time.Duration, err error) error {
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("%w: %s, still held after %v: another lanebridge-agent (the service, or `lanebridge-agent run`) is probably using it: %w",
			ErrLocked, path, timeout, err)
	}
	return err
}

// check opens the existing file read-only and checks it. It returns nil, an error wrapping
// ErrCorrupt, or another error (lock held, permissions, I/O) that must not be mistaken for
// corruption.
func check(path string, o Options) (err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("%w: the file is empty", ErrCorrupt)
	}

	var file *os.File // captured so a panic can still release the lock
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if file != nil {
				_ = file.Close()
			}
			err = fmt.Errorf("%w: reading the file panicked: %v", ErrCorrupt, p)
		}
	}()

	db, err := bolt.Open(path, FileMode, &bolt.Options{
		ReadOnly:        true,
		Timeout:         o.Timeout,
		PreLoadFreelist: true,
		FreelistType:    bolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return lockErr(path, o.Timeout, err)
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
			errors.Is(err, bolterrors.ErrVersionMismatch), strings.Contains(err.Error(), "file size too small"):
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		default:
			return fmt.Errorf("check: %w", err)
		}
	}
	tx, err := db.Begin(false)
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("check: %w", err)
	}
	// On a panic the deferred recover above runs first and db is abandoned: closing it
	// would wait for this transaction's mmap lock.
	deep := o.DeepCheckMaxBytes <= 0 || fi.Size() <= o.DeepCheckMaxBytes
	if cerr := checkTx(tx, fi.Size(), o.Check, deep); cerr != nil {
		_ = tx.Rollback()
		_ = db.Close()
		return cerr
	}
	_ = tx.Rollback()
	if err := db.Close(); err != nil {
		return fmt.Errorf("check: close: %w", err)
	}
	return nil
}

// checkTx runs the size check, the walk, the file's invariants, then bbolt's own check; with
// deep false, the size check and the invariants only.
func checkTx(tx *bolt.Tx, fileSize int64, invariants func(*bolt.Tx) error, deep bool) error {
	if tx.Size() > fileSize {
		return fmt.Errorf("%w: file is truncated: %d bytes, its pages need %d", ErrCorrupt, fileSize, tx.Size())
	}
	if deep {
		if err := walk(tx); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	if invariants != nil {
		if err := invariants(tx); err != nil {
			if errors.Is(err, ErrCorrupt) {
				return err
			}
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	if !deep {
		return nil
	}
	var errs []string
	n := 0
	for err := range tx.Check() {
		n++
		if len(errs) < maxCheckErrors {
			errs = append(errs, err.Error())
		}
	}
	if n > 0 {
		return fmt.Errorf("%w: bbolt check found %d problems: %s", ErrCorrupt, n, strings.Join(errs, "; "))
	}
	return nil
}

// walk visits every bucket and key, reading the first and last byte of every key and value:
// it touches every page tx.Check reads (and the ends of overflow runs), in the goroutine that
// recovers.
func walk(tx *bolt.Tx) error {
	var sink byte
	touch := func(b []byte) {
		if len(b) > 0 {
			sink ^= b[0] ^ b[len(b)-1]
		}
	}
	var bucket func(b *bolt.Bucket) error
	bucket = func(b *bolt.Bucket) error {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			touch(k)
			if v != nil {
				touch(v)
				continue
			}
			nb := b.Bucket(k)
			if nb == nil {
				return fmt.Errorf("key %x has no value and is not a bucket", k)
			}
			if err := bucket(nb); err != nil {
				return err
			}
		}
		return nil
	}
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		touch(name)
		return bucket(b)
	})
	_ = sink
	return err
}

// create writes a new file with o.Init under a temporary name and renames it into place.
func create(path string, o Options) error {
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create %s: remove stale %s: %w", path, tmp, err)
	}
	db, err := bolt.Open(tmp, FileMode, &bolt.Options{Timeout: o.Timeout, PageSize: o.Bolt.PageSize})
	if err != nil {
		return fmt.Errorf("create %s: %w", path, lockErr(tmp, o.Timeout, err))
	}
	if o.Init != nil {
		err = db.Update(o.Init)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("create %s: sync directory: %w", path, err)
	}
	return nil
}

// SyncDir makes a rename in dir durable. Windows cannot fsync a directory; NTFS journals
// renames.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

func globEscape(p string) string {
	if runtime.GOOS == "windows" {
		// '\\' is the path separator there and Glob does not support escaping.
		return p
	}
	dir, file := filepath.Split(p)
	out := make([]rune, 0, len(file))
	for _, r := range file {
		switch r {
		case '*', '?', '[', '\\':
			out = append(out, '\\')
		}
		out = append(out, r)
	}
	return dir + string(out)
}
