package e2e

// End-to-end tests of capture from legacy terminals (issue 3): the real agent binary reads
// pseudo-terminals exactly as it would read a COM port, and a network printer tap relays to a
// fake printer; the hub's figures are compared with what the simulator printed.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/terminal"
)

const simDate = "2026-11-26"

// ptyLine is a serial line made of two pseudo-terminal pairs and a relay, as socat would make
// it: a terminal (the simulator) writes to Sim, the agent reads Agent. The relay copies bytes
// unchanged; both ends are in raw mode, so nothing is translated or echoed.
type ptyLine struct {
	Sim, Agent string // /dev/pts/N paths
}

func newPTYLine(t testing.TB) ptyLine {
	t.Helper()
	simM, simS := openRawPTY(t)
	agM, agS := openRawPTY(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(agM, simM)
	}()
	t.Cleanup(func() {
		simM.Close()
		agM.Close()
		simS.Close()
		agS.Close()
		<-done
	})
	return ptyLine{Sim: simS.Name(), Agent: agS.Name()}
}

// openRawPTY opens a pty pair with the slave in raw mode. The master is returned in
// non-blocking (poller) mode so that closing it ends a pending read or write.
func openRawPTY(t testing.TB) (master, slave *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	fd, err := syscall.Dup(int(m.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	master = os.NewFile(uintptr(fd), "ptmx")
	sc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var terr error
	sc.Control(func(fd uintptr) {
		tio, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			terr = err
			return
		}
		// cfmakeraw
		tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Cflag &^= unix.CSIZE | unix.PARENB
		tio.Cflag |= unix.CS8
		tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
		terr = unix.IoctlSetTermios(int(fd), unix.TCSETS, tio)
	})
	if terr != nil {
		t.Fatalf("raw mode on %s: %v", s.Name(), terr)
	}
	return master, s
}

// waitPortsOpen waits until process p holds every path open (the agent has opened its ports).
func waitPortsOpen(t testing.TB, p *proc, paths ...string) {
	t.Helper()
	eventually(t, 30*time.Second, "agent to open its serial ports", func() error {
		if p.Exited() {
			b, _ := os.ReadFile(p.Log)
			t.Fatalf("agent exited: %v\n%s", p.Err, tail(b, 4000))
		}
		fds := fmt.Sprintf("/proc/%d/fd", p.Cmd.Process.Pid)
		ents, err := os.ReadDir(fds)
		if err != nil {
			return err
		}
		open := map[string]bool{}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil {
				open[l] = true
			}
		}
		for _, want := range paths {
			if !open[want] {
				return fmt.Errorf("%s not open", want)
			}
		}
		return nil
	})
}

// captureTerm is one capture source of the agent.
type captureTerm struct{ id, source, profile string }

// captureConfig writes the agent's config for byte-stream sources: the harness's fast timers
// and data dir, terms as terminals, and profiles_dir if set. It returns the path and the
// agent's local HTTP address.
func captureConfig(t testing.TB, dir, store, enrolled, profilesDir string, terms ...captureTerm) (cfgPath, listen string) {
	t.Helper()
	p := agentConfig(t, dir, store, enrolled, nil)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("terminals:\n")) {
		t.Fatalf("agentConfig no longer ends with the terminals key:\n%s", b)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "listen: "); ok {
			listen = strings.TrimSpace(v)
		}
	}
	var s strings.Builder
	s.Write(b)
	for _, tm := range terms {
		fmt.Fprintf(&s, "  - {id: %s, source: %q, profile: %s}\n", tm.id, tm.source, tm.profile)
	}
	if profilesDir != "" {
		fmt.Fprintf(&s, "profiles_dir: %s\n", profilesDir)
	}
	if err := os.WriteFile(p, []byte(s.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, listen
}

// fastProfiles copies the shipped profiles into dir/profiles with a 2 s framing timeout, so the
// journals' last transaction (a Z report has no end marker) closes quickly at the end of a day.
func fastProfiles(t testing.TB, dir string, names ...string) string {
	t.Helper()
	out := filepath.Join(dir, "profiles")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(  timeout:\s*)\d+s\s*$`)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(repoRoot(), "firmware-profiles", n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		nb := re.ReplaceAll(b, []byte("${1}2s"))
		if bytes.Equal(nb, b) {
			t.Fatalf("profile %s: no framing timeout to shorten", n)
		}
		if err := os.WriteFile(filepath.Join(out, n+".yaml"), nb, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// simTerminal is one simulated terminal on its own pseudo-terminal line.
type simTerminal struct {
	id, profile, printed string // agent terminal id, profile, id the terminal prints
	line                 ptyLine
	totals               string
}

var simProfiles = []struct{ profile, printed string }{
	{"epson-tm-escpos", "REG01"}, {"casio-journal", "C01"}, {"sharp-journal", "000101"},
}

func newSimTerminals(t testing.TB, dir string) []*simTerminal {
	var ts []*simTerminal
	for i, sp := range simProfiles {
		id := fmt.Sprintf("T%d", i+1)
		ts = append(ts, &simTerminal{id: id, profile: sp.profile, printed: sp.printed, line: newPTYLine(t), totals: filepath.Join(dir, id+".totals.json")})
	}
	return ts
}

// runSimTerminals runs one simulator per terminal concurrently and waits for all of them.
func runSimTerminals(t testing.TB, dir string, ts []*simTerminal, count int, rate, noise float64) map[string]terminal.Expected {
	t.Helper()
	var ps []*proc
	for i, st := range ts {
		ps = append(ps, start(t, "lanebridge-sim", filepath.Join(dir, "sim-"+st.id+".log"), "terminal",
			"--profile", st.profile, "--out", "serial://"+st.line.Sim, "--terminal", st.printed, "--date", simDate,
			"--count", fmt.Sprint(count), "--rate", fmt.Sprint(rate), "--noise", fmt.Sprint(noise),
			"--seed", fmt.Sprint(simSeed(t)+i), "--totals", st.totals))
	}
	exp := map[string]terminal.Expected{}
	for i, p := range ps {
		select {
		case <-p.Done:
		case <-time.After(60 * time.Second):
			t.Fatalf("simulator %s did not finish", ts[i].id)
		}
		if p.Err != nil {
			b, _ := os.ReadFile(p.Log)
			t.Fatalf("simulator %s: %v\n%s", ts[i].id, p.Err, b)
		}
		var e terminal.Expected
		b, err := os.ReadFile(ts[i].totals)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		if len(e.Transactions) != count+1 {
			t.Fatalf("simulator %s lists %d transactions, want %d", ts[i].id, len(e.Transactions), count+1)
		}
		exp[ts[i].id] = e
	}
	return exp
}

// simSeed is the first simulator seed: 100, or LANEBRIDGE_SIM_SEED to explore other days.
func simSeed(t testing.TB) int {
	n := 100
	if v := os.Getenv("LANEBRIDGE_SIM_SEED"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("LANEBRIDGE_SIM_SEED=%q: %v", v, err)
		}
		t.Logf("simulator seeds from %d", n)
	}
	return n
}

// receiptNo is a receipt number as a number ("000123" and "0123" are the same receipt).
func receiptNo(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func flagsOf(r protocol.Record) string {
	if r.Source == nil {
		return ""
	}
	if _, f, ok := strings.Cut(r.Source.Raw, " flags="); ok {
		return f
	}
	return ""
}

type hubException struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

func (h *hub) exceptions(store, reason string) ([]hubException, error) {
	b, err := h.Get("/api/v1/exceptions?store=" + store + "&reason=" + reason + "&limit=10000")
	if err != nil {
		return nil, err
	}
	var resp struct {
		Exceptions []hubException `json:"exceptions"`
	}
	return resp.Exceptions, json.Unmarshal(b, &resp)
}

type hubDay struct {
	Kinds []struct {
		Kind  string `json:"kind"`
		Count int64  `json:"count"`
		Total int64  `json:"total"`
	} `json:"kinds"`
	Terminals []struct {
		Terminal string     `json:"terminal"`
		Count    int64      `json:"count"`
		Gaps     [][2]int64 `json:"gaps"`
	} `json:"terminals"`
	Recaptured int64 `json:"recaptured"`
}

func (h *hub) day(store, date string) (hubDay, error) {
	var d hubDay
	b, err := h.Get("/api/v1/stores/" + store + "/days/" + date)
	if err != nil {
		return d, err
	}
	return d, json.Unmarshal(b, &d)
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestSimulatedDayOverPTYs: three terminals with three profiles print a day over
// pseudo-terminals; the agent reads them as serial ports. Every transaction reaches the hub
// once with the simulator's kind and total; the hub's per-day totals equal the simulator's to
// the cent, per kind; and each terminal's Z report, as captured, agrees with the day.
func TestSimulatedDayOverPTYs(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S030"
	ts := newSimTerminals(t, dir)
	var terms []captureTerm
	var names, paths []string
	for _, st := range ts {
		terms = append(terms, captureTerm{st.id, "serial://" + st.line.Agent + "?baud=9600", st.profile})
		names, paths = append(names, st.profile), append(paths, st.line.Agent)
	}
	cfg, _ := captureConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), fastProfiles(t, dir, names...), terms...)
	ag := startAgent(t, dir, store, cfg)
	waitPortsOpen(t, ag, paths...)

	const count = 150
	exp := runSimTerminals(t, dir, ts, count, 50, 0)
	want := int64(0)
	for _, e := range exp {
		want += int64(len(e.Transactions))
	}
	h.WaitRecords(t, store, want, 30*time.Second)

	recs := h.AllRecords(t, store)
	byTerm := map[string]map[int64]protocol.Record{}
	for _, r := range recs {
		if byTerm[r.Terminal] == nil {
			byTerm[r.Terminal] = map[int64]protocol.Record{}
		}
		n, ok := receiptNo(r.Receipt)
		if !ok {
			t.Fatalf("record %s/%q: receipt is not a number", r.Terminal, r.Receipt)
		}
		if _, dup := byTerm[r.Terminal][n]; dup {
			t.Fatalf("receipt %s/%s captured twice", r.Terminal, r.Receipt)
		}
		if f := flagsOf(r); f != "" {
			t.Errorf("%s receipt %s (%s) flagged without noise: %s", r.Terminal, r.Receipt, r.Kind, f)
		}
		if r.BusinessDate != simDate {
			t.Errorf("%s receipt %s: business date %s, want %s", r.Terminal, r.Receipt, r.BusinessDate, simDate)
		}
		byTerm[r.Terminal][n] = r
	}

	storeWant := map[string]terminal.KindTotal{}
	for _, st := range ts {
		e := exp[st.id]
		got := byTerm[st.id]
		if len(got) != len(e.Transactions) {
			t.Errorf("%s (%s): hub has %d records, simulator printed %d transactions", st.id, st.profile, len(got), len(e.Transactions))
		}
		// Each transaction, one by one.
		sums := map[string]terminal.KindTotal{}
		var z *protocol.Record
		for _, em := range e.Transactions {
			n, _ := receiptNo(em.Receipt)
			r, ok := got[n]
			if !ok {
				t.Errorf("%s (%s): receipt %s (%s) never reached the hub", st.id, st.profile, em.Receipt, em.Kind)
				continue
			}
			if string(r.Kind) != em.Kind || (em.Kind != "z_report" && r.Total != em.Total) {
				t.Errorf("%s (%s) receipt %s: hub has %s %d, simulator printed %s %d", st.id, st.profile, em.Receipt, r.Kind, r.Total, em.Kind, em.Total)
			}
			kt := sums[string(r.Kind)]
			kt.Count++
			kt.Total += r.Total
			sums[string(r.Kind)] = kt
			if r.Kind == protocol.KindZReport {
				z = &r
			}
		}
		for k, w := range e.Kinds {
			if k == "z_report" {
				w.Total = sums[k].Total // a Z report's record total is the profile's business
			}
			if sums[k] != w {
				t.Errorf("%s (%s) kind %s: hub count %d total %d, simulator count %d total %d", st.id, st.profile, k, sums[k].Count, sums[k].Total, w.Count, w.Total)
			}
			sw := storeWant[k]
			sw.Count += w.Count
			sw.Total += w.Total
			storeWant[k] = sw
		}
		if z == nil || z.Z == nil {
			t.Errorf("%s (%s): no Z report figures at the hub", st.id, st.profile)
			continue
		}
		checkZ(t, st, e.Z, *z.Z, sums)
		t.Logf("%s (%s): %d transactions; sale %d/%d, return %d/%d, void %d/%d, no_sale %d; Z gross %d net %d cash %d card %d",
			st.id, st.profile, len(e.Transactions), sums["sale"].Count, sums["sale"].Total, sums["return"].Count, sums["return"].Total,
			sums["void"].Count, sums["void"].Total, sums["no_sale"].Count, e.Z.Gross, e.Z.Net, e.Z.Cash, e.Z.Card)
	}

	// The hub's own per-day totals (store-wide, per kind) equal the simulators' sums to the cent.
	d, err := h.day(store, simDate)
	if err != nil {
		t.Fatal(err)
	}
	gotKinds := map[string]terminal.KindTotal{}
	for _, k := range d.Kinds {
		gotKinds[k.Kind] = terminal.KindTotal{Count: k.Count, Total: k.Total}
	}
	for k, w := range storeWant {
		if gotKinds[k] != w {
			t.Errorf("day %s kind %s: hub %+v, simulators %+v", simDate, k, gotKinds[k], w)
		}
	}
	if len(gotKinds) != len(storeWant) {
		t.Errorf("day %s: hub kinds %v, simulators %v", simDate, gotKinds, storeWant)
	}
	for _, td := range d.Terminals {
		if len(td.Gaps) != 0 {
			t.Errorf("terminal %s: hub sees receipt gaps %v without noise", td.Terminal, td.Gaps)
		}
	}
	t.Logf("day %s at the hub: %v", simDate, gotKinds)
	ag.Stop(t)
	checkLogs(t, dir)
}

// checkZ compares a terminal's Z report as captured at the hub with the simulator's figures
// and with the transactions the hub holds for that terminal.
func checkZ(t testing.TB, st *simTerminal, want terminal.ZFigures, z protocol.ZReport, sums map[string]terminal.KindTotal) {
	t.Helper()
	var tenders, tax, taxable int64
	for _, td := range z.Tenders {
		tenders += td.Amount
	}
	for _, tx := range z.Taxes {
		tax, taxable = tax+tx.Amount, taxable+tx.Taxable
	}
	type cmp struct {
		what      string
		got, want int64
	}
	cs := []cmp{
		{"gross", z.Gross, want.Gross},
		{"refund count", z.Refunds.Count, want.Refunds},
		{"refund amount", abs64(z.Refunds.Amount), want.RefundAmount},
		{"void count", z.Voids.Count, want.Voids},
		{"void amount", abs64(z.Voids.Amount), want.VoidAmount},
		{"tenders (cash+card)", tenders, want.Cash + want.Card},
		{"grand total", z.GrandTotal, want.GrandTotal},
		// The hub's transactions of the day against the Z report as captured.
		{"hub returns vs Z refund count", sums["return"].Count, z.Refunds.Count},
		{"hub returns vs Z refund amount", abs64(sums["return"].Total), abs64(z.Refunds.Amount)},
		{"hub voids vs Z void count", sums["void"].Count, z.Voids.Count},
		{"hub voids vs Z void amount", sums["void"].Total, abs64(z.Voids.Amount)},
		{"hub sales+returns vs Z tenders", sums["sale"].Total + sums["return"].Total, tenders},
		{"hub sales vs simulator's Z sale count", sums["sale"].Count, want.Sales},
	}
	switch st.profile {
	case "epson-tm-escpos":
		// This layout prints NET as what the drawer and cards took.
		cs = append(cs, cmp{"net", z.Net, want.Cash + want.Card}, cmp{"tax", tax, want.Tax},
			cmp{"no-sale count", z.NoSaleCount, want.NoSales}, cmp{"hub no-sales vs Z", sums["no_sale"].Count, z.NoSaleCount})
	case "sharp-journal":
		// This layout prints no NET line: its taxable sales (TXBL1) are the net.
		cs = append(cs, cmp{"taxable (net)", taxable, want.Net}, cmp{"tax", tax, want.Tax},
			cmp{"no-sale count", z.NoSaleCount, want.NoSales}, cmp{"hub no-sales vs Z", sums["no_sale"].Count, z.NoSaleCount})
	default: // casio prints no no-sale count
		cs = append(cs, cmp{"net", z.Net, want.Net})
	}
	for _, c := range cs {
		if c.got != c.want {
			t.Errorf("%s (%s) Z %s: %d, want %d", st.id, st.profile, c.what, c.got, c.want)
		}
	}
}

// TestSimulatedDayWithNoise: the same day with line noise, dropped bytes and reboots
// mid-receipt. Every transaction the simulators printed is accounted for at the hub: the
// undamaged ones are captured exactly, each damaged one is captured (flagged or, if the noise
// hit nothing that matters, clean) or shows up as a capture_quarantined exception. None
// silently vanishes, and the hub's receipt gaps are exactly the quarantined receipts.
func TestSimulatedDayWithNoise(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S031"
	ts := newSimTerminals(t, dir)
	var terms []captureTerm
	var names, paths []string
	for _, st := range ts {
		terms = append(terms, captureTerm{st.id, "serial://" + st.line.Agent + "?baud=9600", st.profile})
		names, paths = append(names, st.profile), append(paths, st.line.Agent)
	}
	cfg, _ := captureConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), fastProfiles(t, dir, names...), terms...)
	ag := startAgent(t, dir, store, cfg)
	waitPortsOpen(t, ag, paths...)

	const count = 120
	exp := runSimTerminals(t, dir, ts, count, 30, 0.3)

	// Wait for the capture to settle: records and exceptions stop changing (the last Z report
	// closes on the 2 s framing timeout, exceptions ride on the 1 s status heartbeat).
	var recs []protocol.Record
	var excs []hubException
	last, stable := "", 0
	eventually(t, 40*time.Second, "records and exceptions to settle", func() error {
		si, err := h.Store(store)
		if err != nil {
			return err
		}
		e, err := h.exceptions(store, "capture_quarantined")
		if err != nil {
			return err
		}
		if si.Status == nil {
			return errors.New("no agent status at the hub yet")
		}
		now := fmt.Sprintf("%d/%d/%d", si.Records, len(e), si.Status.QuarantineCount)
		if now != last {
			last, stable = now, 0
			return fmt.Errorf("records/exceptions/agent quarantine count %s still changing", now)
		}
		if stable++; stable < 60 { // 3 s unchanged
			return fmt.Errorf("records/exceptions %s", now)
		}
		if int64(len(e)) != int64(si.Status.QuarantineCount) {
			return fmt.Errorf("hub has %d quarantine exceptions, agent reports %d quarantined", len(e), si.Status.QuarantineCount)
		}
		return nil
	})
	recs, excs = h.AllRecords(t, store), must(h.exceptions(store, "capture_quarantined"))
	d, err := h.day(store, simDate)
	if err != nil {
		t.Fatal(err)
	}
	gaps := map[string]map[int64]bool{}
	for _, td := range d.Terminals {
		gaps[td.Terminal] = map[int64]bool{}
		for _, g := range td.Gaps {
			for n := g[0]; n <= g[1]; n++ {
				gaps[td.Terminal][n] = true
			}
		}
	}

	var damagedTotal, quarTotal int
	for _, st := range ts {
		e := exp[st.id]
		known := map[int64]terminal.Emitted{}
		for _, em := range e.Transactions {
			n, _ := receiptNo(em.Receipt)
			known[n] = em
		}
		got := map[int64]protocol.Record{}
		var misnumbered []protocol.Record // captured under a receipt number the terminal never printed
		for _, r := range recs {
			if r.Terminal != st.id {
				continue
			}
			n, ok := receiptNo(r.Receipt)
			if _, printed := known[n]; !ok || !printed {
				misnumbered = append(misnumbered, r)
				continue
			}
			if _, dup := got[n]; dup {
				t.Errorf("%s receipt %s captured twice", st.id, r.Receipt)
			}
			got[n] = r
		}
		var mine []string
		for _, x := range excs {
			if strings.HasPrefix(x.Detail, "terminal "+st.id+" ") {
				mine = append(mine, x.Detail)
			}
		}
		marker := func(receipt string) string {
			switch st.profile {
			case "epson-tm-escpos":
				return "TRANS " + receipt
			case "casio-journal":
				return st.printed + " " + receipt
			default:
				return "#" + receipt
			}
		}
		attributed := map[int]bool{}
		var clean, flagged, quarantined, unattributed, damaged int
		quarNos := map[int64]bool{}
		for _, em := range e.Transactions {
			n, _ := receiptNo(em.Receipt)
			r, captured := got[n]
			if em.Damage == "" {
				switch {
				case !captured:
					t.Errorf("%s (%s): undamaged receipt %s (%s) is not at the hub", st.id, st.profile, em.Receipt, em.Kind)
				case string(r.Kind) != em.Kind || (em.Kind != "z_report" && r.Total != em.Total):
					t.Errorf("%s (%s): undamaged receipt %s: hub %s %d, printed %s %d", st.id, st.profile, em.Receipt, r.Kind, r.Total, em.Kind, em.Total)
				case flagsOf(r) != "":
					t.Errorf("%s (%s): undamaged receipt %s flagged: %s", st.id, st.profile, em.Receipt, flagsOf(r))
				}
				continue
			}
			damaged++
			if captured {
				if flagsOf(r) != "" {
					flagged++
					continue
				}
				clean++
				// Unflagged means trusted: the noise must have hit nothing that matters.
				if string(r.Kind) != em.Kind || r.Total != em.Total {
					t.Errorf("%s (%s): damaged receipt %s (%s) captured unflagged with wrong figures: hub %s %d, printed %s %d",
						st.id, st.profile, em.Receipt, em.Damage, r.Kind, r.Total, em.Kind, em.Total)
				}
				continue
			}
			found := false
			for i, x := range mine {
				if strings.Contains(x, marker(em.Receipt)) {
					attributed[i], found = true, true
				}
			}
			if found {
				quarantined++
				quarNos[n] = true
			} else {
				unattributed++
				quarNos[n] = true
			}
		}
		// A damaged receipt whose number the noise destroyed is matched by a quarantine entry
		// that names no printed receipt, or by a record captured under a number never printed.
		spare := len(misnumbered)
		for i := range mine {
			if !attributed[i] {
				spare++
			}
		}
		// Each printed transaction has exactly one outcome: a record or a quarantine entry.
		if n := len(got) + len(misnumbered) + len(mine); n != len(e.Transactions) {
			t.Errorf("%s (%s): %d printed transactions, but %d records + %d misnumbered records + %d quarantine exceptions = %d",
				st.id, st.profile, len(e.Transactions), len(got), len(misnumbered), len(mine), n)
		}
		if unattributed > spare {
			t.Errorf("%s (%s): %d damaged receipts neither captured nor quarantined (only %d unattributed exceptions/records)", st.id, st.profile, unattributed-spare, spare)
		}
		// The hub's receipt gaps are exactly the receipts that did not arrive. It sees only
		// gaps between receipts it has: not before the day's first, nor after the last
		// transaction before the Z report (the Z report does not count in the numbering).
		first, last := int64(-1), int64(-1)
		for n, r := range got {
			if r.Kind == protocol.KindZReport {
				continue
			}
			if first < 0 || n < first {
				first = n
			}
			last = max(last, n)
		}
		for n := range quarNos {
			if n > first && n < last && !gaps[st.id][n] {
				t.Errorf("%s: receipt %d was quarantined but the hub shows no gap for it", st.id, n)
			}
		}
		for n := range gaps[st.id] {
			if !quarNos[n] {
				t.Errorf("%s: hub shows receipt %d missing, but it was neither damaged nor quarantined", st.id, n)
			}
		}
		if damaged != len(e.Damaged) {
			t.Errorf("%s: %d damaged transactions listed, %d in Damaged", st.id, damaged, len(e.Damaged))
		}
		damagedTotal += damaged
		quarTotal += quarantined + unattributed
		t.Logf("%s (%s): %d printed, %d damaged: %d captured clean, %d captured flagged, %d quarantined by number, %d quarantined with the number destroyed; %d exceptions, %d records under a damaged number",
			st.id, st.profile, len(e.Transactions), damaged, clean, flagged, quarantined, unattributed, len(mine), len(misnumbered))
		for _, r := range misnumbered {
			if flagsOf(r) == "" {
				t.Errorf("%s (%s): record captured unflagged under receipt number %q, which the terminal never printed (%s %d)", st.id, st.profile, r.Receipt, r.Kind, r.Total)
			} else {
				t.Logf("%s: flagged record under a damaged receipt number %q (%s %d): %s", st.id, r.Receipt, r.Kind, r.Total, flagsOf(r))
			}
		}
	}
	if damagedTotal < 30 || quarTotal == 0 {
		t.Errorf("noise did too little to test anything: %d damaged, %d quarantined", damagedTotal, quarTotal)
	}
	ag.Stop(t)
	checkLogs(t, dir)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// fakePrinter accepts print jobs, answers each with a status byte and keeps every job's bytes.
type fakePrinter struct {
	ln   net.Listener
	mu   sync.Mutex
	jobs [][]byte
	done int
	wg   sync.WaitGroup
}

func newFakePrinter(t testing.TB) *fakePrinter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePrinter{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			i := len(p.jobs)
			p.jobs = append(p.jobs, nil)
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				c.Write([]byte{0x12}) // DLE EOT status reply: online
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					p.mu.Lock()
					p.jobs[i] = append(p.jobs[i], buf[:n]...)
					if err != nil {
						p.done++
					}
					p.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// finished returns the jobs once n of them have ended.
func (p *fakePrinter) finished(n int) ([][]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done < n {
		return nil, fmt.Errorf("printer finished %d of %d jobs (%d started)", p.done, n, len(p.jobs))
	}
	return append([][]byte(nil), p.jobs...), nil
}

func (p *fakePrinter) received() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, j := range p.jobs {
		n += len(j)
	}
	return n
}

// TestPrinterTapForwards: two network printer taps (tcp-listen with forward=) in the real
// agent. A simulated POS day and the five reference ESC/POS jobs are printed through them; the
// printers receive byte-identical data, status replies reach the POS, and the receipts reach
// the hub with the expected kinds and totals.
func TestPrinterTapForwards(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S032"
	pr1, pr2 := newFakePrinter(t), newFakePrinter(t)
	tap1, tap2 := freeAddr(t), freeAddr(t)
	cfg, _ := captureConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), "",
		captureTerm{"P1", "tcp-listen://" + tap1 + "?forward=" + pr1.ln.Addr().String(), "epson-tm-escpos"},
		captureTerm{"P2", "tcp-listen://" + tap2 + "?forward=" + pr2.ln.Addr().String(), "epson-tm-escpos"})
	ag := startAgent(t, dir, store, cfg)
	eventually(t, 30*time.Second, "both printer taps listening", func() error {
		if ag.Exited() {
			t.Fatalf("agent exited: %v", ag.Err)
		}
		b, _ := os.ReadFile(ag.Log)
		if n := bytes.Count(b, []byte("printer tap listening")); n < 2 {
			return fmt.Errorf("%d taps listening", n)
		}
		return nil
	})

	// Job 1: a simulated day printed by the simulator over TCP. The same seed written to a file
	// gives the reference bytes.
	const count = 80
	ref := filepath.Join(dir, "pos-day.bin")
	simArgs := []string{"terminal", "--profile", "epson-tm-escpos", "--terminal", "REG01", "--date", simDate, "--count", fmt.Sprint(count), "--rate", "0", "--seed", "7"}
	fileSim := start(t, "lanebridge-sim", filepath.Join(dir, "sim-file.log"), append(simArgs, "--out", "file://"+ref)...)
	tcpSim := start(t, "lanebridge-sim", filepath.Join(dir, "sim-P1.log"), append(simArgs, "--out", "tcp://"+tap1, "--totals", filepath.Join(dir, "P1.totals.json"))...)
	for _, p := range []*proc{fileSim, tcpSim} {
		<-p.Done
		if p.Err != nil {
			b, _ := os.ReadFile(p.Log)
			t.Fatalf("simulator: %v\n%s", p.Err, b)
		}
	}
	var exp terminal.Expected
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(dir, "P1.totals.json"))), &exp); err != nil {
		t.Fatal(err)
	}

	// Job 2: the reference receipts (sale by card, return, void, no-sale, Z report) written
	// by the test in odd-sized pieces, as a POS driver would, reading the printer's status.
	caseDir := filepath.Join(repoRoot(), "agent", "internal", "profile", "testdata", "epson-tm-escpos", "stream-all")
	job2 := must(os.ReadFile(filepath.Join(caseDir, "input.bin")))
	var golden []struct {
		Record *protocol.Record `json:"record"`
	}
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(caseDir, "expected.json"))), &golden); err != nil {
		t.Fatal(err)
	}
	pos, err := net.Dial("tcp", tap2)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := pos.Write(job2[:100]); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "first bytes at the printer", func() error {
		if pr2.received() < 100 {
			return fmt.Errorf("%d bytes", pr2.received())
		}
		return nil
	})
	firstBytes := time.Since(t0)
	for b := job2[100:]; len(b) > 0; {
		n := min(len(b), 777)
		if _, err := pos.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	pos.(*net.TCPConn).CloseWrite()
	status, err := io.ReadAll(pos)
	pos.Close()
	if err != nil || !bytes.Equal(status, []byte{0x12}) {
		t.Fatalf("status reply at the POS: %x, %v", status, err)
	}

	var jobs1, jobs2 [][]byte
	eventually(t, 10*time.Second, "both print jobs to end at the printers", func() (err error) {
		if jobs1, err = pr1.finished(1); err != nil {
			return err
		}
		jobs2, err = pr2.finished(1)
		return err
	})
	want1 := must(os.ReadFile(ref))
	if len(jobs1) != 1 || !bytes.Equal(jobs1[0], want1) {
		t.Errorf("printer 1: %d jobs, first %d bytes; POS sent one job of %d bytes (byte-identical: %v)", len(jobs1), len(jobs1[0]), len(want1), len(jobs1) > 0 && bytes.Equal(jobs1[0], want1))
	}
	if len(jobs2) != 1 || !bytes.Equal(jobs2[0], job2) {
		t.Errorf("printer 2: %d jobs, first %d bytes; POS sent one job of %d bytes", len(jobs2), len(jobs2[0]), len(job2))
	}
	if firstBytes > 2*time.Second {
		t.Errorf("the tap held the first bytes back for %v", firstBytes)
	}

	var want2 []protocol.Record
	for _, g := range golden {
		if g.Record != nil {
			want2 = append(want2, *g.Record)
		}
	}
	h.WaitRecords(t, store, int64(len(exp.Transactions)+len(want2)), 30*time.Second)
	// The reference jobs all print receipt 000123: the business key includes the kind.
	got := map[string]protocol.Record{}
	for _, r := range h.AllRecords(t, store) {
		n, _ := receiptNo(r.Receipt)
		got[fmt.Sprintf("%s/%d/%s", r.Terminal, n, r.Kind)] = r
	}
	for _, em := range exp.Transactions {
		n, _ := receiptNo(em.Receipt)
		r, ok := got[fmt.Sprintf("P1/%d/%s", n, em.Kind)]
		if !ok || string(r.Kind) != em.Kind || (em.Kind != "z_report" && r.Total != em.Total) || flagsOf(r) != "" {
			t.Errorf("P1 receipt %s: hub %+v, printed %s %d", em.Receipt, r, em.Kind, em.Total)
		}
	}
	for _, w := range want2 {
		n, _ := receiptNo(w.Receipt)
		r, ok := got[fmt.Sprintf("P2/%d/%s", n, w.Kind)]
		if !ok || r.Kind != w.Kind || r.Total != w.Total || r.BusinessDate != w.BusinessDate {
			t.Errorf("P2 receipt %s: hub %+v, want %s %d on %s", w.Receipt, r, w.Kind, w.Total, w.BusinessDate)
		}
	}
	t.Logf("printer 1 got %d bytes (%d transactions), printer 2 %d bytes (%d receipts); first bytes through the tap after %v",
		len(want1), len(exp.Transactions), len(job2), len(want2), firstBytes)
	ag.Stop(t)
	checkLogs(t, dir)
}

// testPANs are well-known test card numbers (Luhn-valid), built here so that no fixture file
// holds one.
func testPANs() []string {
	return []string{
		"4111" + "1111" + "1111" + "1111",
		"5500" + "0000" + "0000" + "0004",
		"3782" + "822463" + "10005",
		"6011" + "1111" + "1111" + "1117",
	}
}

// panForms are the ways a PAN may be printed: plain, in groups of 4 (Amex 4-6-5) with spaces
// or dashes.
func panForms(p string) []string {
	groups := []int{4, 4, 4, 4}
	if len(p) == 15 {
		groups = []int{4, 6, 5}
	}
	var gs []string
	i := 0
	for _, g := range groups {
		gs = append(gs, p[i:i+g])
		i += g
	}
	return []string{p, strings.Join(gs, " "), strings.Join(gs, "-")}
}

// epsonCol right-aligns value on a 42-column line, counting printed columns (ESC x n
// formatting commands take none).
func epsonCol(label, value string) string {
	return label + strings.Repeat(" ", max(2, 42-printedLen(label)-printedLen(value))) + value + "\n\r"
}

func printedLen(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			i += 2 // ESC, selector, argument
			continue
		}
		n++
	}
	return n
}

// epsonHead writes the start of Epson receipt n, up to its first item line (10.00).
func epsonHead(w *bytes.Buffer, n int) {
	w.WriteString("\x1b@")
	w.WriteString("             \x1bE\x01DEMO MART #0042\x1bE\x00\n\r")
	fmt.Fprintf(w, "11/26/2026 10:%02d  REG01  CLERK 07\n\r", n%60)
	fmt.Fprintf(w, "TRANS %06d\n\r", n)
	w.WriteString(strings.Repeat("-", 42) + "\n\r")
	w.WriteString(epsonCol("ITEM 1", "10.00"))
}

// cardStream is an ESC/POS receipt stream full of card data: PANs in every form on card slip
// lines and in a barcode, track 1 and 2 lines, CVV/PIN lines, and a burst of text outside any
// receipt (quarantined) holding a PAN.
func cardStream() (stream []byte, receipts int, cardLines int) {
	var w bytes.Buffer
	rcpt := 500
	for pi, p := range testPANs() {
		for fi, form := range panForms(p) {
			rcpt++
			receipts++
			if fi == 1 {
				// Text outside a receipt, as a terminal prints after a reboot.
				w.WriteString("SALE 12.00 CARD " + form + " EXP 12/29\n\r")
				cardLines++
			}
			epsonHead(&w, rcpt)
			w.WriteString(epsonCol("SUBTOTAL", "10.00"))
			w.WriteString(epsonCol("TAX 8.25%", "0.83"))
			w.WriteString(epsonCol("\x1bE\x01TOTAL", "10.83\x1bE\x00"))
			w.WriteString(epsonCol("VISA ************"+p[len(p)-4:], "10.83"))
			w.WriteString("ACCT " + form + "\n\r")
			w.WriteString(fmt.Sprintf("%%B%s^DOE/JOHN^29121011234567890000?\n\r", p))
			w.WriteString(fmt.Sprintf(";%s=29121010000000000000?\n\r", p))
			w.WriteString(fmt.Sprintf("CVV2 7%d%d\n\r", pi, fi))
			w.WriteString("PIN 4321\n\r")
			cardLines += 5
			if fi == 2 {
				// The card number as a CODE128 barcode (GS k m=73 n d1..dn).
				data := "{B" + p
				w.WriteString("\x1dk\x49" + string(rune(len(data))) + data)
				cardLines++
			}
			w.WriteString("\x1dV\x00")
		}
	}
	return w.Bytes(), receipts, cardLines
}

// TestCardDataNeverStored: a serial stream full of real-looking test PANs, track data and CVV
// lines goes through the real agent to the hub. Afterwards no byte the agent or the hub wrote
// (data directories, databases, WAL and journal files, logs) holds a PAN, in any printed form,
// or the track data; the masked form did reach the hub, and the agent counted the maskings.
func TestCardDataNeverStored(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S033"
	line := newPTYLine(t)
	cfg, listen := captureConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), fastProfiles(t, dir, "epson-tm-escpos"),
		captureTerm{"T1", "serial://" + line.Agent + "?baud=9600", "epson-tm-escpos"})
	ag := startAgent(t, dir, store, cfg)
	waitPortsOpen(t, ag, line.Agent)

	stream, receipts, cardLines := cardStream()
	f, err := os.OpenFile(line.Sim, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Small pieces, so card numbers are split across reads.
	for b := stream; len(b) > 0; {
		n := min(len(b), 13)
		if _, err := f.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	f.Close()
	h.WaitRecords(t, store, int64(receipts), 30*time.Second)
	var excs []hubException
	eventually(t, 20*time.Second, "quarantine exceptions for the text outside receipts", func() (err error) {
		if excs, err = h.exceptions(store, "capture_quarantined"); err != nil {
			return err
		}
		if len(excs) < len(testPANs()) {
			return fmt.Errorf("%d exceptions", len(excs))
		}
		return nil
	})

	// The masked form reached the hub: in records (flags name the unmatched ACCT line) and in
	// the quarantine exceptions.
	recs := h.AllRecords(t, store)
	hubText, _ := json.Marshal(recs)
	excText, _ := json.Marshal(excs)
	maskedSeen := 0
	for _, p := range testPANs() {
		for _, form := range panForms(p) {
			masked := []byte(form)
			digits := 0
			for i, c := range masked {
				if c >= '0' && c <= '9' {
					digits++
					if digits > 6 && digits <= len(p)-4 {
						masked[i] = '*'
					}
				}
			}
			if bytes.Contains(hubText, masked) || bytes.Contains(excText, masked) {
				maskedSeen++
			}
		}
	}
	if maskedSeen == 0 {
		t.Errorf("no masked card number (first 6 + last 4) reached the hub:\nrecords: %s\nexceptions: %s", tail(hubText, 3000), tail(excText, 3000))
	}
	brandSeen := 0
	for _, r := range recs {
		for _, td := range r.Tenders {
			if td.Card != nil && td.Card.Brand != "" && len(td.Card.Last4) == 4 {
				brandSeen++
			}
		}
	}
	if brandSeen != receipts {
		t.Errorf("%d of %d receipts carry a card tender with brand and last 4", brandSeen, receipts)
	}

	// The agent counted every line it masked or removed.
	metrics, err := httpGet("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var masks int
	if m := regexp.MustCompile(`(?m)^lanebridge_agent_card_masks_total (\d+)$`).FindSubmatch(metrics); m != nil {
		masks, _ = strconv.Atoi(string(m[1]))
	}
	if masks < cardLines {
		t.Errorf("agent counted %d masked lines, the stream had %d lines with card data", masks, cardLines)
	}

	ag.Stop(t)
	h.P.Stop(t)

	var forbidden []string
	for _, p := range testPANs() {
		forbidden = append(forbidden, panForms(p)...)
	}
	forbidden = append(forbidden, "DOE/JOHN", "29121011234567890000", "=29121010000000000000", "CVV2 7", "PIN 4321")
	var scanned, bytesScanned int
	var files []string
	var agentMasked, hubMasked bool
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read %s: %v", p, err)
			return nil
		}
		scanned++
		bytesScanned += len(b)
		files = append(files, strings.TrimPrefix(p, dir+string(filepath.Separator)))
		for _, s := range forbidden {
			if i := bytes.Index(b, []byte(s)); i >= 0 {
				t.Errorf("%s holds card data %q at offset %d", strings.TrimPrefix(p, dir), s, i)
			}
		}
		rel := strings.TrimPrefix(p, dir+string(filepath.Separator))
		if bytes.Contains(b, []byte("4111 11** **** 1111")) {
			agentMasked = agentMasked || strings.HasPrefix(rel, "agent-"+store+string(filepath.Separator))
			hubMasked = hubMasked || strings.HasPrefix(rel, "hub"+string(filepath.Separator))
		}
		return nil
	})
	if !agentMasked || !hubMasked {
		t.Errorf("the masked card number is not in the agent's data dir (%v) or the hub's (%v): the scan looked in the wrong place", agentMasked, hubMasked)
	}
	t.Logf("scanned %d files (%s), %d bytes; %d masked forms at the hub, %d card tenders, %d lines counted masked", scanned, strings.Join(files, " "), bytesScanned, maskedSeen, brandSeen, masks)
	checkLogs(t, dir)
}

func httpGet(url string) ([]byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return b, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}
