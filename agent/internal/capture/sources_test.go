package capture

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

// TestTCPListenForwardByteIdentical: a POS prints through the tap to a fake printer; the printer
// receives exactly the POS's bytes (card numbers included: the tap masks only what it stores),
// status replies reach the POS, and the receipts are captured.
func TestTCPListenForwardByteIdentical(t *testing.T) {
	p := shippedProfile(t, "epson-tm-escpos")
	job := testdata(t, "epson-tm-escpos/stream-all/input.bin")
	wantRecs, _ := reference(p, "T1", job)

	printer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer printer.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := printer.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte{0x12}) // a status byte (DLE EOT reply)
		b, _ := io.ReadAll(c)
		got <- b
	}()

	e := openEnv(t, t.TempDir())
	defer e.close()
	pl := newTestPipeline(e, e.sp, p)
	tap := &TCPListen{Addr: "127.0.0.1:0", Forward: printer.Addr().String(), Masker: pan.New(pan.Options{}), Pipeline: pl, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- tap.Run(ctx) }()
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	addr, err := tap.ListenAddr(actx)
	acancel()
	if err != nil {
		t.Fatal(err)
	}
	pos, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Write in odd-sized pieces, as a POS driver would.
	for b := job; len(b) > 0; {
		n := min(len(b), 777)
		if _, err := pos.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	status := make([]byte, 1)
	if _, err := io.ReadFull(pos, status); err != nil || status[0] != 0x12 {
		t.Fatalf("status reply: %x, %v", status, err)
	}
	pos.(*net.TCPConn).CloseWrite()
	var down []byte
	select {
	case down = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("printer received nothing")
	}
	t.Logf("relayed %d bytes in %v", len(down), time.Since(start))
	if !bytes.Equal(down, job) {
		t.Fatalf("printer received %d bytes, differing from the %d sent", len(down), len(job))
	}
	pos.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(e.records(t)) < len(wantRecs) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range e.records(t) {
		keys = append(keys, recKey(r))
	}
	if strings.Join(keys, "\n") != strings.Join(wantRecs, "\n") {
		t.Fatalf("captured:\n%s\nwant:\n%s", strings.Join(keys, "\n"), strings.Join(wantRecs, "\n"))
	}
}

// TestDirProcessesOnceAcrossRestarts: files are captured once and moved to done/; a restart
// (here after every file) neither repeats nor loses.
func TestDirProcessesOnceAcrossRestarts(t *testing.T) {
	p := shippedProfile(t, "csv-export")
	input := testdata(t, "csv-export/day/input.csv")
	wantRecs, wantQuar := reference(p, "T1", input)
	dir, data := t.TempDir(), t.TempDir()
	e := openEnv(t, data)
	defer e.close()
	run := func(d time.Duration) {
		pl := newTestPipeline(e, e.sp, p)
		src := &Dir{Path: dir, Masker: pan.New(pan.Options{}), Pipeline: pl, Log: slog.New(slog.DiscardHandler), Poll: 20 * time.Millisecond, Settle: -1}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if err := src.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		name := filepath.Join(dir, "export-"+string(rune('a'+i))+".csv")
		if err := os.WriteFile(name, input, 0o644); err != nil {
			t.Fatal(err)
		}
		run(700 * time.Millisecond)
		if _, err := os.Stat(name); !os.IsNotExist(err) {
			t.Fatalf("%s not moved to done/: %v", name, err)
		}
	}
	run(300 * time.Millisecond) // nothing left: nothing new
	if n := len(e.records(t)); n != 3*len(wantRecs) {
		t.Fatalf("captured %d records, want %d", n, 3*len(wantRecs))
	}
	if q := e.sp.Stats().QuarantineCount; int(q) != 3*len(wantQuar) {
		t.Fatalf("quarantined %d, want %d", q, 3*len(wantQuar))
	}
	done, _ := filepath.Glob(filepath.Join(dir, "done", "*.csv"))
	if len(done) != 3 {
		t.Fatalf("done/ holds %d files, want 3", len(done))
	}
}

func TestParseSerialURL(t *testing.T) {
	def := profile.Transport{Baud: 9600, DataBits: 8, Parity: "none", StopBits: 1}
	tests := []struct {
		in   string
		want SerialConfig
		bad  bool
	}{
		{in: "serial:///dev/ttyS0", want: SerialConfig{"/dev/ttyS0", 9600, 8, "none", 1}},
		{in: "serial:///dev/ttyUSB0?baud=19200&parity=even&data_bits=7&stop_bits=2", want: SerialConfig{"/dev/ttyUSB0", 19200, 7, "even", 2}},
		{in: "serial://COM3?baud=4800", want: SerialConfig{"COM3", 4800, 8, "none", 1}},
		{in: "serial://COM10", want: SerialConfig{`\\.\COM10`, 9600, 8, "none", 1}},
		{in: "serial:///COM12", want: SerialConfig{`\\.\COM12`, 9600, 8, "none", 1}},
		{in: "serial:///dev/ttyS0?baud=fast", bad: true},
		{in: "serial:///dev/ttyS0?parity=maybe", bad: true},
		{in: "serial:///dev/ttyS0?speed=9600", bad: true},
		{in: "serial://", bad: true},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseSerialURL(u, def)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseSerialURL(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSerialURL(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestLineMaskerSplitPAN(t *testing.T) {
	m := pan.New(pan.Options{})
	in := []byte("VISA 4111 1111 1111 1111   12.00\n%B4111111111111111^DOE/JOHN^2912101?\nTOTAL 12.00\n")
	for split := 1; split < len(in); split++ {
		lm := &LineMasker{M: m}
		out := append(lm.Write(in[:split]), lm.Write(in[split:])...)
		out = append(out, lm.Flush()...)
		if bytes.Contains(out, []byte("1111 1111 1111")) || bytes.Contains(out, []byte("DOE/JOHN")) {
			t.Fatalf("split at %d leaked card data: %q", split, out)
		}
		if !bytes.Contains(out, []byte("TOTAL 12.00\n")) || !bytes.Contains(out, []byte("4111 11** **** 1111")) {
			t.Fatalf("split at %d lost text: %q", split, out)
		}
	}
	// A long run without terminators is cut where no PAN can span the cut.
	lm := &LineMasker{M: m}
	long := append(bytes.Repeat([]byte{0xff}, maxMaskLine), []byte("x 4111 1111 1111 1111")...)
	var out []byte
	for i := 0; i < len(long); i += 100 {
		out = append(out, lm.Write(long[i:min(i+100, len(long))])...)
	}
	out = append(out, lm.Flush()...)
	if bytes.Contains(out, []byte("1111 1111 1111")) || len(out) != len(long) {
		t.Fatalf("long run: leaked or changed length (%d vs %d)", len(out), len(long))
	}
}

// TestDirDoneKeepsOnlyMasked: an export holding card numbers (plain, grouped, UTF-16) and track
// data is kept in done/ only masked, mode 0600 (done=masked), or removed (done=delete); the
// original never stays in the drop folder.
func TestDirDoneKeepsOnlyMasked(t *testing.T) {
	p := shippedProfile(t, "csv-export")
	pans := []string{"4111" + "1111" + "1111" + "1111", "5500" + "0055" + "5555" + "5559"}
	utf16 := func(s string) string {
		var b strings.Builder
		for _, c := range s {
			b.WriteByte(byte(c))
			b.WriteByte(0)
		}
		return b.String()
	}
	export := "receipt,date,description\n" +
		"1001,2026-11-26,CARD " + pans[0] + "\n" +
		"1002,2026-11-26,CARD 5500 0055 5555 5559\n" +
		";" + pans[0] + "=29121010000000000000?\n" +
		utf16("PAN "+pans[1]) + "\n"
	for _, mode := range []string{DoneMasked, DoneDelete} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			e := openEnv(t, t.TempDir())
			defer e.close()
			name := filepath.Join(dir, "export.csv")
			if err := os.WriteFile(name, []byte(export), 0o644); err != nil {
				t.Fatal(err)
			}
			runDirUntilTaken(t, &Dir{Path: dir, Masker: pan.New(pan.Options{}), Pipeline: newTestPipeline(e, e.sp, p), Log: slog.New(slog.DiscardHandler), Poll: 20 * time.Millisecond, Settle: -1, Done: mode}, name)
			if _, err := os.Stat(name); !os.IsNotExist(err) {
				t.Fatalf("original still in the drop folder: %v", err)
			}
			done := filepath.Join(dir, "done", "export.csv")
			st, err := os.Stat(done)
			if mode == DoneDelete {
				if !os.IsNotExist(err) {
					t.Fatalf("done=delete kept %s: %v", done, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", done, st.Mode().Perm())
			}
			b, _ := os.ReadFile(done)
			digits := strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, string(b))
			for _, p := range pans {
				if strings.Contains(digits, p) {
					t.Errorf("done/ file holds %s:\n%q", p, b)
				}
			}
			if !bytes.Contains(b, []byte("CARD 411111******1111")) || !bytes.Contains(b, []byte("1002,2026-11-26,CARD 5500 00** **** 5559")) {
				t.Errorf("done/ file lost its masked text:\n%q", b)
			}
			if bytes.Contains(b, []byte("=2912")) {
				t.Errorf("done/ file holds track data:\n%q", b)
			}
		})
	}
}

func TestDirDoneQueryValidated(t *testing.T) {
	profiles := map[string]*profile.Profile{"csv-export": shippedProfile(t, "csv-export")}
	for src, bad := range map[string]bool{"dir:///x?done=delete": false, "dir:///x?done=masked": false, "dir:///x": false, "dir:///x?done=keep": true, "dir:///x?keep=1": true} {
		err := Check([]config.Terminal{{ID: "T1", Source: src, Profile: "csv-export"}}, profiles)
		if (err != nil) != bad {
			t.Errorf("%s: err %v, want error %v", src, err, bad)
		}
		if err != nil && !strings.Contains(err.Error(), "terminals[0].source") {
			t.Errorf("%s: %v does not name the key", src, err)
		}
	}
}

// runDirUntilTaken runs src until the file name has left its folder (processed), 10 s at most.
func runDirUntilTaken(t *testing.T, src *Dir, name string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(name); err == nil && time.Now().Before(deadline); _, err = os.Stat(name) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
