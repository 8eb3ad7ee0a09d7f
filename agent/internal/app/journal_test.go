package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/config"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runningAgent is run() in a goroutine, with its local endpoint.
type runningAgent struct {
	cancel context.CancelFunc
	errc   chan error
	cfg    *config.Config
}

func startRun(t *testing.T, cfg *config.Config) *runningAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &runningAgent{cancel: cancel, errc: make(chan error, 1), cfg: cfg}
	go func() { a.errc <- run(ctx, cfg, slog.New(slog.DiscardHandler), nil) }()
	t.Cleanup(func() { a.stop(t) })
	return a
}

func (a *runningAgent) stop(t *testing.T) {
	t.Helper()
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.cancel = nil
	if err := <-a.errc; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// status polls the local endpoint until cond holds.
func (a *runningAgent) status(t *testing.T, what string, cond func(localStatus) bool) localStatus {
	t.Helper()
	var ls localStatus
	var last error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-a.errc:
			a.cancel = nil
			t.Fatalf("run stopped while waiting for %s: %v", what, err)
		default:
		}
		resp, err := http.Get("http://" + a.cfg.Listen + "/status")
		if err == nil {
			ls = localStatus{}
			err = json.NewDecoder(resp.Body).Decode(&ls)
			resp.Body.Close()
			if err == nil && cond(ls) {
				return ls
			}
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: last status %+v, err %v", what, ls, last)
	return ls
}

// send writes canonical-jsonl sales R<from>.. to the terminal's tcp-listen source.
func send(t *testing.T, addr string, from, n int) {
	t.Helper()
	var c net.Conn
	var err error
	for range 100 { // the source listens once the agent is up
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := from; i < from+n; i++ {
		fmt.Fprintf(c, `{"kind":"sale","terminal":"T1","receipt":"R%03d","business_date":"2024-03-14","time":"2024-03-14T14:05:00-04:00",`+
			`"lines":[{"description":"SODA","quantity":"1","unit_price":100,"amount":100}],"total":100,"tenders":[{"type":"cash","amount":100}]}`+"\n", i)
	}
}

// TestCorruptJournalMovedAside: with the agent stopped, journal.db is damaged (garbage over its
// meta pages). On start the agent moves it aside, its status (what the uplink sends the hub)
// carries the alarm, the parse cursor into the old journal is reset, and capture continues:
// new sales are captured once, none of the earlier ones twice.
func TestCorruptJournalMovedAside(t *testing.T) {
	dir := t.TempDir()
	term := freeAddr(t)
	cfgPath := filepath.Join(dir, "agent.yaml")
	y := fmt.Sprintf("store: S1\ndata_dir: %s\nlisten: %s\nhub:\n  broker: tcp://127.0.0.1:1\n"+
		"terminals:\n  - {id: T1, source: \"tcp-listen://%s\", profile: canonical-jsonl}\n",
		filepath.Join(dir, "data"), freeAddr(t), term)
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	a := startRun(t, cfg)
	send(t, term, 1, 4)
	a.status(t, "4 sales captured", func(ls localStatus) bool { return ls.LastSeq == 4 })
	a.stop(t)

	path := journalPath(cfg)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 16; i < 2*os.Getpagesize() && i < len(b); i++ {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	a = startRun(t, cfg)
	ls := a.status(t, "the journal alarms", func(ls localStatus) bool { return len(ls.Alarms) >= 2 })
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt journal moved aside to %v, want one journal.db.corrupt-* file", aside)
	}
	all := strings.Join(ls.Alarms, "\n")
	t.Logf("alarms:\n%s", all)
	if !strings.Contains(all, "raw journal file was corrupt and was moved aside to "+aside[0]) ||
		!strings.Contains(all, "terminal T1: the parse cursor pointed into another raw journal") {
		t.Fatalf("status alarms %q: want the corrupt journal and the cursor reset", ls.Alarms)
	}
	send(t, term, 5, 3)
	ls = a.status(t, "3 more sales captured", func(ls localStatus) bool { return ls.LastSeq >= 7 })
	a.stop(t)

	// The spool holds R001..R007, each once.
	var out strings.Builder
	if code := Main([]string{"status", "--config", cfgPath}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "captured (seq):  7\n") {
		t.Fatalf("status after the restart (exit %d):\n%s", code, out.String())
	}
	if ls.LastSeq != 7 {
		t.Fatalf("last seq %d, want 7: a sale captured twice or lost", ls.LastSeq)
	}
}
