package powercut

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Mount is a Disk mounted at a directory.
type Mount struct {
	Dir  string
	Disk *Disk
	srv  *fuse.Server
}

// Supported reports why this machine cannot mount the file system, or nil: it needs root and
// /dev/fuse.
func Supported() error {
	if os.Geteuid() != 0 {
		return errors.New("powercut: needs root to mount FUSE with mount(2)")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("powercut: /dev/fuse: %w", err)
	}
	return f.Close()
}

// MountDisk mounts d at dir (which must exist and be empty).
func MountDisk(dir string, d *Disk) (*Mount, error) {
	m := &Mount{Dir: dir, Disk: d}
	if err := m.mount(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Mount) mount() error {
	srv, err := fuse.NewServer(&rawFS{RawFileSystem: fuse.NewDefaultRawFileSystem(), d: m.Disk}, m.Dir, &fuse.MountOptions{
		FsName:            "powercut",
		Name:              "powercut",
		DirectMountStrict: true,
		DisableXAttrs:     true,
		MaxWrite:          1 << 20,
		// No EnableLocks: the kernel keeps flock locally (bbolt's lock). No direct_io: the
		// page cache and mmap behave as on a local disk.
	})
	if err != nil {
		return fmt.Errorf("mount powercut fs at %s: %w", m.Dir, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		srv.Unmount()
		return fmt.Errorf("mount powercut fs at %s: %w", m.Dir, err)
	}
	m.srv = srv
	return nil
}

// Unmount unmounts the file system, keeping the disk's state as it is (a clean unmount does
// not sync: only what was synced is durable).
func (m *Mount) Unmount() error {
	if m.srv == nil {
		return nil
	}
	if err := m.srv.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w (is a process still using it?)", m.Dir, err)
	}
	m.srv = nil
	return nil
}

// PowerCut cuts the power: the disk stops (every write, truncate, sync and directory change
// fails with EIO from now on; reads still see the current view), kill
// is called to stop the processes using it (SIGKILL and wait), the file system is unmounted
// (the kernel's page cache of it goes), the disk drops what was not synced (mode) and is
// mounted again.
func (m *Mount) PowerCut(mode Mode, rng *rand.Rand, kill func()) error {
	m.Disk.freeze()
	kill()
	if err := m.Unmount(); err != nil {
		return err
	}
	m.Disk.Cut(mode, rng)
	return m.mount()
}

// PowerCutAfter arms the disk so the power goes at the k-th next mutating operation, in the
// middle of whatever the process is doing (between a commit's writes and its fsync, say); if
// that has not happened within wait, the power goes then. The rest is PowerCut. It reports
// whether the armed operation was reached.
func (m *Mount) PowerCutAfter(k int, wait time.Duration, mode Mode, rng *rand.Rand, kill func()) (bool, error) {
	hit := false
	select {
	case <-m.Disk.arm(k):
		hit = true
	case <-time.After(wait):
	}
	return hit, m.PowerCut(mode, rng, kill)
}

// rawFS serves one mount of a Disk. Node ids are the disk's inode numbers; nodes live until a
// cut makes them unreachable, so Forget has nothing to do.
type rawFS struct {
	fuse.RawFileSystem
	d *Disk
}

func (r *rawFS) String() string { return "powercut" }

// op takes the disk's lock and resolves the node of an operation. A stopped disk still
// serves reads of the current view: the process would have had those pages in its page cache
// at the instant of the cut, and a read changes nothing durable; without it, a process in
// the moment between the cut and its SIGKILL faults on its mmap (SIGBUS), which no real power
// cut causes. Every mutating operation checks mutate first.
func (r *rawFS) op(ino uint64) (*node, fuse.Status) {
	r.d.mu.Lock()
	n := r.d.nodes[ino]
	if n == nil {
		return nil, fuse.ENOENT
	}
	return n, fuse.OK
}

func (r *rawFS) done() { r.d.mu.Unlock() }

func (r *rawFS) attr(n *node, a *fuse.Attr) {
	a.Ino = n.ino
	a.Mode = n.mode
	a.Nlink = 1
	if n.isDir() {
		a.Nlink = 2
		a.Size = BlockSize
	} else {
		a.Size = uint64(n.size)
		a.Blocks = uint64(n.allocated() / 512)
	}
	a.Blksize = BlockSize
	a.Uid, a.Gid = n.uid, n.gid
	for _, t := range []struct {
		s  *uint64
		ns *uint32
	}{{&a.Atime, &a.Atimensec}, {&a.Mtime, &a.Mtimensec}} {
		*t.s, *t.ns = uint64(n.mtime.Unix()), uint32(n.mtime.Nanosecond())
	}
	a.Ctime, a.Ctimensec = uint64(n.ctime.Unix()), uint32(n.ctime.Nanosecond())
}

func (r *rawFS) entry(n *node, out *fuse.EntryOut) {
	out.NodeId = n.ino
	out.Generation = 1
	// Zero timeouts: the kernel asks again each time, so it never holds a stale view.
	out.SetEntryTimeout(0)
	out.SetAttrTimeout(0)
	r.attr(n, &out.Attr)
}

func (r *rawFS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	dir, st := r.op(h.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if !dir.isDir() {
		return fuse.ENOTDIR
	}
	ino, ok := dir.kids[name]
	if !ok {
		return fuse.ENOENT
	}
	r.entry(r.d.nodes[ino], out)
	return fuse.OK
}

func (r *rawFS) Forget(uint64, uint64) {}

func (r *rawFS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	n, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	out.SetTimeout(0)
	r.attr(n, &out.Attr)
	return fuse.OK
}

func (r *rawFS) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	n, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if !r.d.mutate() {
		return fuse.EIO
	}
	now := time.Now()
	if in.Valid&fuse.FATTR_SIZE != 0 {
		if n.isDir() {
			return fuse.Status(syscall.EISDIR)
		}
		r.d.used -= n.truncate(int64(in.Size))
		n.mtime = now
	}
	if in.Valid&fuse.FATTR_MODE != 0 {
		n.mode = n.mode&syscall.S_IFMT | in.Mode&^uint32(syscall.S_IFMT)
	}
	if in.Valid&fuse.FATTR_UID != 0 {
		n.uid = in.Uid
	}
	if in.Valid&fuse.FATTR_GID != 0 {
		n.gid = in.Gid
	}
	if in.Valid&fuse.FATTR_MTIME != 0 {
		n.mtime = time.Unix(int64(in.Mtime), int64(in.Mtimensec))
	}
	if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		n.mtime = now
	}
	n.ctime = now
	out.SetTimeout(0)
	r.attr(n, &out.Attr)
	return fuse.OK
}

// newNode links a new node under dir (a pending entry: durable at the directory's fsync).
func (r *rawFS) newNode(dir *node, name string, mode uint32, c fuse.Caller) (*node, fuse.Status) {
	if !dir.isDir() {
		return nil, fuse.ENOTDIR
	}
	if _, ok := dir.kids[name]; ok {
		return nil, fuse.Status(syscall.EEXIST)
	}
	now := time.Now()
	n := &node{ino: r.d.nextIno, mode: mode, uid: c.Uid, gid: c.Gid, mtime: now, ctime: now}
	r.d.nextIno++
	if n.isDir() {
		n.kids, n.dkids = map[string]uint64{}, map[string]uint64{}
	} else {
		n.dur, n.pend = map[int64][]byte{}, map[int64][]byte{}
	}
	r.d.nodes[n.ino] = n
	dir.kids[name] = n.ino
	dir.mtime = now
	return n, fuse.OK
}

func (r *rawFS) Create(_ <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	dir, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if !r.d.mutate() {
		return fuse.EIO
	}
	if ino, ok := dir.kids[name]; ok {
		if in.Flags&syscall.O_EXCL != 0 {
			return fuse.Status(syscall.EEXIST)
		}
		n := r.d.nodes[ino]
		if in.Flags&syscall.O_TRUNC != 0 && !n.isDir() {
			r.d.used -= n.truncate(0)
		}
		r.entry(n, &out.EntryOut)
		return fuse.OK
	}
	n, st := r.newNode(dir, name, syscall.S_IFREG|(in.Mode&^in.Umask&0o7777), in.Caller)
	if !st.Ok() {
		return st
	}
	r.entry(n, &out.EntryOut)
	return fuse.OK
}

func (r *rawFS) Mknod(_ <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	dir, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if !r.d.mutate() {
		return fuse.EIO
	}
	if in.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fuse.ENOSYS
	}
	n, st := r.newNode(dir, name, syscall.S_IFREG|(in.Mode&^in.Umask&0o7777), in.Caller)
	if !st.Ok() {
		return st
	}
	r.entry(n, out)
	return fuse.OK
}

func (r *rawFS) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	dir, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if !r.d.mutate() {
		return fuse.EIO
	}
	n, st := r.newNode(dir, name, syscall.S_IFDIR|(in.Mode&^in.Umask&0o7777), in.Caller)
	if !st.Ok() {
		return st
	}
	r.entry(n, out)
	return fuse.OK
}

func (r *rawFS) remove(h *fuse.InHeader, name string, wantDir bool) fuse.Status {
	dir, st := r.op(h.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if !r.d.mutate() {
		return fuse.EIO
	}
	ino, ok := dir.kids[name]
	if !ok {
		return fuse.ENOENT
	}
	n := r.d.nodes[ino]
	switch {
	case wantDir && !n.isDir():
		return fuse.ENOTDIR
	case !wantDir && n.isDir():
		return fuse.Status(syscall.EISDIR)
	case wantDir && len(n.kids) > 0:
		return fuse.Status(syscall.ENOTEMPTY)
	}
	delete(dir.kids, name)
	dir.mtime = time.Now()
	return fuse.OK
}

func (r *rawFS) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return r.remove(h, name, false)
}

func (r *rawFS) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return r.remove(h, name, true)
}

func (r *rawFS) Rename(_ <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	from, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if !r.d.mutate() {
		return fuse.EIO
	}
	to := r.d.nodes[in.Newdir]
	if to == nil || !to.isDir() {
		return fuse.ENOENT
	}
	ino, ok := from.kids[oldName]
	if !ok {
		return fuse.ENOENT
	}
	const noReplace, exchange = 1, 2
	if in.Flags&exchange != 0 {
		return fuse.EINVAL
	}
	if old, ok := to.kids[newName]; ok {
		if in.Flags&noReplace != 0 {
			return fuse.Status(syscall.EEXIST)
		}
		if o := r.d.nodes[old]; o.isDir() && len(o.kids) > 0 {
			return fuse.Status(syscall.ENOTEMPTY)
		}
	}
	delete(from.kids, oldName)
	to.kids[newName] = ino
	from.mtime, to.mtime = time.Now(), time.Now()
	return fuse.OK
}

func (r *rawFS) Access(_ <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	_, st := r.op(in.NodeId)
	r.done()
	return st
}

func (r *rawFS) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	n, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if n.isDir() {
		return fuse.Status(syscall.EISDIR)
	}
	if in.Flags&syscall.O_TRUNC != 0 {
		if !r.d.mutate() {
			return fuse.EIO
		}
		r.d.used -= n.truncate(0)
	}
	out.OpenFlags = 0 // cached I/O: page cache and mmap as on a local disk
	return fuse.OK
}

func (r *rawFS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	n, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return nil, st
	}
	return fuse.ReadResultData(n.read(int64(in.Offset), int(in.Size))), fuse.OK
}

func (r *rawFS) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	n, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return 0, st
	}
	if !r.d.mutate() {
		return 0, fuse.EIO
	}
	need := n.newBlocks(int64(in.Offset), int64(len(data)))
	if c := r.d.o.Capacity; c > 0 && r.d.used+need > c {
		return 0, fuse.Status(syscall.ENOSPC)
	}
	r.d.used += need
	n.write(int64(in.Offset), data)
	n.mtime = time.Now()
	r.d.stats.Writes++
	r.d.stats.WriteBytes += int64(len(data))
	return uint32(len(data)), fuse.OK
}

func (r *rawFS) Fallocate(_ <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	return fuse.ENOSYS // bbolt grows files with ftruncate
}

func (r *rawFS) Flush(_ <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	_, st := r.op(in.NodeId)
	r.done()
	return st
}

func (r *rawFS) Release(_ <-chan struct{}, _ *fuse.ReleaseIn) {}

func (r *rawFS) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return r.fsync(in.NodeId, &r.d.stats.Fsyncs, false)
}

// fsync makes node id's pending state durable: a directory's entries, a file's content. It
// counts into count; dirOnly (FsyncDir) refuses a node that is not a directory.
func (r *rawFS) fsync(id uint64, count *int64, dirOnly bool) fuse.Status {
	n, st := r.op(id)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if !r.d.mutate() {
		return fuse.EIO
	}
	*count++
	if r.d.o.IgnoreFsync {
		return fuse.OK
	}
	switch {
	case n.isDir():
		n.dkids = cloneKids(n.kids)
	case dirOnly:
		return fuse.ENOTDIR
	default:
		n.sync()
	}
	return fuse.OK
}

func (r *rawFS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	n, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	if !n.isDir() {
		return fuse.ENOTDIR
	}
	return fuse.OK
}

func (r *rawFS) readDir(in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	dir, st := r.op(in.NodeId)
	defer r.done()
	if !st.Ok() {
		return st
	}
	names := append([]string{".", ".."}, dir.names()...)
	for i := int(in.Offset); i < len(names); i++ {
		e := fuse.DirEntry{Name: names[i], Off: uint64(i + 1), Mode: syscall.S_IFDIR, Ino: dir.ino}
		var kid *node
		if i >= 2 {
			kid = r.d.nodes[dir.kids[names[i]]]
			e.Mode, e.Ino = kid.mode, kid.ino
		}
		if !plus {
			if !out.AddDirEntry(e) {
				break
			}
			continue
		}
		eo := out.AddDirLookupEntry(e)
		if eo == nil {
			break
		}
		if kid != nil {
			r.entry(kid, eo)
		}
	}
	return fuse.OK
}

func (r *rawFS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.readDir(in, out, false)
}

func (r *rawFS) ReadDirPlus(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.readDir(in, out, true)
}

func (r *rawFS) ReleaseDir(*fuse.ReleaseIn) {}

func (r *rawFS) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return r.fsync(in.NodeId, &r.d.stats.DirFsyncs, true)
}

func (r *rawFS) StatFs(_ <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	total := r.d.o.Capacity
	if total <= 0 {
		total = 1 << 40
	}
	free := max(total-r.d.used, 0)
	out.Bsize, out.Frsize, out.NameLen = BlockSize, BlockSize, 255
	out.Blocks, out.Bfree, out.Bavail = uint64(total/BlockSize), uint64(free/BlockSize), uint64(free/BlockSize)
	out.Files, out.Ffree = 1<<20, 1<<20-uint64(len(r.d.nodes))
	return fuse.OK
}
