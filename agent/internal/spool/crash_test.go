package spool

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/syncbuf"
)

const crashChildEnv = "LANEBRIDGE_SPOOL_CRASH_CHILD"

// crashSources are the capture sources the child runs, one goroutine each.
var crashSources = []string{"t1", "t2", "t3", "t4"}

// TestCrashChild is not a test of its own: TestCrashKill9 runs the test binary with this test
// selected and the spool path in the environment, and kills it.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestCrashKill9")
	}
	s, err := Open(path, Options{Store: testStore})
	if err != nil {
		fmt.Printf("open error %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("ready %s\n", s.Epoch())
	for _, src := range crashSources {
		go func() {
			off, err := s.Offset(src)
			if err != nil {
				fmt.Printf("offset error %v\n", err)
				os.Exit(2)
			}
			n := 0
			if off != nil {
				n, _ = strconv.Atoi(string(off))
			}
			r := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(len(src))))
			for {
				k := 1 + r.IntN(5)
				recs := make([]protocol.Record, k)
				for i := range recs {
					recs[i] = sale(src, n+i+1)
				}
				out, err := s.Commit(context.Background(), Capture{Source: src, Records: recs, Offset: []byte(strconv.Itoa(n + k))})
				if err != nil {
					fmt.Printf("commit error %v\n", err)
					os.Exit(2)
				}
				n += k
				// One write per line: lines from the goroutines do not interleave.
				fmt.Printf("C %d %d %s %d\n", out[0].Seq, out[k-1].Seq, src, n)
			}
		}()
	}
	for {
		time.Sleep(5 * time.Millisecond)
		through := s.LastSeq() / 2
		if err := s.Ack(s.Epoch(), through); err != nil {
			fmt.Printf("ack error %v\n", err)
			os.Exit(2)
		}
		fmt.Printf("A %d\n", through)
	}
}

type syncBuffer = syncbuf.Buffer

// TestCrashKill9 SIGKILLs a committing child process at random moments and checks, after each
// kill, that everything the child was told was captured is there, that seqs are contiguous and
// that every source's offset matches its records. It exercises process crashes only: the page
// cache survives a SIGKILL, so it does not prove what a power cut would leave.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL semantics are Unix")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	path := filepath.Join(t.TempDir(), "spool.db")
	var epoch string
	for round := range 5 {
		var stdout, stderr syncBuffer
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child commits, then let it run a random while and kill it.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stdout.String(), "\nC ") {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("round %d: child did not commit; stdout %q stderr %q", round, stdout.String(), stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(50+r.IntN(450)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // stdout is complete after Wait: the pipe held what the child wrote
		out := stdout.String()
		if strings.Contains(out, "error") {
			t.Fatalf("round %d: child failed: %s", round, out)
		}

		var maxSeq, maxAck uint64
		maxOff := map[string]int{}
		commits := 0
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 2 && f[0] == "ready":
				if epoch == "" {
					epoch = f[1]
				} else if f[1] != epoch {
					t.Fatalf("round %d: child opened epoch %s, want %s", round, f[1], epoch)
				}
			case len(f) == 5 && f[0] == "C":
				last, _ := strconv.ParseUint(f[2], 10, 64)
				off, _ := strconv.Atoi(f[4])
				maxSeq = max(maxSeq, last)
				maxOff[f[3]] = max(maxOff[f[3]], off)
				commits++
			case len(f) == 2 && f[0] == "A":
				a, _ := strconv.ParseUint(f[1], 10, 64)
				maxAck = max(maxAck, a)
			}
		}

		s, err := Open(path, Options{Store: testStore})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		st := s.Stats()
		t.Logf("round %d: child reported %d commits up to seq %d, ack %d; spool has last seq %d, ack %d", round, commits, maxSeq, maxAck, st.LastSeq, st.LastAck)
		if len(st.Alarms) != 0 || st.Epoch != epoch {
			t.Fatalf("round %d: after kill: alarms %q epoch %s (want %s)", round, st.Alarms, st.Epoch, epoch)
		}
		if st.LastSeq < maxSeq || st.LastAck < maxAck {
			t.Fatalf("round %d: lost captures: last seq %d < reported %d or last ack %d < reported %d", round, st.LastSeq, maxSeq, st.LastAck, maxAck)
		}
		recs := checkContiguous(t, s, 1, st.LastSeq)
		count := map[string]int{}
		for _, rec := range recs {
			count[rec.Terminal]++
			if rec.Receipt != strconv.Itoa(count[rec.Terminal]) {
				t.Fatalf("round %d: seq %d: %s receipt %s, want %d", round, rec.Seq, rec.Terminal, rec.Receipt, count[rec.Terminal])
			}
		}
		for _, src := range crashSources {
			off, err := s.Offset(src)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := strconv.Atoi(string(off))
			if got != count[src] || got < maxOff[src] {
				t.Fatalf("round %d: source %s offset %d, records %d, reported %d", round, src, got, count[src], maxOff[src])
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
