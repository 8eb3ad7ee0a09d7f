package e2e

// End-to-end tests of the tools for people who write profiles (issue 3): `capture` records a
// masked raw capture from a serial line, `profile list|show|test` inspects profiles and runs
// one on a capture, and `reparse` re-parses a terminal's raw journal after a profile fix.
// All run the real agent binary; serial lines are pseudo-terminals (see capture_test.go).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runAgentCmd runs one lanebridge-agent command to completion and returns its output and exit
// code. Its output is also kept in dir/cli.log for checkLogs.
func runAgentCmd(t testing.TB, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "lanebridge-agent"), args...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		code = ee.ExitCode()
	default:
		t.Fatalf("lanebridge-agent %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	f, ferr := os.OpenFile(filepath.Join(dir, "cli.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if ferr != nil {
		t.Fatal(ferr)
	}
	fmt.Fprintf(f, "$ lanebridge-agent %s (exit %d)\n%s%s\n", strings.Join(args, " "), code, out.String(), errb.String())
	f.Close()
	return out.String(), errb.String(), code
}

// mustAgentCmd is runAgentCmd for a command that must succeed.
func mustAgentCmd(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, errs, code := runAgentCmd(t, dir, args...)
	if code != 0 {
		t.Fatalf("lanebridge-agent %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// escposSale is one Epson TM receipt as a PC-POS prints it (42 columns, LF CR line ends,
// framed by ESC @ and a cut).
type escposSale struct {
	receipt int
	price   int64    // cents, one item
	total   int64    // cents printed on the TOTAL line; 0: price + tax (correct)
	noTotal bool     // leave the TOTAL line out (the parser must quarantine it)
	extra   []string // lines printed after the tender (e.g. a card slip)
}

func (s escposSale) tax() int64 { return (s.price*825 + 5000) / 10000 } // 8.25%, half up

// want is the total the receipt really has.
func (s escposSale) want() int64 { return s.price + s.tax() }

func (s escposSale) bytes() []byte {
	var w bytes.Buffer
	w.WriteString("\x1b@")
	w.WriteString("             \x1bE\x01DEMO MART #0042\x1bE\x00\n\r")
	fmt.Fprintf(&w, "11/26/2026 10:%02d  REG01  CLERK 07\n\r", s.receipt%60)
	fmt.Fprintf(&w, "TRANS %06d\n\r", s.receipt)
	w.WriteString(strings.Repeat("-", 42) + "\n\r")
	w.WriteString(epsonCol(fmt.Sprintf("ITEM %d", s.receipt), money(s.price)))
	w.WriteString(epsonCol("SUBTOTAL", money(s.price)))
	w.WriteString(epsonCol("TAX 8.25%", money(s.tax())))
	printed := s.want()
	if s.total != 0 {
		printed = s.total
	}
	if !s.noTotal {
		w.WriteString(epsonCol("TOTAL", money(printed)))
	}
	w.WriteString(epsonCol("CASH", money(printed)))
	for _, l := range s.extra {
		w.WriteString(l + "\n\r")
	}
	w.WriteString("\x1dV\x00")
	return w.Bytes()
}

func money(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

// writeSerial writes b to a pseudo-terminal in small pieces, as a slow line delivers it.
func writeSerial(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for len(b) > 0 {
		n := min(len(b), 17)
		if _, err := f.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
}

// TestToolingCapture: `capture` records what a serial line carries into a file with card
// numbers masked before they are written, and `profile test` parses that file into the
// receipts that were printed, with their totals.
func TestToolingCapture(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	line := newPTYLine(t)
	out := filepath.Join(dir, "sample.cap")
	capt := start(t, "lanebridge-agent", filepath.Join(dir, "capture.log"),
		"capture", "--source", "serial://"+line.Agent+"?baud=38400", "--out", out, "--duration", "5s")
	waitPortsOpen(t, capt, line.Agent)

	pan := testPANs()[0]
	var slip []string
	for _, form := range panForms(pan) {
		slip = append(slip, "ACCT "+form)
	}
	sales := []escposSale{
		{receipt: 701, price: 1000},
		{receipt: 702, price: 2599, extra: slip},
	}
	var stream []byte
	for _, s := range sales {
		stream = append(stream, s.bytes()...)
	}
	writeSerial(t, line.Sim, stream)

	select {
	case <-capt.Done:
	case <-time.After(30 * time.Second):
		t.Fatal("capture did not stop after its --duration")
	}
	logb, _ := os.ReadFile(capt.Log)
	if capt.Err != nil {
		t.Fatalf("capture: %v\n%s", capt.Err, logb)
	}
	if !regexp.MustCompile(`sample\.cap: \d+ bytes, card data masked \(([1-9]\d*) lines`).Match(logb) {
		t.Errorf("capture did not report what it wrote and masked:\n%s", logb)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\x1b@", "TRANS 000701", "TRANS 000702", "\x1dV\x00", epsonCol("TOTAL", "28.13")} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("capture lacks %q: the raw stream was not recorded as sent (%d of %d bytes)", want, len(got), len(stream))
		}
	}
	for _, form := range panForms(pan) {
		if bytes.Contains(got, []byte(form)) {
			t.Errorf("capture holds the card number %q", form)
		}
	}
	if !bytes.Contains(got, []byte("4111 11** **** 1111")) {
		t.Errorf("capture lacks the masked card number (first 6 + last 4):\n%q", got)
	}

	res := mustAgentCmd(t, dir, "profile", "test", "--profile", "epson-tm-escpos", out)
	for _, s := range sales {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^#\d+ sale\s+receipt %06d\s+2026-11-26 \S+ total %s tenders cash %s`,
			s.receipt, regexp.QuoteMeta(money(s.want())), regexp.QuoteMeta(money(s.want()))))
		if !re.MatchString(res) {
			t.Errorf("profile test does not show receipt %06d as a sale of %s:\n%s", s.receipt, money(s.want()), res)
		}
	}
	if !strings.Contains(res, "2 transaction(s): 2 parsed") || !strings.Contains(res, ", 0 quarantined") {
		t.Errorf("profile test summary is wrong:\n%s", res)
	}
	if strings.Contains(res, pan) {
		t.Errorf("profile test output shows the card number")
	}
	checkLogs(t, dir)
}

// shippedProfileNames reads the names of firmware-profiles/*.yaml.
func shippedProfileNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(), "firmware-profiles", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped profiles: %v", err)
	}
	re := regexp.MustCompile(`(?m)^name:\s*(\S+)\s*$`)
	var names []string
	for _, f := range files {
		m := re.FindSubmatch(must(os.ReadFile(f)))
		if m == nil {
			t.Fatalf("%s: no name", f)
		}
		names = append(names, string(m[1]))
	}
	return names
}

// TestToolingProfile: `profile list` shows every shipped profile, `profile show` prints one
// that loads back as a profile file and parses the same, `profile test` reports parsed,
// quarantined (with the reason) and flagged transactions, and a profile file with a key the
// format does not have is refused with that key named.
func TestToolingProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)

	list := mustAgentCmd(t, dir, "profile", "list")
	names := shippedProfileNames(t)
	for _, n := range names {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(n) + `\s+v\d+`).MatchString(list) {
			t.Errorf("profile list lacks %s:\n%s", n, list)
		}
	}
	if got := len(strings.Split(strings.TrimSpace(list), "\n")); got != len(names) {
		t.Errorf("profile list shows %d lines, %d profiles are shipped:\n%s", got, len(names), list)
	}

	// A sample: a good sale, one without a TOTAL line (quarantined), one whose TOTAL is not
	// Σlines + tax (captured, flagged).
	sample := filepath.Join(dir, "sample.cap")
	good, broken, flagged := escposSale{receipt: 801, price: 1999}, escposSale{receipt: 802, price: 500, noTotal: true}, escposSale{receipt: 803, price: 1000, total: 1200}
	if err := os.WriteFile(sample, append(append(good.bytes(), broken.bytes()...), flagged.bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	res := mustAgentCmd(t, dir, "profile", "test", sample, "--profile", "epson-tm-escpos", "--terminal", "T7")
	checkTestOutput := func(res string) {
		t.Helper()
		goodRe := regexp.MustCompile(`(?m)^#1 sale\s+receipt 000801\s+2026-11-26 \S+ total 21\.64 tenders cash 21\.64$`)
		quarRe := regexp.MustCompile(`(?m)^#2 QUARANTINED: .*no total line in a sale.*\n(    .*\n)*    TRANS 000802`)
		flagRe := regexp.MustCompile(`(?m)^#3 sale\s+receipt 000803 .* total 12\.00 tenders cash 12\.00\s+INVARIANT FAILED: .*invariant lines: .*10\.83.*12\.00`)
		for what, re := range map[string]*regexp.Regexp{"the good sale": goodRe, "the quarantined one with its reason and raw text": quarRe, "the invariant failure": flagRe} {
			if !re.MatchString(res) {
				t.Errorf("profile test does not show %s (%s):\n%s", what, re, res)
			}
		}
		if !strings.Contains(res, "3 transaction(s): 2 parsed (1 flagged), 1 quarantined") {
			t.Errorf("profile test summary is wrong:\n%s", res)
		}
	}
	checkTestOutput(res)

	// show prints the profile as YAML that is itself a valid profile file giving the same
	// results.
	show := mustAgentCmd(t, dir, "profile", "show", "epson-tm-escpos")
	for _, want := range []string{"name: epson-tm-escpos", "dialect: escpos", "TOTAL"} {
		if !strings.Contains(show, want) {
			t.Errorf("profile show lacks %q:\n%s", want, show)
		}
	}
	shown := filepath.Join(dir, "shown.yaml")
	if err := os.WriteFile(shown, []byte(show), 0o644); err != nil {
		t.Fatal(err)
	}
	checkTestOutput(mustAgentCmd(t, dir, "profile", "test", "--profile", shown, "--terminal", "T7", sample))
	// A profiles dir overrides a shipped profile by name, for list and show.
	custom := filepath.Join(dir, "custom")
	if err := os.MkdirAll(custom, 0o755); err != nil {
		t.Fatal(err)
	}
	shipped := must(os.ReadFile(filepath.Join(repoRoot(), "firmware-profiles", "epson-tm-escpos.yaml")))
	over := regexp.MustCompile(`(?m)^description: .*$`).ReplaceAll(shipped, []byte("description: Store 42's own TM-T20"))
	if err := os.WriteFile(filepath.Join(custom, "epson-tm-escpos.yaml"), over, 0o644); err != nil {
		t.Fatal(err)
	}
	if l := mustAgentCmd(t, dir, "profile", "list", "--profiles-dir", custom); !regexp.MustCompile(`(?m)^epson-tm-escpos .*Store 42's own TM-T20$`).MatchString(l) {
		t.Errorf("profile list --profiles-dir does not show the override:\n%s", l)
	}
	if s := mustAgentCmd(t, dir, "profile", "show", "epson-tm-escpos", "--profiles-dir", custom); !strings.Contains(s, "Store 42's own TM-T20") {
		t.Errorf("profile show --profiles-dir does not show the override:\n%s", s)
	}
	if _, errs, code := runAgentCmd(t, dir, "profile", "show", "no-such-profile"); code == 0 || !strings.Contains(errs, `"no-such-profile" not found`) {
		t.Errorf("profile show of an unknown name: exit %d, %s", code, errs)
	}

	// A profile file with a key the format does not have.
	src := must(os.ReadFile(filepath.Join(repoRoot(), "firmware-profiles", "epson-tm-escpos.yaml")))
	bad := bytes.Replace(src, []byte("\ndecoding:\n"), []byte("\ndecoding:\n  linend: crlf\n"), 1)
	if bytes.Equal(bad, src) {
		t.Fatal("epson-tm-escpos.yaml has no decoding section to spoil")
	}
	badDir := filepath.Join(dir, "bad")
	if err := os.MkdirAll(badDir, 0o755); err != nil {
		t.Fatal(err)
	}
	badPath := filepath.Join(badDir, "epson-tm-escpos.yaml")
	if err := os.WriteFile(badPath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runAgentCmd(t, dir, "profile", "test", "--profile", badPath, sample)
	if code == 0 || !strings.Contains(errs, "linend") {
		t.Errorf("profile test with an unknown key: exit %d, stderr does not name the key:\n%s%s", code, out, errs)
	}
	out, errs, code = runAgentCmd(t, dir, "profile", "list", "--profiles-dir", badDir)
	if code == 0 || !strings.Contains(errs, "linend") {
		t.Errorf("profile list with a profiles dir holding an unknown key: exit %d, stderr does not name the key:\n%s%s", code, out, errs)
	}
	checkLogs(t, dir)
}

var reparseCounts = regexp.MustCompile(`terminal T1: (\d+) journal entries re-parsed with epson-tm-escpos v\d+: (\d+) record\(s\) newly captured, (\d+) already captured, (\d+) still unparseable`)

// reparse runs `reparse` and returns its counts: entries, newly captured, already captured,
// still unparseable.
func reparse(t testing.TB, dir string, args ...string) [4]int {
	t.Helper()
	out := mustAgentCmd(t, dir, append([]string{"reparse"}, args...)...)
	m := reparseCounts.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("reparse printed no counts:\n%s", out)
	}
	var n [4]int
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return n
}

// reparseCase is a hub and an agent reading one Epson terminal over a pseudo-terminal with a
// broken copy of the shipped profile in its profiles_dir; the sales were printed.
type reparseCase struct {
	dir, cfg, profPath string
	fixed              []byte // the shipped profile
	h                  *hub
	ag                 *proc
}

// startReparseCase breaks the shipped epson-tm-escpos profile by replacing from with to, runs
// the agent with it and prints sales on the terminal.
func startReparseCase(t *testing.T, store, from, to string, sales []escposSale) reparseCase {
	t.Helper()
	r := reparseCase{dir: t.TempDir()}
	dumpOnFailure(t, r.dir)
	r.h = startHub(t, r.dir)
	r.fixed = must(os.ReadFile(filepath.Join(repoRoot(), "firmware-profiles", "epson-tm-escpos.yaml")))
	broken := bytes.Replace(r.fixed, []byte(from), []byte(to), 1)
	if bytes.Equal(broken, r.fixed) {
		t.Fatalf("epson-tm-escpos.yaml: the rule to break (%s) is not there any more", from)
	}
	profDir := filepath.Join(r.dir, "profiles")
	r.profPath = filepath.Join(profDir, "epson-tm-escpos.yaml")
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.profPath, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	line := newPTYLine(t)
	r.cfg, _ = captureConfig(t, r.dir, store, enroll(t, r.dir, store, "tcp://"+r.h.MQTT), profDir,
		captureTerm{"T1", "serial://" + line.Agent + "?baud=38400", "epson-tm-escpos"})
	r.ag = startAgent(t, r.dir, store, r.cfg)
	waitPortsOpen(t, r.ag, line.Agent)
	var stream []byte
	for _, s := range sales {
		stream = append(stream, s.bytes()...)
	}
	writeSerial(t, line.Sim, stream)
	return r
}

// TestToolingReparse: a terminal runs with a profile whose TOTAL rule is broken, so every
// receipt is quarantined and shows up at the hub as an exception. `reparse` refuses to run
// beside the agent. With the agent stopped and the profile fixed, reparse captures every
// receipt; a second run captures nothing more; and once the agent runs again the hub has each
// receipt exactly once with its total.
func TestToolingReparse(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const store = "S040"
	sales := []escposSale{{receipt: 901, price: 1000}, {receipt: 902, price: 4550}, {receipt: 903, price: 12345}, {receipt: 904, price: 99}}
	r := startReparseCase(t, store, `'^(?:REFUND )?TOTAL\s+`, `'^(?:REFUND )?TOTAAL\s+`, sales)
	dir, h, cfg, profPath, fixed, ag := r.dir, r.h, r.cfg, r.profPath, r.fixed, r.ag

	eventually(t, 30*time.Second, "a quarantine exception per receipt at the hub", func() error {
		ex, err := h.exceptions(store, "capture_quarantined")
		if err != nil {
			return err
		}
		if len(ex) != len(sales) {
			return fmt.Errorf("%d exceptions", len(ex))
		}
		for _, x := range ex {
			if !strings.Contains(x.Detail, "no total line") {
				return fmt.Errorf("exception without the reason: %+v", x)
			}
		}
		return nil
	})
	if si, err := h.Store(store); err != nil || si.Records != 0 {
		t.Fatalf("with the broken profile the hub has %d records (%v), want 0", si.Records, err)
	}

	// Beside the running agent, reparse refuses and says why.
	out, errs, code := runAgentCmd(t, dir, "reparse", "--terminal", "T1", "--config", cfg)
	if code == 0 || !strings.Contains(errs, "the agent is running: stop it first") {
		t.Fatalf("reparse while the agent runs: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	ag.Stop(t)
	if ag.Err != nil {
		t.Fatalf("agent stopped with %v", ag.Err)
	}

	if _, errs, code := runAgentCmd(t, dir, "reparse", "--terminal", "T9", "--config", cfg); code == 0 || !strings.Contains(errs, `"T9" is not in`) {
		t.Errorf("reparse of an unknown terminal: exit %d, %s", code, errs)
	}
	// Still broken: nothing to capture, the reasons are shown.
	if n := reparse(t, dir, "--terminal", "T1", "--config", cfg); n[1] != 0 || n[3] != len(sales) {
		t.Fatalf("reparse with the broken profile: %d newly captured, %d still unparseable; want 0 and %d", n[1], n[3], len(sales))
	}
	// Fix the profile.
	if err := os.WriteFile(profPath, fixed, 0o644); err != nil {
		t.Fatal(err)
	}
	// --since after everything: the receipts are parsed but not taken.
	if n := reparse(t, dir, "--terminal", "T1", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "--config", cfg); n[1] != 0 || n[2] != 0 {
		t.Fatalf("reparse --since an hour ahead captured %d (%d already), want nothing", n[1], n[2])
	}
	n := reparse(t, dir, "--terminal", "T1", "--config", cfg)
	if n[0] == 0 || n[1] != len(sales) || n[2] != 0 || n[3] != 0 {
		t.Fatalf("reparse after the fix: %d entries, %d newly captured, %d already, %d still unparseable; want %d newly captured", n[0], n[1], n[2], n[3], len(sales))
	}
	// Again, naming the fixed file: nothing more.
	if n := reparse(t, dir, "--terminal", "T1", "--profile", profPath, "--config", cfg); n[1] != 0 || n[2] != len(sales) || n[3] != 0 {
		t.Fatalf("second reparse: %d newly captured, %d already, %d still unparseable; want 0, %d, 0", n[1], n[2], n[3], len(sales))
	}

	ag = startAgent(t, dir, store, cfg)
	h.WaitRecords(t, store, int64(len(sales)), 30*time.Second)
	// The agent replays its journal on start with the fixed profile: that must not add the
	// receipts a second time. Wait until the count has held for a few heartbeats.
	held := 0
	eventually(t, 20*time.Second, "the record count to hold", func() error {
		si, err := h.Store(store)
		if err != nil {
			return err
		}
		if si.Records != int64(len(sales)) {
			t.Fatalf("hub has %d records after the agent restarted, want %d", si.Records, len(sales))
		}
		if held++; held < 60 {
			return fmt.Errorf("held %d polls", held)
		}
		return nil
	})
	got := map[string]int64{}
	for _, r := range h.AllRecords(t, store) {
		if _, dup := got[r.Receipt]; dup {
			t.Errorf("receipt %s at the hub twice", r.Receipt)
		}
		got[r.Receipt] = r.Total
		if r.Terminal != "T1" || r.Kind != "sale" || r.BusinessDate != simDate {
			t.Errorf("receipt %s: terminal %s kind %s date %s", r.Receipt, r.Terminal, r.Kind, r.BusinessDate)
		}
		if f := flagsOf(r); f != "" {
			t.Errorf("receipt %s flagged: %s", r.Receipt, f)
		}
	}
	var sum int64
	for _, s := range sales {
		rc := fmt.Sprintf("%06d", s.receipt)
		if tot, ok := got[rc]; !ok || tot != s.want() {
			t.Errorf("receipt %s: hub total %d (present %v), printed %d", rc, tot, ok, s.want())
		}
		sum += s.want()
	}
	d, err := h.day(store, simDate)
	if err != nil {
		t.Fatal(err)
	}
	var daySales, dayCount int64
	for _, k := range d.Kinds {
		if k.Kind == "sale" {
			daySales, dayCount = k.Total, k.Count
		}
	}
	if dayCount != int64(len(sales)) || daySales != sum {
		t.Errorf("day %s at the hub: %d sales totalling %d, printed %d totalling %d", simDate, dayCount, daySales, len(sales), sum)
	}
	ag.Stop(t)
	checkLogs(t, dir)
}

// TestToolingReparseLeavesCapturedAlone: the broken profile mis-reads the TOTAL line, so small
// receipts are captured (flagged, with a wrong total), a small one reads right by chance, and a
// large one is quarantined. After the fix, reparse captures only the quarantined receipt: the
// ones already captured are left alone even though the fixed profile reads a different total
// for them, so no receipt reaches the hub twice.
func TestToolingReparseLeavesCapturedAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const store = "S041"
	// "10.83" reads as 0.83, "1.07" as 1.07; "133.63" does not match (no total: quarantined).
	sales := []escposSale{{receipt: 911, price: 1000}, {receipt: 912, price: 4550}, {receipt: 913, price: 12345}, {receipt: 914, price: 99}}
	r := startReparseCase(t, store, `'^(?:REFUND )?TOTAL\s+(?P<amount>-?[\d,]+\.\d\d)$'`, `'^(?:REFUND )?TOTAL\s+\d?(?P<amount>\d\.\d\d)$'`, sales)
	r.h.WaitRecords(t, store, 3, 30*time.Second)
	eventually(t, 30*time.Second, "the quarantine exception at the hub", func() error {
		ex, err := r.h.exceptions(store, "capture_quarantined")
		if err != nil {
			return err
		}
		if len(ex) != 1 || !strings.Contains(ex[0].Detail, "TRANS 000913") {
			return fmt.Errorf("exceptions %+v", ex)
		}
		return nil
	})
	before := map[string]int64{}
	for _, rec := range r.h.AllRecords(t, store) {
		before[rec.Receipt] = rec.Total
	}
	if before["000911"] == sales[0].want() || before["000914"] != sales[3].want() {
		t.Fatalf("the broken profile did not do what this test needs: hub has %v", before)
	}
	r.ag.Stop(t)

	if err := os.WriteFile(r.profPath, r.fixed, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := reparse(t, r.dir, "--terminal", "T1", "--config", r.cfg); n[1] != 1 || n[2] != 3 || n[3] != 0 {
		t.Fatalf("reparse after the fix: %d newly captured, %d already, %d still unparseable; want 1, 3, 0", n[1], n[2], n[3])
	}
	if n := reparse(t, r.dir, "--terminal", "T1", "--config", r.cfg); n[1] != 0 || n[2] != 4 {
		t.Fatalf("second reparse: %d newly captured, %d already; want 0, 4", n[1], n[2])
	}
	r.ag = startAgent(t, r.dir, store, r.cfg)
	r.h.WaitRecords(t, store, 4, 30*time.Second)
	held := 0
	eventually(t, 20*time.Second, "the record count to hold", func() error {
		si, err := r.h.Store(store)
		if err != nil {
			return err
		}
		if si.Records != 4 {
			t.Fatalf("hub has %d records after the agent restarted, want 4", si.Records)
		}
		if held++; held < 60 {
			return fmt.Errorf("held %d polls", held)
		}
		return nil
	})
	seen := map[string]bool{}
	for _, rec := range r.h.AllRecords(t, store) {
		if seen[rec.Receipt] {
			t.Errorf("receipt %s at the hub twice", rec.Receipt)
		}
		seen[rec.Receipt] = true
		switch want, ok := before[rec.Receipt]; {
		case ok && rec.Total != want:
			t.Errorf("receipt %s: captured record changed from %d to %d", rec.Receipt, want, rec.Total)
		case !ok && (rec.Receipt != "000913" || rec.Total != sales[2].want()):
			t.Errorf("re-parsed receipt %s total %d, want 000913 total %d", rec.Receipt, rec.Total, sales[2].want())
		}
	}
	r.ag.Stop(t)
	checkLogs(t, r.dir)
}
