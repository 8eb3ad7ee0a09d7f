package spool

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/boltfile"
	"github.com/lanebridge/lanebridge/protocol"
	bolt "go.etcd.io/bbolt"
)

// Errors returned by the spool.
var (
	// ErrFailed means a commit or fsync failed earlier: the spool refuses every further write
	// and the process must exit and restart (the file is checked again on the next Open).
	ErrFailed = errors.New("spool failed: a commit or fsync error is fatal, restart the process")
	// ErrClosed is returned by writes after Close.
	ErrClosed = errors.New("spool closed")
	// ErrReadOnly is returned by writes on a spool opened with OpenReadOnly.
	ErrReadOnly = errors.New("spool opened read-only")
	// ErrLocked means another process (normally the running agent) holds the spool file; it
	// is boltfile.ErrLocked.
	ErrLocked = boltfile.ErrLocked
	// ErrEpochMismatch is returned by Ack for an acknowledgement of another epoch.
	ErrEpochMismatch = errors.New("ack for another epoch")
	// ErrAckBeyondLast is returned by Ack for a seq that was never captured.
	ErrAckBeyondLast = errors.New("ack beyond the last captured seq")
	// ErrInvalidCapture is returned by Commit for a capture the spool will not store (a record
	// that fails protocol validation, a missing source); nothing of that capture is written.
	ErrInvalidCapture = errors.New("invalid capture")
	// errCorrupt marks a file that failed the consistency check.
	errCorrupt = boltfile.ErrCorrupt
)

// Defaults for Options.
const (
	DefaultRetention   = 35 * 24 * time.Hour
	DefaultOpenTimeout = boltfile.DefaultTimeout
	// DefaultReadOnlyTimeout is OpenReadOnly's lock timeout when Options.OpenTimeout is zero.
	DefaultReadOnlyTimeout = boltfile.DefaultReadOnlyTimeout
	// SizeAlarmPercent is the share of MaxSize at which Stats reports an alarm.
	SizeAlarmPercent = 80
)

const (
	maxSourceLen     = 1024 // bbolt keys may be up to 32 KiB; sources are short ids
	maxBatchRequests = 512  // requests per group-commit transaction
	maxBatchRecords  = 20000
	purgeChunk       = 5000 // deletions per purge transaction
	formatVersion    = "1"
	// appendFillPercent is the bbolt FillPercent for buckets whose keys only grow.
	appendFillPercent = 0.95
	// pageSize is the bbolt page size of a spool file created or compacted: a record (about
	// 600 bytes) in 4 KiB pages leaves a sixth of each page unused, in 16 KiB pages a
	// twentieth. A file keeps the page size it was created with until its next compaction.
	pageSize = 16 << 10
)

var (
	bucketMeta       = []byte("meta")
	bucketRecords    = []byte("records")
	bucketOffsets    = []byte("offsets")
	bucketQuarantine = []byte("quarantine")
	bucketTerminals  = []byte("terminals")
	allBuckets       = [][]byte{bucketMeta, bucketRecords, bucketOffsets, bucketQuarantine, bucketTerminals}

	keyVersion   = []byte("version")
	keyEpoch     = []byte("epoch")
	keyNextSeq   = []byte("next_seq")
	keyLastAck   = []byte("last_ack")
	keyCreatedAt = []byte("created_at")
	keyNextQuar  = []byte("next_quarantine")
)

// testOpenFile lets tests reach the writable file handle to inject I/O errors; nil in
// production (bbolt then uses os.OpenFile).
var testOpenFile func(string, int, os.FileMode) (*os.File, error)

// Options configure a spool.
type Options struct {
	// Store is the store id stamped on every record (protocol.ValidateStoreID).
	Store string
	// Retention is how long acknowledged records are kept before Purge deletes them
	// (default DefaultRetention). Unacknowledged records are never deleted.
	Retention time.Duration
	// MaxSize is the file size in bytes at which the spool alarms (at SizeAlarmPercent);
	// 0 means no limit. The spool never refuses a capture and never evicts a record for space.
	MaxSize int64
	// OpenTimeout bounds the wait for the file lock (bbolt Options.Timeout; default
	// DefaultOpenTimeout, DefaultReadOnlyTimeout for OpenReadOnly).
	OpenTimeout time.Duration
	// Logger receives the spool's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock (for tests); nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults(readOnly bool) (Options, error) {
	if !readOnly {
		if err := protocol.ValidateStoreID(o.Store); err != nil {
			return o, fmt.Errorf("spool options: %w", err)
		}
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxSize < 0 {
		return o, fmt.Errorf("spool options: negative max size %d", o.MaxSize)
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = DefaultOpenTimeout
		if readOnly {
			o.OpenTimeout = DefaultReadOnlyTimeout
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Spool is the agent's durable outbox. All methods are safe for concurrent use. Writes
// (Commit, Ack) go through one writer goroutine that group-commits them; reads use bbolt read
// transactions and never wait for a commit's fsync.
type Spool struct {
	path     string
	dbMu     sync.RWMutex // guards the swap of db by Compact; readers hold it for reading
	db       *bolt.DB
	boltOpts bolt.Options // how db was opened (Compact opens the new file alike)
	opts     Options
	log      *slog.Logger
	epoch    string
	readOnly bool

	// closeMu guards closed and the send side of reqs: senders hold it for reading.
	closeMu sync.RWMutex
	closed  bool
	reqs    chan *request
	done    chan struct{} // closed when the writer goroutine has exited
	notify  chan struct{}

	failed atomic.Pointer[error] // first fatal commit error
	txN    atomic.Uint64         // write transactions committed (group-commit evidence)

	mu    sync.RWMutex // guards st
	st    state
	purge sync.Mutex // one Purge at a time
}

// state is what Stats reports without touching the file.
type state struct {
	nextSeq        uint64 // next seq to assign; LastSeq = nextSeq-1
	lastAck        uint64
	nextQuar       uint64
	oldestUnsent   time.Time
	lastCapture    map[string]time.Time
	quarantineN    uint64
	sizeBytes      int64 // file length
	usedBytes      int64 // bbolt high-water mark (tx.Size)
	sizeAlarmed    bool
	compactAlarmed bool
	alarms         []string
}

// Open opens or creates the spool at path. An existing file is checked first (bbolt's own
// check plus the spool's invariants); a corrupt file is renamed to path+".corrupt-<time>",
// an alarm is raised and logged, and a fresh spool with a new epoch is created. Any other
// failure to open (lock held, permissions) is returned and the file is left alone; a held
// lock yields an error wrapping ErrLocked.
func Open(path string, opts Options) (*Spool, error) {
	o, err := opts.withDefaults(false)
	if err != nil {
		return nil, err
	}
	log := o.Logger.With("component", "spool", "path", path)
	var epoch string
	// A compaction that crashed before its rename left its copy: the file at path is whole.
	if err := os.Remove(compactPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open spool %s: remove a stale compaction: %w", path, err)
	}
	bo := bolt.Options{
		PageSize:        pageSize,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: initialMmapSize(o.MaxSize),
		OpenFile:        testOpenFile,
		Timeout:         o.OpenTimeout,
	}
	f, err := boltfile.Open(path, boltfile.Options{
		Name:    "spool",
		Timeout: o.OpenTimeout,
		Check:   func(tx *bolt.Tx) error { return checkInvariants(tx, false) },
		// Past this (about 100k records) only the unacknowledged tail is checked at Open,
		// and the page walk and bbolt's tx.Check wait for Check (lanebridge-agent check).
		DeepCheckMaxBytes: deepCheckMaxBytes,
		Init: func(tx *bolt.Tx) error {
			var err error
			if epoch, err = newEpoch(); err != nil {
				return err
			}
			return initTx(tx, epoch, o.Now())
		},
		Restart: "a new spool with a new epoch was started",
		Bolt:    bo,
		Now:     o.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	if m := f.Moved; m != nil {
		log.Error("spool corrupt; moved aside, new epoch", "moved_to", m.MovedTo, "err", m.Err)
	}
	if f.Created {
		log.Info("spool created", "epoch", epoch)
	}
	s := &Spool{
		path:     path,
		db:       f.DB,
		boltOpts: bo,
		opts:     o,
		log:      log,
		reqs:     make(chan *request, 256),
		done:     make(chan struct{}),
		notify:   make(chan struct{}, 1),
	}
	if err := s.load(); err != nil {
		_ = f.DB.Close()
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	s.st.alarms = f.Alarms()
	s.refreshSize()
	log.Info("spool opened", "epoch", s.epoch, "last_seq", s.st.nextSeq-1, "last_ack", s.st.lastAck)
	go s.writer()
	return s, nil
}

// OpenReadOnly opens an existing spool for inspection (the status command) while the agent
// may be running. It does not run the consistency check and never creates or moves files.
// If the agent holds the file, it returns an error wrapping ErrLocked after
// Options.OpenTimeout (default DefaultReadOnlyTimeout). Writes return ErrReadOnly.
func OpenReadOnly(path string, opts Options) (*Spool, error) {
	o, err := opts.withDefaults(true)
	if err != nil {
		return nil, err
	}
	db, err := boltfile.OpenReadOnly(path, o.OpenTimeout)
	if err != nil {
		return nil, fmt.Errorf("open spool %s read-only: %w", path, err)
	}
	s := &Spool{
		path:     path,
		db:       db,
		opts:     o,
		log:      o.Logger.With("component", "spool", "path", path),
		readOnly: true,
		closed:   false,
		notify:   make(chan struct{}, 1),
	}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open spool %s read-only: %w", path, err)
	}
	s.refreshSize()
	return s, nil
}

// initialMmapSize maps enough up front that the forwarder's read transactions rarely block a
// commit on a remap. On Windows bbolt grows the file to the mmap size at once, so it stays 0.
func initialMmapSize(maxSize int64) int {
	if runtime.GOOS == "windows" {
		return 0
	}
	const want = 64 << 20
	if maxSize > 0 && maxSize < want {
		return int(maxSize)
	}
	return want
}

// initTx writes a new, empty spool with the given epoch: every bucket and the meta keys.
func initTx(tx *bolt.Tx, epoch string, now time.Time) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	m := tx.Bucket(bucketMeta)
	for _, kv := range []struct{ k, v []byte }{
		{keyVersion, []byte(formatVersion)},
		{keyEpoch, []byte(epoch)},
		{keyNextSeq, u64(1)},
		{keyLastAck, u64(0)},
		{keyNextQuar, u64(1)},
		{keyCreatedAt, []byte(now.UTC().Format(time.RFC3339Nano))},
	} {
		if err := m.Put(kv.k, kv.v); err != nil {
			return fmt.Errorf("meta %s: %w", kv.k, err)
		}
	}
	return nil
}

func newEpoch() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mint epoch: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// load reads the persistent state into memory.
func (s *Spool) load() error {
	return s.view(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil {
			return fmt.Errorf("load state: %w: meta bucket missing", errCorrupt)
		}
		s.epoch = string(m.Get(keyEpoch))
		var err error
		if s.st.nextSeq, err = getU64(m, keyNextSeq); err != nil {
			return fmt.Errorf("load state: %w", err)
		}
		if s.st.lastAck, err = getU64(m, keyLastAck); err != nil {
			return fmt.Errorf("load state: %w", err)
		}
		if s.st.nextQuar, err = getU64(m, keyNextQuar); err != nil {
			return fmt.Errorf("load state: %w", err)
		}
		s.st.lastCapture = map[string]time.Time{}
		if b := tx.Bucket(bucketTerminals); b != nil {
			if err := b.ForEach(func(k, v []byte) error {
				var t time.Time
				if err := t.UnmarshalText(v); err != nil {
					return fmt.Errorf("load state: terminal %q: %w", k, err)
				}
				s.st.lastCapture[string(k)] = t
				return nil
			}); err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketQuarantine); b != nil {
			s.st.quarantineN = uint64(b.Stats().KeyN)
		}
		if s.st.lastAck+1 < s.st.nextSeq {
			t, err := capturedAt(tx, s.st.lastAck+1)
			if err != nil {
				return fmt.Errorf("load state: %w", err)
			}
			s.st.oldestUnsent = t
		}
		return nil
	})
}

// refreshSize updates the file length and the used size. The size alarm follows the used size
// (bbolt's high-water mark: pages in use or freed for reuse), not the file length, which bbolt
// grows ahead of need to its mmap size or in 16 MiB steps: with a small max_size the length
// alone would alarm on an almost empty spool.
func (s *Spool) refreshSize() {
	fi, err := os.Stat(s.path)
	if err != nil {
		return
	}
	var used int64
	if err := s.view(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		used = fi.Size()
	}
	s.mu.Lock()
	s.st.sizeBytes = fi.Size()
	s.st.usedBytes = used
	alarm := s.opts.MaxSize > 0 && used*100 > s.opts.MaxSize*SizeAlarmPercent
	crossed := alarm && !s.st.sizeAlarmed
	s.st.sizeAlarmed = alarm
	s.mu.Unlock()
	if crossed {
		s.log.Warn("spool near its size limit; capture continues", "used_bytes", used, "size_bytes", fi.Size(), "max_size", s.opts.MaxSize)
	}
}

// view runs fn in a read transaction of the current file (Compact may replace it).
func (s *Spool) view(fn func(*bolt.Tx) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.View(fn)
}

// boltOptions returns the options db was opened with, for the file Compact puts in place.
func (s *Spool) boltOptions() *bolt.Options {
	o := s.boltOpts
	return &o
}

// Epoch returns the spool's epoch: 32 hex digits minted when the file was created.
func (s *Spool) Epoch() string { return s.epoch }

// LastSeq returns the seq of the last captured record (0 if none).
func (s *Spool) LastSeq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.nextSeq - 1
}

// LastAck returns the seq through which the hub has acknowledged.
func (s *Spool) LastAck() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.lastAck
}

// Notify returns the channel that receives (non-blocking, coalesced, capacity 1) after each
// commit that added records. There is one channel per spool, meant for one consumer.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Stats is a cheap snapshot of the spool, kept in memory.
type Stats struct {
	Epoch            string
	LastSeq, LastAck uint64
	Backlog          uint64               // LastSeq - LastAck
	OldestUnsent     time.Time            // CapturedAt of seq LastAck+1, zero if none
	LastCapture      map[string]time.Time // per terminal
	QuarantineCount  uint64
	SizeBytes        int64 // the file's length
	UsedBytes        int64 // bytes up to bbolt's high-water mark; the size alarm follows this
	MaxBytes         int64 // Options.MaxSize (0: no limit)
	Alarms           []string
	// Transactions counts the write transactions committed since Open.
	Transactions uint64
	// Failed is set once a commit failed; the process must restart.
	Failed bool
}

// Stats returns a snapshot; it does not touch the file.
func (s *Spool) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{
		Epoch:           s.epoch,
		LastSeq:         s.st.nextSeq - 1,
		LastAck:         s.st.lastAck,
		Backlog:         s.st.nextSeq - 1 - s.st.lastAck,
		OldestUnsent:    s.st.oldestUnsent,
		LastCapture:     make(map[string]time.Time, len(s.st.lastCapture)),
		QuarantineCount: s.st.quarantineN,
		SizeBytes:       s.st.sizeBytes,
		MaxBytes:        s.opts.MaxSize,
		UsedBytes:       s.st.usedBytes,
		Alarms:          append([]string(nil), s.st.alarms...),
		Transactions:    s.txN.Load(),
	}
	for k, v := range s.st.lastCapture {
		st.LastCapture[k] = v
	}
	if s.opts.MaxSize > 0 && s.st.usedBytes*100 > s.opts.MaxSize*SizeAlarmPercent {
		st.Alarms = append(st.Alarms, fmt.Sprintf("spool at %d%% of max_size", s.st.usedBytes*100/s.opts.MaxSize))
	}
	if p := s.failed.Load(); p != nil {
		st.Failed = true
		st.Alarms = append(st.Alarms, fmt.Sprintf("spool failed, restart required: %v", *p))
	}
	return st
}

// Offset returns the committed read offset of source, nil if none.
func (s *Spool) Offset(source string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketOffsets).Get([]byte(source)); v != nil {
			out = append([]byte{}, v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool offset %q: %w", source, err)
	}
	return out, nil
}

// RawRecord is a stored record as its JSON bytes (the record's wire encoding, hash included).
type RawRecord struct {
	Seq  uint64
	JSON []byte
}

// JSONs returns the JSON of each raw record, in order, as protocol.AppendBatch takes them.
func JSONs(raws []RawRecord) [][]byte {
	out := make([][]byte, len(raws))
	for i, r := range raws {
		out[i] = r.JSON
	}
	return out
}

// Read returns up to max records with seq >= from, in seq order.
func (s *Spool) Read(from uint64, max int) ([]protocol.Record, error) {
	raws, err := s.ReadRaw(from, max)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Record, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r.JSON, &out[i]); err != nil {
			return nil, fmt.Errorf("spool read seq %d: %w", r.Seq, err)
		}
	}
	return out, nil
}

// ReadRaw is Read without decoding: the stored JSON of each record, copied out of the file.
func (s *Spool) ReadRaw(from uint64, max int) ([]RawRecord, error) {
	if max <= 0 {
		return nil, nil
	}
	var out []RawRecord
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Seek(u64(from)); k != nil && len(out) < max; k, v = c.Next() {
			out = append(out, RawRecord{Seq: binary.BigEndian.Uint64(k), JSON: append([]byte(nil), v...)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool read from %d: %w", from, err)
	}
	return out, nil
}

// Quarantined returns up to limit quarantined captures, newest first.
func (s *Spool) Quarantined(limit int) ([]protocol.Quarantined, error) {
	var out []protocol.Quarantined
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketQuarantine).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var q protocol.Quarantined
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("decode %x: %w", k, err)
			}
			out = append(out, q)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool quarantined: %w", err)
	}
	return out, nil
}

// QuarantinedAfter returns up to limit quarantined captures with Seq > after, oldest first,
// each with its Seq set.
func (s *Spool) QuarantinedAfter(after uint64, limit int) ([]protocol.Quarantined, error) {
	var out []protocol.Quarantined
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketQuarantine).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var q protocol.Quarantined
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("decode %x: %w", k, err)
			}
			q.Seq = binary.BigEndian.Uint64(k)
			out = append(out, q)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool quarantined: %w", err)
	}
	return out, nil
}

// Purge deletes acknowledged records captured more than Retention ago, oldest first, and
// stops at the first record that is unacknowledged or younger, so the stored seqs stay
// contiguous. It never deletes an unacknowledged record. It returns how many it deleted.
//
// When it deleted records and the pages now free are worth it, Purge compacts the file
// (Compact): bbolt alone never shrinks it. A compaction that fails on a damaged record is
// logged and raises an alarm; the records stay where they are.
func (s *Spool) Purge() (int, error) {
	if err := s.writable(); err != nil {
		return 0, fmt.Errorf("spool purge: %w", err)
	}
	n, err := s.purgeRecords()
	if err != nil || n == 0 {
		return n, err
	}
	if _, err := s.Compact(false); err != nil {
		if errors.Is(err, ErrFailed) {
			return n, err
		}
		s.log.Error("spool compaction failed; the file keeps its size", "err", err)
		s.mu.Lock()
		if !s.st.compactAlarmed {
			s.st.compactAlarmed = true
			s.st.alarms = append(s.st.alarms, fmt.Sprintf("spool compaction failed (run lanebridge-agent check with the agent stopped): %v", err))
		}
		s.mu.Unlock()
	}
	return n, nil
}

func (s *Spool) purgeRecords() (int, error) {
	s.purge.Lock()
	defer s.purge.Unlock()
	cutoff := s.opts.Now().Add(-s.opts.Retention)
	total := 0
	for {
		lastAck := s.LastAck() // only grows, so everything <= it stays acknowledged
		s.dbMu.RLock()
		n, err := s.purgeChunk(lastAck, cutoff)
		s.dbMu.RUnlock()
		if err != nil {
			return total, err
		}
		total += n
		if n < purgeChunk {
			if n > 0 {
				s.refreshSize()
			}
			return total, nil
		}
	}
}

// purgeChunk deletes up to purgeChunk records, acknowledged through lastAck and captured
// before cutoff, in one transaction.
func (s *Spool) purgeChunk(lastAck uint64, cutoff time.Time) (int, error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		return 0, fmt.Errorf("spool purge: %w", err)
	}
	var keys [][]byte
	c := tx.Bucket(bucketRecords).Cursor()
	for k, v := c.First(); k != nil && len(keys) < purgeChunk; k, v = c.Next() {
		if binary.BigEndian.Uint64(k) > lastAck {
			break
		}
		t, err := decodeCapturedAt(v)
		if err != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("spool purge: seq %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if !t.Before(cutoff) {
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	if len(keys) == 0 {
		_ = tx.Rollback()
		return 0, nil
	}
	for _, k := range keys {
		if err := tx.Bucket(bucketRecords).Delete(k); err != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("spool purge: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		s.fail(err)
		return 0, fmt.Errorf("spool purge: %w: %w", ErrFailed, err)
	}
	s.txN.Add(1)
	s.log.Info("purged acknowledged records past retention", "count", len(keys), "through_seq", binary.BigEndian.Uint64(keys[len(keys)-1]))
	return len(keys), nil
}

func (s *Spool) writable() error {
	if s.readOnly {
		return ErrReadOnly
	}
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	return nil
}

func (s *Spool) fail(err error) {
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("spool commit failed; refusing writes until restart", "err", err)
	}
}

// Close stops the writer after it has committed every queued request, then closes the file.
func (s *Spool) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	if s.reqs != nil {
		close(s.reqs)
	}
	s.closeMu.Unlock()
	if s.done != nil {
		<-s.done
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close spool %s: %w", s.path, err)
	}
	return nil
}

// capturedAt reads the CapturedAt of the record with the given seq.
func capturedAt(tx *bolt.Tx, seq uint64) (time.Time, error) {
	v := tx.Bucket(bucketRecords).Get(u64(seq))
	if v == nil {
		return time.Time{}, fmt.Errorf("%w: record %d missing", errCorrupt, seq)
	}
	return decodeCapturedAt(v)
}

func decodeCapturedAt(v []byte) (time.Time, error) {
	var r struct {
		CapturedAt time.Time `json:"captured_at"`
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return time.Time{}, fmt.Errorf("decode captured_at: %w", err)
	}
	return r.CapturedAt, nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b *bolt.Bucket, key []byte) (uint64, error) {
	v := b.Get(key)
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: meta %s has %d bytes, want 8", errCorrupt, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
