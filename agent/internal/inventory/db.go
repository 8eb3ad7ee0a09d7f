package inventory

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/lanebridge/lanebridge/protocol"
)

// Errors returned by the item master.
var (
	// ErrFailed means a commit failed earlier: the file refuses further writes and the process
	// must restart (GUARANTEES: a commit or fsync error is fatal).
	ErrFailed = errors.New("inventory commit failed: restart the process")
	// ErrLocked means another process (normally the running agent) holds the file.
	ErrLocked = errors.New("inventory file is locked by another process")
	// ErrReadOnly is returned by Apply on a file opened with OpenReadOnly.
	ErrReadOnly = errors.New("inventory opened read-only")
	// ErrNoItemMaster means no snapshot was ever applied (version 0).
	ErrNoItemMaster = errors.New("no item master received from the hub yet")
	// ErrUnknownSKU is returned by lookups of a SKU the item master does not hold.
	ErrUnknownSKU = errors.New("unknown sku")
	errCorrupt    = errors.New("inventory file is corrupt")
)

var (
	bucketMeta  = []byte("meta")
	bucketItems = []byte("items")
	keyMeta     = []byte("meta")
)

const (
	fileMode        = 0o600
	openTimeout     = 5 * time.Second
	readOnlyTimeout = 500 * time.Millisecond
	metaFormat      = 1
)

// Meta describes the item master as a whole. It is stored, as JSON, in the same transaction
// as the items it describes.
type Meta struct {
	Format int `json:"format"`
	// Version of the last applied message (0: none).
	Version uint64 `json:"version"`
	// Epoch and AppliedThrough: the agent's own records (of Epoch, seq <= AppliedThrough) that
	// the Available figures of this version already account for.
	Epoch          string    `json:"epoch,omitempty"`
	AppliedThrough uint64    `json:"applied_through,omitempty"`
	AsOf           time.Time `json:"as_of,omitzero"`
	AppliedAt      time.Time `json:"applied_at,omitzero"`
	Items          int       `json:"items"`
}

// Outcome says what Apply did with a message.
type Outcome int

// Outcomes of Apply.
const (
	// Applied: the message is the new state.
	Applied Outcome = iota
	// IgnoredBase: a delta whose BaseVersion is not the current version; the agent reports its
	// version and waits for a snapshot.
	IgnoredBase
	// IgnoredStale: a snapshot whose version is not above the current one (a late or repeated
	// message: versions only go up).
	IgnoredStale
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case IgnoredBase:
		return "ignored: delta base is not the current version"
	case IgnoredStale:
		return "ignored: snapshot not newer than the current version"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// DB is the agent's item master in its own bbolt file (data_dir/inventory.db): bucket meta
// (key "meta" → Meta JSON) and bucket items (SKU → protocol.Item JSON). Each message is applied
// in one transaction, so a reader sees a version entirely or not at all. Safe for concurrent
// use; Apply calls are serialised by bbolt's writer lock.
type DB struct {
	path     string
	db       *bolt.DB
	readOnly bool
	alarms   []string
	failed   atomic.Pointer[error]
	now      func() time.Time
}

// Open opens or creates the item master at path. An existing file is checked first (bbolt's
// page check and the meta record); a corrupt file is moved aside to path+".corrupt-<time>",
// an alarm is raised (Alarms) and logged, and an empty item master (version 0) is created: the
// agent reports version 0 and the hub sends a snapshot. A held lock yields ErrLocked after 5 s.
func Open(path string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "inventory", "path", path)
	var alarms []string
	switch fi, err := os.Stat(path); {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("open inventory %s: is a directory", path)
	case err == nil:
		cerr := checkFile(path)
		if cerr == nil {
			break
		}
		if !errors.Is(cerr, errCorrupt) {
			return nil, fmt.Errorf("open inventory %s: %w", path, cerr)
		}
		aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000Z")
		if err := os.Rename(path, aside); err != nil {
			return nil, fmt.Errorf("open inventory %s: move corrupt file aside: %w (corruption: %v)", path, err, cerr)
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("open inventory %s: sync directory after moving corrupt file: %w", path, err)
		}
		alarms = append(alarms, fmt.Sprintf("inventory file was corrupt and was moved aside to %s; waiting for a snapshot from the hub: %v", aside, cerr))
		log.Error("Inventory file is corrupt; moved aside, starting empty until the hub sends a snapshot.", "moved_to", aside, "err", cerr)
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("open inventory %s: %w", path, err)
	}
	db, err := bolt.Open(path, fileMode, &bolt.Options{Timeout: openTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open inventory %s: %w", path, lockErr(err))
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketItems} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketMeta).Get(keyMeta) == nil {
			return putMeta(tx, Meta{Format: metaFormat})
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open inventory %s: initialise: %w", path, err)
	}
	d := &DB{path: path, db: db, alarms: alarms, now: time.Now}
	m, err := d.Meta()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	log.Info("Inventory opened.", "version", m.Version, "items", m.Items)
	return d, nil
}

// OpenReadOnly opens an existing item master for lookups while the agent is not running. It
// fails with ErrLocked if the agent holds the file, and with fs.ErrNotExist if there is none.
func OpenReadOnly(path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open inventory %s read-only: %w", path, err)
	}
	db, err := bolt.Open(path, fileMode, &bolt.Options{ReadOnly: true, Timeout: readOnlyTimeout})
	if err != nil {
		return nil, fmt.Errorf("open inventory %s read-only: %w", path, lockErr(err))
	}
	return &DB{path: path, db: db, readOnly: true, now: time.Now}, nil
}

func lockErr(err error) error {
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrLocked, err)
	}
	return err
}

// checkFile opens the file read-only and checks its pages and meta. Corruption can make bbolt
// panic or fault; that is recovered and reported as corruption.
func checkFile(path string) (err error) {
	var file *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if file != nil {
				_ = file.Close()
			}
			err = fmt.Errorf("%w: reading the file panicked: %v", errCorrupt, p)
		}
	}()
	db, err := bolt.Open(path, fileMode, &bolt.Options{
		ReadOnly: true, Timeout: openTimeout, FreelistType: bolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return lockErr(err)
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
			errors.Is(err, bolterrors.ErrVersionMismatch), strings.Contains(err.Error(), "file size too small"):
			return fmt.Errorf("%w: %w", errCorrupt, err)
		default:
			return fmt.Errorf("check: %w", err)
		}
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var problems []string
		for e := range tx.Check() {
			if len(problems) < 5 {
				problems = append(problems, e.Error())
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%w: %s", errCorrupt, strings.Join(problems, "; "))
		}
		if tx.Bucket(bucketItems) == nil {
			return fmt.Errorf("%w: items bucket missing", errCorrupt)
		}
		if _, err := getMeta(tx); err != nil {
			return fmt.Errorf("%w: %w", errCorrupt, err)
		}
		return nil
	})
}

func getMeta(tx *bolt.Tx) (Meta, error) {
	var m Meta
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return m, errors.New("meta bucket missing")
	}
	v := b.Get(keyMeta)
	if v == nil {
		return m, errors.New("meta record missing")
	}
	if err := json.Unmarshal(v, &m); err != nil {
		return m, fmt.Errorf("decode meta: %w", err)
	}
	return m, nil
}

func putMeta(tx *bolt.Tx, m Meta) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyMeta, v)
}

// Alarms returns the alarms raised when the file was opened.
func (d *DB) Alarms() []string {
	out := slices.Clone(d.alarms)
	if p := d.failed.Load(); p != nil {
		out = append(out, fmt.Sprintf("inventory commit failed, restart required: %v", *p))
	}
	return out
}

// Meta returns the item master's meta.
func (d *DB) Meta() (Meta, error) {
	var m Meta
	err := d.db.View(func(tx *bolt.Tx) error {
		var err error
		m, err = getMeta(tx)
		return err
	})
	if err != nil {
		return m, fmt.Errorf("inventory meta: %w", err)
	}
	return m, nil
}

// Item returns the item stored for sku and the meta of the same version (one read transaction).
// It returns ErrNoItemMaster before the first snapshot and ErrUnknownSKU for a SKU not held.
func (d *DB) Item(sku string) (protocol.Item, Meta, error) {
	var (
		it protocol.Item
		m  Meta
	)
	err := d.db.View(func(tx *bolt.Tx) error {
		var err error
		if m, err = getMeta(tx); err != nil {
			return err
		}
		if m.Version == 0 {
			return ErrNoItemMaster
		}
		v := tx.Bucket(bucketItems).Get([]byte(sku))
		if v == nil {
			return fmt.Errorf("%w %q (version %d)", ErrUnknownSKU, sku, m.Version)
		}
		return json.Unmarshal(v, &it)
	})
	if err != nil {
		return it, m, fmt.Errorf("inventory item: %w", err)
	}
	return it, m, nil
}

// ForEach calls fn for every item in SKU order, in one read transaction, and returns the meta
// of the version it read. fn must not call Apply.
func (d *DB) ForEach(fn func(protocol.Item) error) (Meta, error) {
	var m Meta
	err := d.db.View(func(tx *bolt.Tx) error {
		var err error
		if m, err = getMeta(tx); err != nil {
			return err
		}
		return tx.Bucket(bucketItems).ForEach(func(k, v []byte) error {
			var it protocol.Item
			if err := json.Unmarshal(v, &it); err != nil {
				return fmt.Errorf("decode item %q: %w", k, err)
			}
			return fn(it)
		})
	})
	if err != nil {
		return m, fmt.Errorf("inventory items: %w", err)
	}
	return m, nil
}

type encoded struct {
	sku string
	v   []byte
	i   int // position in the message: among equal SKUs the later one wins
}

// Apply applies one message in one transaction. A snapshot whose Version is above the current
// version replaces every item; a delta applies only on top of exactly its BaseVersion, putting
// its items and deleting its Removed SKUs. Anything else is ignored and reported in the Outcome
// (the caller then reports its version so the hub sends a snapshot). m must have passed
// protocol.DecodeInventory. An error wrapping ErrFailed is fatal.
func (d *DB) Apply(m *protocol.Inventory) (Outcome, Meta, error) {
	if d.readOnly {
		return 0, Meta{}, ErrReadOnly
	}
	if p := d.failed.Load(); p != nil {
		return 0, Meta{}, fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	// Encode outside the write transaction: the writer lock is held only for the puts.
	items := make([]encoded, 0, len(m.Items))
	for i := range m.Items {
		v, err := json.Marshal(&m.Items[i])
		if err != nil {
			return 0, Meta{}, fmt.Errorf("inventory apply v%d: encode %q: %w", m.Version, m.Items[i].SKU, err)
		}
		items = append(items, encoded{m.Items[i].SKU, v, i})
	}
	// Sorted keys fill pages sequentially; equal SKUs keep message order, so the later wins.
	slices.SortFunc(items, func(a, b encoded) int {
		if c := strings.Compare(a.sku, b.sku); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})

	var (
		out  Outcome
		meta Meta
	)
	tx, err := d.db.Begin(true)
	if err != nil {
		return 0, Meta{}, fmt.Errorf("inventory apply v%d: begin: %w", m.Version, err)
	}
	defer func() { _ = tx.Rollback() }()
	cur, err := getMeta(tx)
	if err != nil {
		return 0, Meta{}, fmt.Errorf("inventory apply v%d: %w", m.Version, err)
	}
	switch {
	case m.Kind == protocol.InventorySnapshot && m.Version <= cur.Version:
		return IgnoredStale, cur, nil
	case m.Kind == protocol.InventoryDelta && m.BaseVersion != cur.Version:
		return IgnoredBase, cur, nil
	case m.Kind != protocol.InventorySnapshot && m.Kind != protocol.InventoryDelta:
		return 0, cur, fmt.Errorf("inventory apply v%d: unknown kind %q", m.Version, m.Kind)
	}
	var b *bolt.Bucket
	if m.Kind == protocol.InventorySnapshot {
		if err := tx.DeleteBucket(bucketItems); err != nil {
			return 0, cur, fmt.Errorf("inventory apply v%d: clear items: %w", m.Version, err)
		}
		if b, err = tx.CreateBucket(bucketItems); err != nil {
			return 0, cur, fmt.Errorf("inventory apply v%d: create items: %w", m.Version, err)
		}
		b.FillPercent = 1.0 // keys arrive sorted into an empty bucket
	} else {
		b = tx.Bucket(bucketItems)
	}
	n := cur.Items
	if m.Kind == protocol.InventorySnapshot {
		n = 0
	}
	for i, e := range items {
		k := []byte(e.sku)
		switch {
		case m.Kind == protocol.InventorySnapshot:
			if i == 0 || items[i-1].sku != e.sku {
				n++
			}
		case b.Get(k) == nil:
			n++
		}
		if err := b.Put(k, e.v); err != nil {
			return 0, cur, fmt.Errorf("inventory apply v%d: put %q: %w", m.Version, e.sku, err)
		}
	}
	for _, sku := range m.Removed {
		k := []byte(sku)
		if b.Get(k) == nil {
			continue
		}
		if err := b.Delete(k); err != nil {
			return 0, cur, fmt.Errorf("inventory apply v%d: delete %q: %w", m.Version, sku, err)
		}
		n--
	}
	meta = Meta{
		Format: metaFormat, Version: m.Version, Epoch: m.Epoch, AppliedThrough: m.AppliedThrough,
		AsOf: m.AsOf, AppliedAt: d.now().UTC(), Items: n,
	}
	if err := putMeta(tx, meta); err != nil {
		return 0, cur, fmt.Errorf("inventory apply v%d: put meta: %w", m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		d.failed.CompareAndSwap(nil, &err)
		return 0, cur, fmt.Errorf("inventory apply v%d: %w: commit: %w", m.Version, ErrFailed, err)
	}
	out = Applied
	return out, meta, nil
}

// Close closes the file.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close inventory %s: %w", d.path, err)
	}
	return nil
}

// syncDir makes a rename durable. Windows cannot fsync a directory; NTFS journals renames.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
