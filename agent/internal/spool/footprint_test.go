package spool

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	bolt "go.etcd.io/bbolt"
)

// Footprint benchmarks (issue 11, target 5). Spools are generated with direct bbolt writes in
// big transactions, in the spool's own format, so a 1M-record spool takes seconds, not the
// minutes that a million Commits would:
//
//	LANEBRIDGE_BENCH_SPOOL_RECORDS=1000000 go test -run '^$' -bench 'Spool' -benchtime 3x ./agent/internal/spool/

// benchRecords is the spool size of the footprint benchmarks (default 10,000).
func benchRecords(tb testing.TB) int {
	if n, err := strconv.Atoi(os.Getenv("LANEBRIDGE_BENCH_SPOOL_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// bigSale is a ~600-byte record, the size the measurements use.
func bigSale(i int) protocol.Record {
	r := sale("T"+strconv.Itoa(i%4+1), i)
	r.Lines = append(r.Lines,
		protocol.Line{SKU: "0000000" + strconv.Itoa(i%1000), Description: "whole milk 1 gal " + strings.Repeat("x", 40), Quantity: "2", UnitPrice: 349, Amount: 698},
		protocol.Line{SKU: "0000042", Description: "bread, sliced white", Quantity: "1", UnitPrice: 250, Amount: 250})
	r.Taxes = []protocol.Tax{{Code: "ST", Rate: "8.25", Taxable: 1034, Amount: 85}}
	return r
}

// genSpool writes a spool of n records at path, the first acked of them acknowledged,
// captured at capturedAt, and returns the bytes of the stored record values.
func genSpool(tb testing.TB, path string, n, acked int, capturedAt time.Time) (recordBytes int64, epoch string) {
	tb.Helper()
	s, err := Open(path, Options{Store: testStore})
	if err != nil {
		tb.Fatal(err)
	}
	epoch = s.Epoch()
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	const chunk = 50000
	for from := 1; from <= n; from += chunk {
		err := db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			b.FillPercent = appendFillPercent
			for i := from; i < from+chunk && i <= n; i++ {
				r := bigSale(i)
				r.Store, r.Epoch, r.Seq, r.CapturedAt = testStore, epoch, uint64(i), capturedAt
				r.Seal()
				v, err := json.Marshal(&r)
				if err != nil {
					return err
				}
				recordBytes += int64(len(v))
				if err := b.Put(u64(uint64(i)), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if err := m.Put(keyNextSeq, u64(uint64(n+1))); err != nil {
			return err
		}
		if err := m.Put(keyLastAck, u64(uint64(acked))); err != nil {
			return err
		}
		v, _ := capturedAt.MarshalText()
		for t := range 4 {
			if err := tx.Bucket(bucketTerminals).Put([]byte("T"+strconv.Itoa(t+1)), v); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketOffsets).Put([]byte("T1"), []byte("offset"))
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Sync(); err != nil {
		tb.Fatal(err)
	}
	return recordBytes, epoch
}

// BenchmarkSpoolOpen opens a spool of LANEBRIDGE_BENCH_SPOOL_RECORDS records (default 10,000),
// 10,000 of them unacknowledged, against the baseline of a raw bbolt open of the same file
// with one read transaction, in the same run.
func BenchmarkSpoolOpen(b *testing.B) {
	n := benchRecords(b)
	path := filepath.Join(b.TempDir(), "spool.db")
	t0 := time.Now()
	raw, _ := genSpool(b, path, n, max(n-10000, 0), time.Now().Add(-time.Hour))
	b.Logf("generated %d records (%d MiB of record JSON) in %s", n, raw>>20, time.Since(t0).Round(time.Millisecond))
	var open, rawOpen time.Duration
	for b.Loop() {
		t := time.Now()
		s, err := Open(path, Options{Store: testStore})
		if err != nil {
			b.Fatal(err)
		}
		open += time.Since(t)
		if st := s.Stats(); st.LastSeq != uint64(n) || len(st.Alarms) != 0 {
			b.Fatalf("opened %+v", st)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		t = time.Now()
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.View(func(tx *bolt.Tx) error { _ = tx.Bucket(bucketMeta).Get(keyNextSeq); return nil }); err != nil {
			b.Fatal(err)
		}
		rawOpen += time.Since(t)
		_ = db.Close()
	}
	b.StopTimer()
	t := time.Now()
	rep, err := Check(path, Options{})
	if err != nil || rep.Problem != nil || rep.Records != uint64(n) {
		b.Fatalf("Check = %+v, %v", rep, err)
	}
	b.ReportMetric(float64(time.Since(t).Milliseconds()), "ms/full-check")
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/float64(raw), "file/record-bytes")
	}
	k := float64(b.N)
	b.ReportMetric(float64(open.Microseconds())/1000/k, "ms/open")
	b.ReportMetric(float64(rawOpen.Microseconds())/1000/k, "ms/raw-bolt-open")
	b.ReportMetric(float64(open)/float64(rawOpen), "x_raw")
	b.ReportMetric(0, "ns/op")
}

// flipReceipt changes every copy of receipt n's digits in the file (freed pages may hold stale
// copies): only the record hash can catch it.
func flipReceipt(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := []byte(`"receipt":"` + strconv.Itoa(n) + `"`)
	if !bytes.Contains(b, old) {
		t.Fatalf("receipt %d not in the file", n)
	}
	b = bytes.ReplaceAll(b, old, []byte(`"receipt":"`+strconv.Itoa(n+1)+`"`))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenChecksTailCheckChecksAll: on a spool past fullCheckAtOpen, Open checks the
// unacknowledged tail only: damage there is found at Open (the file is moved aside), damage in
// an acknowledged record is not, and Check finds it and names it, changing nothing.
func TestOpenChecksTailCheckChecksAll(t *testing.T) {
	defer func(n uint64, b int64) { fullCheckAtOpen, deepCheckMaxBytes = n, b }(fullCheckAtOpen, deepCheckMaxBytes)
	fullCheckAtOpen, deepCheckMaxBytes = 500, 1
	const n, acked = 3000, 2000
	at := time.Now().Add(-time.Hour)

	t.Run("acknowledged", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "spool.db")
		_, epoch := genSpool(t, path, n, acked, at)
		flipReceipt(t, path, 1234)
		before, _ := os.ReadFile(path)
		rep, err := Check(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(rep.Problem, ErrCorrupt) || !strings.Contains(rep.Problem.Error(), "record 1234") {
			t.Fatalf("Check problem = %v, want record 1234 corrupt", rep.Problem)
		}
		if rep.Epoch != epoch || rep.LastSeq != n || rep.LastAck != acked || rep.FirstSeq != 1 {
			t.Fatalf("Check report %+v", rep)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Fatal("Check changed the file")
		}
		s := openTest(t, path, Options{})
		if st := s.Stats(); st.Epoch != epoch || st.LastSeq != n || len(st.Alarms) != 0 {
			t.Fatalf("Open of a spool with a damaged acknowledged record: %+v (this damage is Check's to find)", st)
		}
	})
	t.Run("unacknowledged", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "spool.db")
		_, epoch := genSpool(t, path, n, acked, at)
		flipReceipt(t, path, 2500)
		s := openTest(t, path, Options{})
		if st := s.Stats(); st.Epoch == epoch || st.LastSeq != 0 || len(st.Alarms) != 1 || !strings.Contains(st.Alarms[0], "record 2500") {
			t.Fatalf("Open of a spool with a damaged unacknowledged record: %+v", st)
		}
		if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 1 {
			t.Fatalf("moved aside: %v", aside)
		}
	})
	t.Run("sound", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "spool.db")
		genSpool(t, path, n, acked, at)
		rep, err := Check(path, Options{})
		if err != nil || rep.Problem != nil || rep.Records != n {
			t.Fatalf("Check of a sound spool = %+v, %v", rep, err)
		}
		s := openTest(t, path, Options{})
		if _, err := Check(path, Options{OpenTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
			t.Fatalf("Check while the spool is open = %v, want ErrLocked", err)
		}
		_ = s.Close()
	})
}

// TestStoredHashOK: the check of a record's stored bytes agrees with decoding and hashing
// again, and a record in another shape (not Go's encoding) falls back to decoding.
func TestStoredHashOK(t *testing.T) {
	r := bigSale(7)
	r.Store, r.Epoch, r.Seq, r.CapturedAt = testStore, "00112233445566778899aabbccddeeff", 7, time.Now()
	r.Seal()
	v, _ := json.Marshal(&r)
	if !storedHashOK(v) || checkRecord(7, v, r.Epoch) != nil {
		t.Fatal("a sound record fails the check")
	}
	if checkRecord(8, v, r.Epoch) == nil || checkRecord(7, v, "ffeeddccbbaa99887766554433221100") == nil {
		t.Fatal("a record under the wrong key or epoch passes")
	}
	for i := range v {
		w := bytes.Clone(v)
		w[i] ^= 0x01
		if checkRecord(7, w, r.Epoch) == nil {
			t.Fatalf("flipping byte %d (%q) passes the check", i, v[i])
		}
	}
	// Reordered members: not the stored shape, decoded instead, and sound.
	var m map[string]any
	_ = json.Unmarshal(v, &m)
	w, _ := json.Marshal(m) // keys sorted
	if storedHashOK(w) || checkRecord(7, w, r.Epoch) != nil {
		t.Fatalf("a reordered sound record: storedHashOK %v, check %v", storedHashOK(w), checkRecord(7, w, r.Epoch))
	}
}

// procStatus returns fields of /proc/self/status in KiB (Linux; empty elsewhere).
func procStatus() map[string]float64 {
	out := map[string]float64{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			n, _ := strconv.ParseFloat(f[0], 64)
			out[k] = n
		}
	}
	return out
}

// BenchmarkSpoolDrain reads a spool of LANEBRIDGE_BENCH_SPOOL_RECORDS unacknowledged records
// the way the forwarder does (ReadRaw windows of 2,048 from LastAck+1, an Ack per window) and
// reports the Go heap at its peak (sampled every 32 windows), the process's anonymous RSS and
// apart from it the spool file mapped in (RssFile), and the file's length.
func BenchmarkSpoolDrain(b *testing.B) {
	n := benchRecords(b)
	path := filepath.Join(b.TempDir(), "spool.db")
	genSpool(b, path, n, 0, time.Now())
	runtime.GC()
	var peak uint64
	var ms runtime.MemStats
	var st map[string]float64
	var took time.Duration
	for b.Loop() {
		t := time.Now()
		s, err := Open(path, Options{Store: testStore})
		if err != nil {
			b.Fatal(err)
		}
		for w := 0; s.LastAck() < uint64(n); w++ {
			raws, err := s.ReadRaw(s.LastAck()+1, 2048)
			if err != nil || len(raws) == 0 {
				b.Fatalf("ReadRaw: %d, %v", len(raws), err)
			}
			if err := s.Ack(s.Epoch(), raws[len(raws)-1].Seq); err != nil {
				b.Fatal(err)
			}
			if w%32 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		took = time.Since(t)
		st = procStatus()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	fi, _ := os.Stat(path)
	b.ReportMetric(float64(n)/took.Seconds(), "rec/s")
	b.ReportMetric(float64(peak)/(1<<20), "heap-peak-MiB")
	b.ReportMetric(st["RssAnon"]/1024, "rss-anon-MiB")
	b.ReportMetric(st["RssFile"]/1024, "rss-file-MiB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSpoolCompact purges 90% of a spool of LANEBRIDGE_BENCH_SPOOL_RECORDS records
// (acknowledged and past retention) and reports the file against the record bytes it holds
// before (as written by commits) and after the compaction Purge runs, and how long it took.
func BenchmarkSpoolCompact(b *testing.B) {
	n := benchRecords(b)
	clock := newTestClock()
	var before, after, held float64
	var took time.Duration
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "spool.db")
		raw, _ := genSpool(b, path, n, n*9/10, clock.Now().Add(-48*time.Hour))
		fi, _ := os.Stat(path)
		before = float64(fi.Size()) / float64(raw)
		s, err := Open(path, Options{Store: testStore, Retention: 24 * time.Hour, Now: clock.Now})
		if err != nil {
			b.Fatal(err)
		}
		t := time.Now()
		if _, err := s.Purge(); err != nil {
			b.Fatal(err)
		}
		took = time.Since(t)
		var bytes int64
		raws, err := s.ReadRaw(0, n)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range raws {
			bytes += int64(len(r.JSON))
		}
		fi, _ = os.Stat(path)
		after, held = float64(fi.Size())/float64(bytes), float64(bytes)
		_ = s.Close()
	}
	b.ReportMetric(before, "file/records-before")
	b.ReportMetric(after, "file/records-after")
	b.ReportMetric(held/(1<<20), "records-held-MiB")
	b.ReportMetric(took.Seconds(), "s/purge+compact")
	b.ReportMetric(0, "ns/op")
}
