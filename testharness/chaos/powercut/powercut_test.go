package powercut

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// mountT mounts a fresh disk in a temp dir, or skips where FUSE cannot be mounted (never
// under CI=true: there it fails).
func mountT(t *testing.T, o Options) *Mount {
	t.Helper()
	if err := Supported(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	m, err := MountDisk(t.TempDir(), NewDisk(o))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return m
}

func cut(t *testing.T, m *Mount, mode Mode, seed uint64) {
	t.Helper()
	if err := m.PowerCut(mode, rand.New(rand.NewPCG(seed, seed)), func() {}); err != nil {
		t.Fatal(err)
	}
}

func writeSync(t *testing.T, path string, b []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func content(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// TestCutDropsUnsynced: the POSIX rules, case by case. Each row prepares files, cuts the power
// and checks what is left.
func TestCutDropsUnsynced(t *testing.T) {
	m := mountT(t, Options{})
	dir := m.Dir
	p := func(n string) string { return filepath.Join(dir, n) }
	// Durable baseline: "a" synced, its name synced.
	writeSync(t, p("a"), []byte("durable"), true)
	writeSync(t, p("old"), []byte("old content"), true)
	syncDir(t, dir)

	// After the baseline, nothing below is made durable except where a row syncs.
	f, _ := os.OpenFile(p("a"), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte(" and more")) // appended, never synced
	f.Close()
	writeSync(t, p("b"), []byte("synced data, name not synced"), true)
	writeSync(t, p("c"), []byte("nothing synced"), false)
	writeSync(t, p("old.tmp"), []byte("new content"), true)
	if err := os.Rename(p("old.tmp"), p("old")); err != nil { // rename not synced
		t.Fatal(err)
	}
	if err := os.Mkdir(p("sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if got := content(p("a")); got != "durable and more" {
		t.Fatalf("before the cut a = %q", got)
	}
	cut(t, m, DropAll, 1)

	for _, c := range []struct{ name, want string }{
		{"a", "durable"},
		{"b", "<open " + p("b") + ": no such file or directory>"},
		{"c", "<open " + p("c") + ": no such file or directory>"},
		{"old", "old content"},
		{"old.tmp", "<open " + p("old.tmp") + ": no such file or directory>"},
	} {
		if got := content(p(c.name)); got != c.want {
			t.Errorf("after the cut %s = %q, want %q", c.name, got, c.want)
		}
	}
	if _, err := os.Stat(p("sub")); !os.IsNotExist(err) {
		t.Errorf("unsynced mkdir survived the cut: %v", err)
	}

	// The same steps with the directory synced survive.
	writeSync(t, p("old.tmp"), []byte("new content"), true)
	if err := os.Rename(p("old.tmp"), p("old")); err != nil {
		t.Fatal(err)
	}
	syncDir(t, dir)
	if err := os.Remove(p("a")); err != nil { // unlink, not synced
		t.Fatal(err)
	}
	cut(t, m, DropAll, 2)
	if got := content(p("old")); got != "new content" {
		t.Errorf("synced rename: old = %q", got)
	}
	if got := content(p("a")); got != "durable" {
		t.Errorf("unsynced unlink: a = %q, want it back", got)
	}
	if st := m.Disk.Stats(); st.Cuts != 2 || st.DroppedSectors == 0 || st.DroppedNames == 0 {
		t.Errorf("stats %+v: want 2 cuts that dropped sectors and names", st)
	}
}

// TestCutTruncate: an unsynced truncate and an unsynced extension both revert to the synced
// length and content.
func TestCutTruncate(t *testing.T) {
	m := mountT(t, Options{})
	p := filepath.Join(m.Dir, "f")
	want := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16000 bytes: 4 blocks, the last partial
	writeSync(t, p, want, true)
	syncDir(t, m.Dir)
	if err := os.Truncate(p, 5000); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 1<<20); err != nil { // a hole after byte 5000
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); len(b) != 1<<20 || !bytes.Equal(b[:5000], want[:5000]) || bytes.ContainsFunc(b[5000:], func(r rune) bool { return r != 0 }) {
		t.Fatalf("before the cut: truncate then extend reads wrong (len %d)", len(b))
	}
	cut(t, m, DropAll, 3)
	if b, _ := os.ReadFile(p); !bytes.Equal(b, want) {
		t.Fatalf("after the cut f has %d bytes, want the synced %d", len(b), len(want))
	}
}

// TestCutReorder: in Reorder mode some unsynced sectors survive and some do not; the length
// stays the synced one.
func TestCutReorder(t *testing.T) {
	m := mountT(t, Options{})
	p := filepath.Join(m.Dir, "f")
	old := bytes.Repeat([]byte{'o'}, 64*BlockSize)
	writeSync(t, p, old, true)
	syncDir(t, m.Dir)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(bytes.Repeat([]byte{'n'}, 64*BlockSize), 0)
	f.WriteAt([]byte("past the end"), int64(len(old)))
	f.Close()
	cut(t, m, Reorder, 4)
	b, _ := os.ReadFile(p)
	if len(b) != len(old) {
		t.Fatalf("length after the cut %d, want the synced %d", len(b), len(old))
	}
	var kept, lost int
	for s := 0; s < len(b); s += SectorSize {
		switch sec := b[s : s+SectorSize]; {
		case bytes.Count(sec, []byte{'n'}) == SectorSize:
			kept++
		case bytes.Count(sec, []byte{'o'}) == SectorSize:
			lost++
		default:
			t.Fatalf("sector at %d is torn: a sector survives whole or not at all", s)
		}
	}
	if kept == 0 || lost == 0 {
		t.Fatalf("reorder kept %d and lost %d of %d unsynced sectors: want some of each", kept, lost, kept+lost)
	}
}

// TestMmapCoherent: what bbolt relies on: a pwrite is visible at once through a shared
// read-only mmap of the same file, and so is a length grown with ftruncate. The mmap is done in
// a child process: a page fault on a mapping this process serves itself can deadlock the Go
// runtime (a stop-the-world waits for the faulting thread, which waits for the server).
func TestMmapCoherent(t *testing.T) {
	m := mountT(t, Options{})
	if out, err := helper("mmap", filepath.Join(m.Dir, "f"), nil).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

func mmapHelper(p string) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(4 * BlockSize); err != nil {
		return err
	}
	mm, err := syscall.Mmap(int(f.Fd()), 0, 8*BlockSize, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap on the powercut fs: %w", err)
	}
	defer syscall.Munmap(mm)
	if _, err := f.WriteAt([]byte("hello"), BlockSize+10); err != nil {
		return err
	}
	if got := string(mm[BlockSize+10 : BlockSize+15]); got != "hello" {
		return fmt.Errorf("mmap reads %q after pwrite, want hello", got)
	}
	if err := f.Truncate(8 * BlockSize); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte("grown"), 6*BlockSize); err != nil {
		return err
	}
	if got := string(mm[6*BlockSize : 6*BlockSize+5]); got != "grown" {
		return fmt.Errorf("mmap reads %q in the grown part, want grown", got)
	}
	return nil
}

// helper returns the command that runs this test binary as a helper process.
func helper(mode, path string, env []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(append(os.Environ(), "POWERCUT_HELPER="+mode, "POWERCUT_PATH="+path), env...)
	return cmd
}

// TestCapacity: a write past the capacity fails with ENOSPC; room returns when it is raised.
func TestCapacity(t *testing.T) {
	m := mountT(t, Options{Capacity: 16 * BlockSize})
	p := filepath.Join(m.Dir, "f")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 16*BlockSize)); err != nil {
		t.Fatalf("a write that fits: %v", err)
	}
	if _, err := f.Write([]byte("x")); err == nil || !bytes.Contains([]byte(err.Error()), []byte("no space")) {
		t.Fatalf("a write past the capacity: %v, want ENOSPC", err)
	}
	m.Disk.SetCapacity(32 * BlockSize)
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatalf("after room returned: %v", err)
	}
}

// TestBoltPowerCut: a real bbolt writer in a child process commits one key per transaction and
// reports each commit on stdout once Update returned. The power is cut at a random moment, many
// times; every reported commit must be in the file afterwards. The same run with bbolt's NoSync
// (the fsync skipped) must lose reported commits: the file system really drops what was not
// synced, so the first half can fail.
func TestBoltPowerCut(t *testing.T) {
	cycles := 8
	if os.Getenv("LANEBRIDGE_CHAOS") == "long" {
		cycles = 100
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LANEBRIDGE_POWERCUT_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d; replay: LANEBRIDGE_POWERCUT_SEED=%d go test -run 'TestBoltPowerCut' ./testharness/chaos/powercut/", seed, seed)
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("nosync=%v", noSync), func(t *testing.T) {
			m := mountT(t, Options{})
			rng := rand.New(rand.NewPCG(seed, 7))
			db := filepath.Join(m.Dir, "bolt.db")
			var lostTotal, acked uint64 // acked: the last commit reported, in the last cycle
			for c := 0; c < cycles; c++ {
				mode := Mode(rng.IntN(2))
				if noSync {
					// A NoSync file can be left inconsistent by a reordered cut, and bbolt
					// may fault reading it in this process: drop everything instead.
					mode = DropAll
				}
				reported, after := boltCycle(t, m, db, noSync, mode, rng)
				acked = reported
				if after < reported {
					lostTotal += reported - after
					if !noSync {
						t.Fatalf("cycle %d (%v): %d commits reported, %d in the file after the cut: acknowledged writes lost", c, mode, reported, after)
					}
				}
			}
			t.Logf("%d cycles, last commit reported %d, %d reported commits lost; disk %+v", cycles, acked, lostTotal, m.Disk.Stats())
			if noSync && lostTotal == 0 {
				t.Fatalf("bbolt with NoSync lost nothing across %d power cuts: the file system keeps unsynced writes", cycles)
			}
		})
	}
}

// boltCycle starts the writer, cuts the power after a random delay and returns the last key
// it reported and the last key in the file afterwards (0 when the file is gone or unreadable).
func boltCycle(t *testing.T, m *Mount, db string, noSync bool, mode Mode, rng *rand.Rand) (reported, after uint64) {
	t.Helper()
	cmd := helper("bolt-write", db, []string{fmt.Sprintf("POWERCUT_BOLT_NOSYNC=%v", noSync)})
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan uint64, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				lines <- v
			}
		}
		close(lines)
	}()
	// Wait for the first commit, let it run up to 100 ms, then cut at one of the next 20 writes or syncs.
	var last uint64
	select {
	case v, ok := <-lines:
		if !ok {
			cmd.Wait()
			t.Fatalf("bolt writer exited early: %s", stderr.String())
		}
		last = v
	case <-time.After(20 * time.Second):
		t.Fatal("bolt writer reported nothing in 20s")
	}
	time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
	_, err = m.PowerCutAfter(1+rng.IntN(20), time.Second, mode, rng, func() {
		cmd.Process.Kill()
		for v := range lines {
			last = max(last, v)
		}
		cmd.Wait()
	})
	if err != nil {
		t.Fatal(err)
	}
	return last, lastKey(t, db)
}

// lastKey reads the last key of the file in a helper process (bbolt reads through mmap; see
// TestMmapCoherent).
func lastKey(t *testing.T, path string) uint64 {
	t.Helper()
	out, err := helper("bolt-last", path, nil).Output()
	if err != nil {
		t.Fatalf("read %s after the cut: %v", path, err)
	}
	k, err := strconv.ParseUint(string(bytes.TrimSpace(out)), 10, 64)
	if err != nil {
		t.Fatalf("read %s after the cut: %q", path, out)
	}
	return k
}

func boltLast(path string) uint64 {
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bbolt refuses the file after the cut: %v\n", err)
		return 0
	}
	defer b.Close()
	var k uint64
	b.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket([]byte("k")); bk != nil {
			if key, _ := bk.Cursor().Last(); key != nil {
				k = binary.BigEndian.Uint64(key)
			}
		}
		return nil
	})
	return k
}

// TestHelperProcess is the child process of the tests above (it does nothing in a normal
// run): POWERCUT_HELPER says what it does to POWERCUT_PATH.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("POWERCUT_PATH")
	switch os.Getenv("POWERCUT_HELPER") {
	case "":
		t.Skip("helper process")
	case "mmap":
		if err := mmapHelper(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	case "bolt-last":
		fmt.Println(boltLast(path))
	case "bolt-write":
		boltWriter(path)
	}
	os.Exit(0)
}

// boltWriter opens (or creates, then syncs the directory) the bbolt file and commits keys
// after the last one, printing each once its commit returned.
func boltWriter(path string) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	d, err := os.Open(filepath.Dir(path))
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	db.NoSync = os.Getenv("POWERCUT_BOLT_NOSYNC") == "true"
	var next uint64
	db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket([]byte("k")); bk != nil {
			if key, _ := bk.Cursor().Last(); key != nil {
				next = binary.BigEndian.Uint64(key)
			}
		}
		return nil
	})
	val := bytes.Repeat([]byte("v"), 600) // a few records a page: the tree grows and splits
	for {
		next++
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("k"))
			if err != nil {
				return err
			}
			var key [8]byte
			binary.BigEndian.PutUint64(key[:], next)
			return bk.Put(key[:], val)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Println(next)
	}
}
