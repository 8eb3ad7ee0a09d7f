package capture

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lanebridge/lanebridge/agent/internal/boltfile"
)

// The raw capture journal keeps everything a byte-stream source read (card data already masked)
// so that parsing can be replayed after a crash and re-run after a profile fix.
//
// It is a bbolt file of its own (data_dir/journal.db), not a bucket of the spool, because:
//   - the spool's single writer goroutine and its group commit stay the only writer of the spool,
//     and a raw append (one fsync) never waits behind, or delays, a record commit's batch;
//   - raw bytes are bulkier than records (an ESC/POS logo is ~9 KB per receipt) and have their
//     own retention: they must not count against the spool's max_size alarm;
//   - damage to one file does not take the other down.
//
// The price is a second fsync per batch and a cursor (kept in the spool, committed with the
// records) that points into another file: the cursor names the journal it points into, and a
// journal that is shorter than its cursor is detected at start and reported.
//
// Layout: one bucket per source id holding 8-byte big-endian entry ids (from 1) → entry; a
// bucket "files/<source>" holding, for a dir:// source, file name → fileMark JSON; and a bucket
// "meta/journal" holding the journal's identity, which the parse cursors carry, so that a
// cursor is never applied to another journal (one created after the old was lost or moved
// aside as corrupt).

// EntryKind says what a journal entry tells the parser.
type EntryKind byte

const (
	// EntryData is masked input bytes: Parser.Feed(data, time).
	EntryData EntryKind = 'd'
	// EntryFlush records a Parser.Flush(time) that closed transactions.
	EntryFlush EntryKind = 'f'
	// EntryClose records a Parser.Close after a quiet period; parsing restarts with a new
	// parser after it.
	EntryClose EntryKind = 'c'
	// EntryEOF ends one file of a dir:// source (Parser.Close; a new parser for the next file).
	EntryEOF EntryKind = 'e'
)

// Entry is one journal entry.
type Entry struct {
	ID   uint64 // assigned by Append, from 1, gap-free per source
	Kind EntryKind
	Time time.Time
	Data []byte // masked bytes (EntryData)
	File string // dir:// sources: the file the bytes came from
	End  int64  // dir:// sources: the file offset just past these bytes
}

type fileMark struct {
	Off int64  `json:"off"`           // bytes of the file journaled so far
	EOF uint64 `json:"eof,omitempty"` // id of the file's EntryEOF, once written
}

// ErrJournalBehind is returned when the committed parse cursor points past the end of the
// journal it was written for (the journal was restored from an older copy while the spool
// survived). A cursor of another journal (one that was lost, or moved aside as corrupt) is not
// an error: the pipeline resets it to the start of this journal and raises an alarm.
var ErrJournalBehind = errors.New("raw journal is behind the parse cursor")

// Journal is the raw capture journal. It is safe for concurrent use; appends to one source
// must come from one goroutine (the source's pipeline).
type Journal struct {
	db   *bolt.DB
	path string
	// id identifies this journal file ("" for a legacy file opened read-only); parse cursors
	// carry it. adopted: the id was given to a file written before journals had one, so a
	// cursor without an id belongs to it.
	id      string
	adopted bool

	mu     sync.Mutex
	alarms []string // corrupt files moved aside, parse cursors reset
}

// Journal identity: bucket journalMeta (a name no source id can take: ids have no '/') holds
// the id (32 hex digits), the creation time and, for a legacy file, "adopted".
var (
	journalMeta = []byte("meta/journal")
	keyID       = []byte("id")
	keyCreated  = []byte("created_at")
	keyAdopted  = []byte("adopted")
)

// OpenJournal opens or creates the journal at path, waiting at most timeout for its lock (an
// error wrapping boltfile.ErrLocked after that). An existing journal is checked first; a
// corrupt one is moved aside to path+".corrupt-<time>" and a new, empty journal with a new id
// is created. Alarms reports it (and, on later opens, the file kept aside); the parse cursors
// in the spool, which point into the old journal, are reset by each pipeline (see Pipeline).
func OpenJournal(path string, timeout time.Duration) (*Journal, error) {
	f, err := boltfile.Open(path, boltfile.Options{
		Name:    "raw journal",
		Timeout: timeout,
		Check:   checkJournal,
		Init:    func(tx *bolt.Tx) error { return initJournal(tx, false) },
		Restart: "a new, empty raw journal was started (input journaled in the old one and not yet parsed is not captured; the parse cursors are reset to the new journal)",
	})
	if err != nil {
		return nil, fmt.Errorf("open raw journal %s: %w", path, err)
	}
	j := &Journal{db: f.DB, path: path, alarms: f.Alarms()}
	if err := j.loadID(); err != nil {
		_ = f.DB.Close()
		return nil, fmt.Errorf("open raw journal %s: %w", path, err)
	}
	return j, nil
}

// OpenJournalReadOnly opens the journal for reading (tools). It does not check the file.
func OpenJournalReadOnly(path string, timeout time.Duration) (*Journal, error) {
	db, err := boltfile.OpenReadOnly(path, timeout)
	if err != nil {
		return nil, fmt.Errorf("open raw journal %s: %w", path, err)
	}
	j := &Journal{db: db, path: path}
	if err := db.View(func(tx *bolt.Tx) error { j.readID(tx); return nil }); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open raw journal %s: %w", path, err)
	}
	return j, nil
}

// initJournal gives a journal its identity; adopted marks a legacy file given one late.
func initJournal(tx *bolt.Tx, adopted bool) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("mint journal id: %w", err)
	}
	m, err := tx.CreateBucketIfNotExists(journalMeta)
	if err != nil {
		return err
	}
	kvs := [][2][]byte{
		{keyID, []byte(hex.EncodeToString(b[:]))},
		{keyCreated, []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	}
	if adopted {
		kvs = append(kvs, [2][]byte{keyAdopted, []byte("1")})
	}
	for _, kv := range kvs {
		if err := m.Put(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func (j *Journal) readID(tx *bolt.Tx) {
	if m := tx.Bucket(journalMeta); m != nil {
		j.id, j.adopted = string(m.Get(keyID)), m.Get(keyAdopted) != nil
	}
}

// loadID reads the journal's id, giving a legacy file (written before journals had one) its
// id first.
func (j *Journal) loadID() error {
	if err := j.db.View(func(tx *bolt.Tx) error { j.readID(tx); return nil }); err != nil {
		return err
	}
	if j.id != "" {
		return nil
	}
	return j.db.Update(func(tx *bolt.Tx) error {
		if err := initJournal(tx, true); err != nil {
			return fmt.Errorf("give the journal an id: %w", err)
		}
		j.readID(tx)
		return nil
	})
}

// checkJournal is the journal's own check (boltfile.Options.Check): the id is 32 hex digits,
// every source's entries have 8-byte ids within the bucket's sequence and decode, and every
// file mark decodes.
func checkJournal(tx *bolt.Tx) error {
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		switch {
		case bytes.Equal(name, journalMeta):
			if id, err := hex.DecodeString(string(b.Get(keyID))); err != nil || len(id) != 16 {
				return fmt.Errorf("journal id %q is not 32 hex digits", b.Get(keyID))
			}
			return nil
		case bytes.HasPrefix(name, []byte("files/")):
			return b.ForEach(func(k, v []byte) error {
				var m fileMark
				if err := json.Unmarshal(v, &m); err != nil {
					return fmt.Errorf("bucket %q: file mark %q: %v", name, k, err)
				}
				return nil
			})
		}
		seq := b.Sequence()
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || binary.BigEndian.Uint64(k) == 0 || binary.BigEndian.Uint64(k) > seq {
				return fmt.Errorf("source %q: entry key %x is not an id in 1..%d", name, k, seq)
			}
			if err := checkEntry(v); err != nil {
				return fmt.Errorf("source %q entry %d: %w", name, binary.BigEndian.Uint64(k), err)
			}
			return nil
		})
	})
}

// ID returns the journal's identity ("" for a legacy file opened read-only).
func (j *Journal) ID() string { return j.id }

// owns says whether a committed parse cursor was written for this journal.
func (j *Journal) owns(c parseCursor) bool {
	return c.Journal == j.id || (c.Journal == "" && j.adopted)
}

// Alarms returns what the status reports about the journal: a corrupt file moved aside (at
// this open, or kept from an earlier one) and parse cursors reset since it was opened.
func (j *Journal) Alarms() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.alarms...)
}

func (j *Journal) alarm(msg string) {
	j.mu.Lock()
	j.alarms = append(j.alarms, msg)
	j.mu.Unlock()
}

// Close closes the file.
func (j *Journal) Close() error { return j.db.Close() }

// Append writes entries for source in one fsynced transaction and returns them with their ids.
// The caller's slice is not modified. An error is fatal for the caller: it must not retry on the
// same file (bbolt's state after a failed fsync is unknown).
func (j *Journal) Append(source string, entries []Entry) ([]Entry, error) {
	out := append([]Entry(nil), entries...)
	err := j.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(source))
		if err != nil {
			return err
		}
		b.FillPercent = 1.0
		var files *bolt.Bucket
		for i := range out {
			e := &out[i]
			id, _ := b.NextSequence()
			e.ID = id
			if err := b.Put(u64key(id), encodeEntry(e)); err != nil {
				return err
			}
			if e.File == "" {
				continue
			}
			if files == nil {
				if files, err = tx.CreateBucketIfNotExists([]byte("files/" + source)); err != nil {
					return err
				}
			}
			var m fileMark
			if v := files.Get([]byte(e.File)); v != nil {
				_ = json.Unmarshal(v, &m)
			}
			if e.End > m.Off {
				m.Off = e.End
			}
			if e.Kind == EntryEOF {
				m.EOF = id
			}
			v, _ := json.Marshal(m)
			if err := files.Put([]byte(e.File), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append to raw journal %s: %w", source, err)
	}
	return out, nil
}

// Read returns up to max entries of source with ids >= from, in order.
func (j *Journal) Read(source string, from uint64, max int) ([]Entry, error) {
	var out []Entry
	err := j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(source))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(u64key(from)); k != nil && len(out) < max; k, v = c.Next() {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			e.ID = binary.BigEndian.Uint64(k)
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read raw journal %s: %w", source, err)
	}
	return out, nil
}

// Purge deletes source's entries with id < below that were journaled before olderThan, oldest
// first, in transactions of at most 10,000 entries, and returns how many it deleted. The
// pipeline passes its parse cursor's restart point as below, so nothing a restart would parse
// again is deleted; bbolt reuses the freed pages, so the file stops growing.
func (j *Journal) Purge(source string, below uint64, olderThan time.Time) (int, error) {
	total := 0
	for {
		n := 0
		done := false
		err := j.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(source))
			if b == nil {
				done = true
				return nil
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.First() {
				if binary.BigEndian.Uint64(k) >= below || len(v) < 9 ||
					time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))).After(olderThan) || n == 10_000 {
					done = n < 10_000
					return nil
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			done = true
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("purge raw journal %s: %w", source, err)
		}
		total += n
		if done || n == 0 {
			return total, nil
		}
	}
}

// Last returns the id of source's last entry (0 when empty).
func (j *Journal) Last(source string) (uint64, error) {
	var last uint64
	err := j.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(source)); b != nil {
			last = b.Sequence()
		}
		return nil
	})
	return last, err
}

// fileMark returns what the journal knows about file name of a dir:// source.
func (j *Journal) fileMark(source, name string) (fileMark, error) {
	var m fileMark
	err := j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("files/" + source))
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(name)); v != nil {
			return json.Unmarshal(v, &m)
		}
		return nil
	})
	return m, err
}

// forgetFile removes a finished file's mark (after it was moved to done/), so a later file of
// the same name is read again.
func (j *Journal) forgetFile(source, name string) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("files/" + source)); b != nil {
			return b.Delete([]byte(name))
		}
		return nil
	})
}

// fileMarks returns every file mark of source.
func (j *Journal) fileMarks(source string) (map[string]fileMark, error) {
	out := map[string]fileMark{}
	err := j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("files/" + source))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var m fileMark
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out[string(k)] = m
			return nil
		})
	})
	return out, err
}

// Entry encoding: kind(1) | unix nanos(8) | file name length(2) | file name | end(8) | data.
func encodeEntry(e *Entry) []byte {
	b := make([]byte, 0, 19+len(e.File)+len(e.Data))
	b = append(b, byte(e.Kind))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.File)))
	b = append(b, e.File...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.End))
	return append(b, e.Data...)
}

func decodeEntry(v []byte) (Entry, error) {
	if err := entryFraming(v); err != nil {
		return Entry{}, err
	}
	e := Entry{Kind: EntryKind(v[0]), Time: time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9])))}
	n := int(binary.BigEndian.Uint16(v[9:11]))
	e.File = string(v[11 : 11+n])
	e.End = int64(binary.BigEndian.Uint64(v[11+n : 19+n]))
	e.Data = append([]byte(nil), v[19+n:]...)
	return e, nil
}

// entryFraming checks that an encoded entry holds its fixed fields and its file name.
func entryFraming(v []byte) error {
	if len(v) < 19 || len(v) < 19+int(binary.BigEndian.Uint16(v[9:11])) {
		return errors.New("short entry")
	}
	return nil
}

// checkEntry checks an encoded entry's framing and kind without copying it.
func checkEntry(v []byte) error {
	if err := entryFraming(v); err != nil {
		return err
	}
	switch EntryKind(v[0]) {
	case EntryData, EntryFlush, EntryClose, EntryEOF:
		return nil
	}
	return fmt.Errorf("unknown kind %q", v[0])
}

func u64key(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
