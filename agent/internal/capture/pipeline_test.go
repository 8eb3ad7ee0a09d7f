package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
	firmwareprofiles "github.com/lanebridge/lanebridge/firmware-profiles"
	"github.com/lanebridge/lanebridge/protocol"
)

func shippedProfile(t testing.TB, name string) *profile.Profile {
	t.Helper()
	ps, err := profile.LoadFS(firmwareprofiles.FS)
	if err != nil {
		t.Fatal(err)
	}
	p := ps[name]
	if p == nil {
		t.Fatalf("no profile %s", name)
	}
	return p
}

func testdata(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "profile", "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reference parses input in one go with a fresh parser: what the pipeline must produce.
func reference(p *profile.Profile, terminal string, input []byte) (recs, quar []string) {
	ps := p.NewParser(terminal)
	now := time.Unix(1700000000, 0)
	res := append(ps.Feed(input, now), ps.Close()...)
	for _, r := range res {
		if r.Err == nil && r.Record != nil && r.Record.ValidateBusiness() == nil {
			recs = append(recs, recKey(*r.Record))
		} else {
			quar = append(quar, "q")
		}
	}
	return recs, quar
}

func recKey(r protocol.Record) string {
	return fmt.Sprintf("%s/%s/%s/%d", r.Kind, r.Receipt, r.BusinessDate, r.Total)
}

type env struct {
	dir string
	sp  *spool.Spool
	jr  *Journal
}

func openEnv(t testing.TB, dir string) *env {
	t.Helper()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"), spool.Options{Store: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	jr, err := OpenJournal(filepath.Join(dir, "journal.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, sp: sp, jr: jr}
}

func (e *env) close() { e.jr.Close(); e.sp.Close() }

func (e *env) records(t testing.TB) []protocol.Record {
	t.Helper()
	recs, err := e.sp.Read(1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func newTestPipeline(e *env, sp Committer, p *profile.Profile) *Pipeline {
	pl := NewPipeline()
	pl.ID, pl.Terminal, pl.Profile, pl.Journal, pl.Spool = "T1", "T1", p, e.jr, sp
	pl.Log = slog.New(slog.DiscardHandler)
	pl.Quiet, pl.Tick = 300*time.Millisecond, 20*time.Millisecond
	return pl
}

// flakySpool fails the n-th commit, before or after really committing it (a crash either side
// of the spool's fsync).
type flakySpool struct {
	*spool.Spool
	mu    sync.Mutex
	n     int
	after bool
}

var errCrash = errors.New("simulated crash")

func (f *flakySpool) Commit(ctx context.Context, c spool.Capture) ([]protocol.Record, error) {
	f.mu.Lock()
	f.n--
	n := f.n
	f.mu.Unlock()
	if n == 0 {
		if f.after {
			f.Spool.Commit(ctx, c)
		}
		return nil, errCrash
	}
	return f.Spool.Commit(ctx, c)
}

// chunks splits b at random places (PANs and lines split across reads).
func chunks(b []byte, rng *rand.Rand) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(len(b), 1+rng.IntN(64))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// TestPipelineCrashAnywhere kills the pipeline at the k-th spool commit (before or after the
// commit lands), restarts it on the same files, and checks that what is captured equals one
// uninterrupted parse: nothing lost, nothing twice.
func TestPipelineCrashAnywhere(t *testing.T) {
	cases := []struct{ profile, input string }{
		{"casio-journal", "casio-journal/day/input.txt"},
		{"sharp-journal", "sharp-journal/day/input.txt"},
		{"epson-tm-escpos", "epson-tm-escpos/stream-all/input.bin"},
	}
	for _, tc := range cases {
		p := shippedProfile(t, tc.profile)
		input := testdata(t, tc.input)
		wantRecs, wantQuar := reference(p, "T1", input)
		if len(wantRecs) == 0 {
			t.Fatalf("%s: reference parse found no records", tc.profile)
		}
		for k := 1; k <= 6; k++ {
			for _, after := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/crash%d/after=%v", tc.profile, k, after), func(t *testing.T) {
					dir := t.TempDir()
					rng := rand.New(rand.NewPCG(uint64(k), 7))
					parts := chunks(input, rng)
					e := openEnv(t, dir)
					fs := &flakySpool{Spool: e.sp, n: k, after: after}
					pl := newTestPipeline(e, fs, p)
					m := pan.New(pan.Options{})
					lm := &LineMasker{M: m}
					errc := make(chan error, 1)
					ctx, cancel := context.WithCancel(context.Background())
					go func() { errc <- pl.Run(ctx) }()
					<-pl.Ready()
					crashed := false
					for i, c := range parts {
						if out := lm.Write(c); len(out) > 0 {
							if err := pl.Submit(ctx, Input{Data: out}); err != nil {
								crashed = true
								break
							}
						}
						if i%7 == 0 {
							time.Sleep(time.Millisecond) // let commits interleave
						}
					}
					if !crashed {
						if out := lm.Flush(); len(out) > 0 {
							pl.Submit(ctx, Input{Data: out})
						}
					}
					// Wait for the crash or for everything to settle.
					select {
					case err := <-errc:
						if !errors.Is(err, errCrash) {
							t.Fatalf("pipeline: %v", err)
						}
					case <-time.After(2 * time.Second):
						cancel()
						if err := <-errc; err != nil {
							t.Fatal(err)
						}
					}
					cancel()
					// Restart on the same files, with the rest of the input that was never read
					// lost with the process: here every chunk was submitted, and what was
					// journaled must be captured exactly once; nothing more is expected.
					pl2 := newTestPipeline(e, e.sp, p)
					ctx2, cancel2 := context.WithCancel(context.Background())
					errc2 := make(chan error, 1)
					go func() { errc2 <- pl2.Run(ctx2) }()
					<-pl2.Ready()
					time.Sleep(500 * time.Millisecond) // quiet close
					cancel2()
					if err := <-errc2; err != nil {
						t.Fatal(err)
					}
					recs := e.records(t)
					var got []string
					seen := map[string]bool{}
					for _, r := range recs {
						key := recKey(r)
						if seen[key] {
							t.Fatalf("record %s captured twice", key)
						}
						seen[key] = true
						got = append(got, key)
					}
					st := e.sp.Stats()
					journaled, _ := e.jr.Read("T1", 1, 1<<20)
					full := bytes.Join(dataOf(journaled), nil)
					// What was journaled is a prefix of the masked input (or all of it).
					mm := &LineMasker{M: pan.New(pan.Options{})}
					masked := append(mm.Write(input), mm.Flush()...)
					if !bytes.HasPrefix(masked, full) {
						t.Fatalf("journal is not a prefix of the masked input")
					}
					if len(full) == len(masked) {
						if strings.Join(got, "\n") != strings.Join(wantRecs, "\n") {
							t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRecs, "\n"))
						}
						if int(st.QuarantineCount) != len(wantQuar) {
							t.Fatalf("quarantined %d, want %d", st.QuarantineCount, len(wantQuar))
						}
					} else {
						// Crashed mid-input: what was captured is what a parse of the journaled
						// prefix yields.
						wr, _ := reference(p, "T1", full)
						if strings.Join(got, "\n") != strings.Join(wr, "\n") {
							t.Fatalf("records after crash:\n%s\nwant (parse of journaled prefix):\n%s", strings.Join(got, "\n"), strings.Join(wr, "\n"))
						}
					}
					e.close()
				})
			}
		}
	}
}

func dataOf(es []Entry) [][]byte {
	var out [][]byte
	for _, e := range es {
		if e.Kind == EntryData {
			out = append(out, e.Data)
		}
	}
	return out
}

// fakePort replays chunks then reports errors or timeouts as scripted.
type fakePort struct {
	mu     sync.Mutex
	chunks [][]byte
	fail   bool // after the chunks, fail like an unplugged adapter
}

func (f *fakePort) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.chunks) == 0 {
		if f.fail {
			return 0, errors.New("read /dev/ttyUSB0: input/output error")
		}
		time.Sleep(5 * time.Millisecond)
		return 0, io.EOF // Linux read timeout
	}
	n := copy(p, f.chunks[0])
	f.chunks[0] = f.chunks[0][n:]
	if len(f.chunks[0]) == 0 {
		f.chunks = f.chunks[1:]
	}
	return n, nil
}

func (f *fakePort) Close() error { return nil }

// TestSerialUnpluggedAndCardData: the port fails mid-stream and disappears for a while; the tap
// keeps retrying, resumes, captures every transaction, and no PAN or track data reaches disk.
func TestSerialUnpluggedAndCardData(t *testing.T) {
	p := shippedProfile(t, "sharp-journal")
	pans := []string{"4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009", "6011000000000004"}
	var in bytes.Buffer
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&in, "03/14/2024 14:%02d  #%04d  000101\nCLERK01\nDEPT01          T1     $1.00\n", i, 200+i)
		fmt.Fprintf(&in, "CARD %s EXP 12/29\n", pans[i%len(pans)])
		fmt.Fprintf(&in, "%%B%s^DOE/JOHN^29121010000000000000?\n", strings.ReplaceAll(pans[0], " ", ""))
		fmt.Fprintf(&in, ";%s=29121010000000000?\nCVV 123\n", strings.ReplaceAll(pans[0], " ", ""))
		fmt.Fprintf(&in, "TOTAL                  $1.00\nCHARGE                 $1.00\n")
	}
	input := in.Bytes()
	half := len(input) / 2
	rng := rand.New(rand.NewPCG(1, 2))
	opens := 0
	var mu sync.Mutex
	open := func(SerialConfig) (Port, error) {
		mu.Lock()
		defer mu.Unlock()
		opens++
		switch opens {
		case 1:
			return &fakePort{chunks: chunks(input[:half], rng), fail: true}, nil
		case 2, 3:
			return nil, errors.New("open /dev/ttyUSB0: no such file or directory")
		default:
			return &fakePort{chunks: chunks(input[half:], rng)}, nil
		}
	}
	dir := t.TempDir()
	e := openEnv(t, dir)
	defer e.close()
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	pl := newTestPipeline(e, e.sp, p)
	pl.Log = log
	s := &Serial{Config: SerialConfig{Name: "/dev/ttyUSB0"}, Open: open, Masker: pan.New(pan.Options{}), Pipeline: pl, Log: log, IdleFlush: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && len(e.records(t)) < 8 {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	recs := e.records(t)
	if len(recs) != 8 {
		t.Fatalf("captured %d records, want 8 (quarantined %d)", len(recs), e.sp.Stats().QuarantineCount)
	}
	if _, reopens, lastErr := s.PortUp(); reopens == 0 || lastErr == "" {
		t.Fatalf("port failure not reported: reopens %d, last error %q", reopens, lastErr)
	}
	e.close()
	logMu.Lock()
	defer logMu.Unlock()
	scanForCardData(t, dir, logs.Bytes(), pans)
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// scanForCardData fails if any PAN (with or without separators) or track data appears in any
// file under dir or in logs.
func scanForCardData(t testing.TB, dir string, logs []byte, pans []string) {
	t.Helper()
	var needles []string
	for _, p := range pans {
		d := strings.NewReplacer(" ", "", "-", "").Replace(p)
		needles = append(needles, p, d, d[6:], "="+"2912")
	}
	check := func(name string, b []byte) {
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("%s contains card data %q", name, n)
			}
		}
		if bytes.Contains(b, []byte("^DOE/JOHN^")) || bytes.Contains(b, []byte("CVV 123")) {
			t.Errorf("%s contains track or CVV data", name)
		}
	}
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			b, _ := os.ReadFile(path)
			check(path, b)
		}
		return nil
	})
	check("logs", logs)
}
