package powercut

import (
	"math/rand/v2"
	"sort"
	"sync"
	"syscall"
	"time"
)

// BlockSize is the unit in which file content is kept; SectorSize the unit that survives or
// not a cut in Reorder mode.
const (
	BlockSize  = 4096
	SectorSize = 512
)

// Mode says what a power cut keeps of the writes that were not synced.
type Mode int

const (
	// DropAll loses every unsynced write, file data and directory entries alike (LazyFS's
	// "clear cache").
	DropAll Mode = iota
	// Reorder keeps each unsynced 512-byte sector of file data with probability 1/2, in no
	// order; directory entries still revert to their last directory fsync, and a file's length
	// to its last fsync.
	Reorder
)

func (m Mode) String() string {
	if m == Reorder {
		return "reorder"
	}
	return "drop-all"
}

// Options configure a Disk.
type Options struct {
	// Capacity, when positive, is the number of bytes of file content the disk holds; a write
	// or an extension past it fails with ENOSPC (the disk-full scenarios).
	Capacity int64
	// IgnoreFsync makes fsync, fdatasync and directory fsync succeed without making anything
	// durable: a disk that lies about flushes. It exists to prove that the harness loses data
	// when nothing is synced; never use it to test a guarantee.
	IgnoreFsync bool
}

// Stats counts what the disk saw and what the cuts dropped.
type Stats struct {
	Writes, WriteBytes, Fsyncs, DirFsyncs int64
	// Cuts is the number of power cuts; DroppedSectors the unsynced sectors they lost,
	// KeptSectors those Reorder let through; DroppedNames the directory changes they undid.
	Cuts, DroppedSectors, KeptSectors, DroppedNames int64
	// CutsWithLoss is the number of cuts that found unsynced state to drop or reorder.
	CutsWithLoss int64
}

// Disk is the durable and the volatile state of a file system; it outlives mounts. Safe for
// concurrent use.
type Disk struct {
	mu      sync.Mutex
	o       Options
	nodes   map[uint64]*node
	nextIno uint64
	frozen  bool
	armed   int           // >0: the power goes at the armed-th next mutating operation
	cutNow  chan struct{} // closed when an armed cut happened
	used    int64
	stats   Stats
}

type node struct {
	ino  uint64
	mode uint32 // including the S_IFDIR / S_IFREG bits
	uid  uint32
	gid  uint32
	mtime,
	ctime time.Time

	// Regular files: durable blocks, and the blocks written since the last sync (a nil slice
	// is a block of zeros: a truncate cut it). size is the current length, dsize the durable.
	dur, pend   map[int64][]byte
	size, dsize int64

	// Directories: current and durable entries.
	kids, dkids map[string]uint64
}

func (n *node) isDir() bool { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }

// NewDisk returns an empty disk whose root directory exists durably.
func NewDisk(o Options) *Disk {
	d := &Disk{o: o, nodes: map[uint64]*node{}, nextIno: 2}
	now := time.Now()
	d.nodes[1] = &node{ino: 1, mode: syscall.S_IFDIR | 0o750, mtime: now, ctime: now,
		kids: map[string]uint64{}, dkids: map[string]uint64{}}
	return d
}

// Stats returns the counters.
func (d *Disk) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// SetCapacity changes Options.Capacity (0: unlimited): the disk fills up or gets room again.
func (d *Disk) SetCapacity(c int64) {
	d.mu.Lock()
	d.o.Capacity = c
	d.mu.Unlock()
}

// Used is the bytes of file content currently allocated (whole blocks, synced or not; holes
// are free, and an unlinked file keeps its blocks until the next cut).
func (d *Disk) Used() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used
}

// freeze makes every later mutating operation fail with EIO until the cut: the power is off.
func (d *Disk) freeze() {
	d.mu.Lock()
	d.frozen = true
	d.mu.Unlock()
}

// arm makes the power go at the k-th next mutating operation (write, truncate, fsync, create,
// rename, unlink): that operation fails with EIO and so does every mutation after it. It returns a
// channel closed when that happened.
func (d *Disk) arm(k int) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed, d.cutNow = k, make(chan struct{})
	return d.cutNow
}

// mutate is called, with the lock held, by each mutating operation: false means the power
// went now (or earlier) and the operation must fail.
func (d *Disk) mutate() bool {
	if d.frozen {
		return false
	}
	if d.armed > 0 {
		d.armed--
		if d.armed == 0 {
			d.frozen = true
			close(d.cutNow)
			return false
		}
	}
	return true
}

// Cut throws away what was not synced, as a power cut would, and powers the disk on again.
// The disk must not be mounted (Mount.PowerCut does it in the right order).
func (d *Disk) Cut(mode Mode, rng *rand.Rand) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Cuts++
	before := d.stats.DroppedSectors + d.stats.KeptSectors + d.stats.DroppedNames
	defer func() {
		if d.stats.DroppedSectors+d.stats.KeptSectors+d.stats.DroppedNames > before {
			d.stats.CutsWithLoss++
		}
	}()
	for _, n := range d.nodes {
		if n.isDir() {
			if !sameKids(n.kids, n.dkids) {
				d.stats.DroppedNames += int64(diffKids(n.kids, n.dkids))
			}
			n.kids = cloneKids(n.dkids)
			continue
		}
		for b, cur := range n.pend {
			if mode != Reorder {
				d.stats.DroppedSectors += BlockSize / SectorSize
				continue
			}
			old := n.dur[b]
			merged := make([]byte, BlockSize)
			copy(merged, old)
			for s := 0; s < BlockSize; s += SectorSize {
				if rng.IntN(2) == 0 {
					d.stats.DroppedSectors++
					continue
				}
				d.stats.KeptSectors++
				if cur == nil {
					clear(merged[s : s+SectorSize])
				} else {
					copy(merged[s:s+SectorSize], cur[s:s+SectorSize])
				}
			}
			n.dur[b] = merged
		}
		n.pend = map[int64][]byte{}
		n.size = n.dsize
		n.trimDurable()
	}
	// Nodes no durable name reaches are gone.
	reach := map[uint64]bool{}
	var walk func(ino uint64)
	walk = func(ino uint64) {
		if reach[ino] {
			return
		}
		reach[ino] = true
		if n := d.nodes[ino]; n != nil && n.isDir() {
			for _, k := range n.kids {
				walk(k)
			}
		}
	}
	walk(1)
	d.used = 0
	for ino, n := range d.nodes {
		if !reach[ino] {
			delete(d.nodes, ino)
			continue
		}
		d.used += n.allocated()
	}
	d.frozen, d.armed = false, 0
}

// trimDurable drops durable blocks past the durable length and zeroes the tail of the last.
func (n *node) trimDurable() {
	for b, blk := range n.dur {
		start := b * BlockSize
		switch {
		case start >= n.dsize:
			delete(n.dur, b)
		case start+BlockSize > n.dsize && blk != nil:
			clear(blk[n.dsize-start:])
		}
	}
}

func sameKids(a, b map[string]uint64) bool { return diffKids(a, b) == 0 }

func diffKids(a, b map[string]uint64) int {
	n := 0
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			n++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			n++
		}
	}
	return n
}

func cloneKids(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// block returns the current content of block b (nil: zeros).
func (n *node) block(b int64) []byte {
	if blk, ok := n.pend[b]; ok {
		return blk
	}
	return n.dur[b]
}

func (n *node) read(off int64, size int) []byte {
	if off >= n.size {
		return nil
	}
	end := min(off+int64(size), n.size)
	out := make([]byte, end-off)
	for p := off; p < end; {
		b := p / BlockSize
		in := p - b*BlockSize
		k := min(int64(BlockSize)-in, end-p)
		if blk := n.block(b); blk != nil {
			copy(out[p-off:p-off+k], blk[in:in+k])
		}
		p += k
	}
	return out
}

// writable returns a pending copy of block b to modify.
func (n *node) writable(b int64) []byte {
	if blk, ok := n.pend[b]; ok && blk != nil {
		return blk
	}
	blk := make([]byte, BlockSize)
	if _, ok := n.pend[b]; !ok {
		copy(blk, n.dur[b])
	}
	n.pend[b] = blk
	return blk
}

func (n *node) write(off int64, data []byte) {
	for p := int64(0); p < int64(len(data)); {
		at := off + p
		b := at / BlockSize
		in := at - b*BlockSize
		k := min(int64(BlockSize)-in, int64(len(data))-p)
		copy(n.writable(b)[in:in+k], data[p:p+k])
		p += k
	}
	if end := off + int64(len(data)); end > n.size {
		n.size = end
	}
}

// allocated is the bytes of the blocks that hold data in the current view.
func (n *node) allocated() int64 {
	var c int64
	for b, blk := range n.dur {
		if _, ok := n.pend[b]; !ok && blk != nil {
			c++
		}
	}
	for _, blk := range n.pend {
		if blk != nil {
			c++
		}
	}
	return c * BlockSize
}

// newBlocks is the bytes a write of length k at off allocates.
func (n *node) newBlocks(off, k int64) int64 {
	var c int64
	if k <= 0 {
		return 0
	}
	for b := off / BlockSize; b <= (off+k-1)/BlockSize; b++ {
		if n.block(b) == nil {
			c++
		}
	}
	return c * BlockSize
}

// truncate sets the length and returns the bytes it freed.
func (n *node) truncate(size int64) int64 {
	before := n.allocated()
	if size < n.size {
		// Blocks past the new end become zeros (pending), the last one is cut.
		for b := range n.dur {
			if b*BlockSize >= size {
				n.pend[b] = nil
			}
		}
		for b := range n.pend {
			if b*BlockSize >= size {
				n.pend[b] = nil
			}
		}
		if in := size % BlockSize; in != 0 && n.block(size/BlockSize) != nil {
			clear(n.writable(size / BlockSize)[in:])
		}
	}
	n.size = size
	return before - n.allocated()
}

func (n *node) sync() {
	for b, blk := range n.pend {
		if blk == nil {
			delete(n.dur, b)
		} else {
			n.dur[b] = blk
		}
	}
	n.pend = map[int64][]byte{}
	n.dsize = n.size
}

func (n *node) names() []string {
	out := make([]string, 0, len(n.kids))
	for k := range n.kids {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
