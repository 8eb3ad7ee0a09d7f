package inventory

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lanebridge/lanebridge/agent/internal/boltfile"
	"github.com/lanebridge/lanebridge/protocol"
)

// Errors returned by the item master.
var (
	// ErrFailed means a commit failed earlier: the file refuses further writes and the process
	// must restart (GUARANTEES: a commit or fsync error is fatal).
	ErrFailed = errors.New("inventory commit failed: restart the process")
	// ErrLocked means another process (normally the running agent) holds the file; it is
	// boltfile.ErrLocked.
	ErrLocked = boltfile.ErrLocked
	// ErrReadOnly is returned by Apply on a file opened with OpenReadOnly.
	ErrReadOnly = errors.New("inventory opened read-only")
	// ErrNoItemMaster means no snapshot was ever applied (version 0).
	ErrNoItemMaster = errors.New("no item master received from the hub yet")
	// ErrUnknownSKU is returned by lookups of a SKU the item master does not hold.
	ErrUnknownSKU = errors.New("unknown sku")
)

var (
	bucketMeta  = []byte("meta")
	bucketItems = []byte("items")
	keyMeta     = []byte("meta")
)

const (
	openTimeout     = boltfile.DefaultTimeout
	readOnlyTimeout = boltfile.DefaultReadOnlyTimeout
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
	f, err := boltfile.Open(path, boltfile.Options{
		Name:    "inventory",
		Timeout: openTimeout,
		Check:   checkTx,
		Init: func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketMeta, bucketItems} {
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			return putMeta(tx, Meta{Format: metaFormat})
		},
		Restart: "waiting for a snapshot from the hub",
		Bolt:    bolt.Options{FreelistType: bolt.FreelistMapType},
	})
	if err != nil {
		return nil, fmt.Errorf("open inventory %s: %w", path, err)
	}
	if m := f.Moved; m != nil {
		log.Error("inventory file corrupt; moved aside, empty until the hub's snapshot", "moved_to", m.MovedTo, "err", m.Err)
	}
	for _, k := range f.Kept {
		log.Warn("corrupt inventory file kept", "path", k.MovedTo)
	}
	// A corrupt file moved aside stays an alarm, across restarts, until an operator removes it.
	d := &DB{path: path, db: f.DB, alarms: f.Alarms(), now: time.Now}
	m, err := d.Meta()
	if err != nil {
		_ = f.DB.Close()
		return nil, err
	}
	log.Info("inventory opened", "version", m.Version, "items", m.Items)
	return d, nil
}

// OpenReadOnly opens an existing item master for lookups while the agent is not running. It
// fails with ErrLocked if the agent holds the file, and with fs.ErrNotExist if there is none.
func OpenReadOnly(path string) (*DB, error) {
	db, err := boltfile.OpenReadOnly(path, readOnlyTimeout)
	if err != nil {
		return nil, fmt.Errorf("open inventory %s read-only: %w", path, err)
	}
	return &DB{path: path, db: db, readOnly: true, now: time.Now}, nil
}

// checkTx is the item master's own check (boltfile.Options.Check): the items bucket and a
// decodable meta record.
func checkTx(tx *bolt.Tx) error {
	if tx.Bucket(bucketItems) == nil {
		return errors.New("items bucket missing")
	}
	_, err := getMeta(tx)
	return err
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
