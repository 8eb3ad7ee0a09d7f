package app

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/capture"
	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
	firmwareprofiles "github.com/lanebridge/lanebridge/firmware-profiles"
)

func journalPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "journal.db") }

// loadProfiles returns the shipped profiles, overridden by name by those in dir (if set).
func loadProfiles(dir string) (map[string]*profile.Profile, error) {
	ps, err := profile.LoadFS(firmwareprofiles.FS)
	if err != nil {
		return nil, fmt.Errorf("shipped profiles: %w", err)
	}
	if dir == "" {
		return ps, nil
	}
	over, err := profile.LoadFS(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("config key profiles_dir (%s): %w", dir, err)
	}
	for n, p := range over {
		ps[n] = p
	}
	return ps, nil
}

const captureUsage = `
Capture and profiles:
  lanebridge-agent capture --source URL --out sample.cap [--profile NAME] [--duration 10m]
        record a masked raw capture (serial://, tcp-listen://) for writing a profile
  lanebridge-agent profile list [--profiles-dir DIR]
  lanebridge-agent profile show NAME [--profiles-dir DIR]
  lanebridge-agent profile test --profile x.yaml|NAME [--terminal T1] [--explain] [--json] sample.cap
        print parsed transactions, quarantined ones with reasons and invariant failures, and a
        summary of the day (counts, per-kind totals, decoder diagnostics) to compare with the Z;
        --explain: each line with the rule that took it; --json: one JSON object per transaction
  lanebridge-agent profile draft [--dialect escpos|star-line|plain] [--code-page CP] sample.cap > draft.yaml
        infer a draft profile from a few masked receipts (comments say what was guessed and why)
  lanebridge-agent reparse --terminal T1 [--since 2026-01-02T15:04:05Z] [--profile x.yaml] --config agent.yaml
        re-parse a terminal's raw journal after a profile fix (agent stopped): records not
        yet captured are committed once; already captured ones are left alone
`

// cmdCapture records masked raw bytes from a source to a file.
func cmdCapture(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	src := fs.String("source", "", "serial:///dev/ttyUSB0?baud=9600 or tcp-listen://0.0.0.0:9100[?forward=printer:9100]")
	out := fs.String("out", "sample.cap", "capture file to write (masked)")
	prof := fs.String("profile", "", "profile whose transport settings are the defaults")
	dur := fs.Duration("duration", 10*time.Minute, "stop after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*src)
	if err != nil || *src == "" {
		return fmt.Errorf("--source: %q is not a source URL", *src)
	}
	var (
		tr     profile.Transport
		card   pan.Options
		masked atomic.Uint64
		// Without a canonical-jsonl profile the masker scans each line both as it is and with
		// its JSON escapes written out (LineMasker.Prepare).
		prepare func([]byte) []byte
	)
	if *prof != "" {
		p, err := findProfile(*prof, "")
		if err != nil {
			return err
		}
		tr, card = p.Transport, pan.Options{LastFourOnly: p.Card.LastFourOnly}
		if p.Format() == "canonical-jsonl" {
			prepare = p.PrepareLine
		}
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	defer f.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	lm := &capture.LineMasker{M: pan.New(card), Count: &masked, Prepare: prepare}
	var n int64
	write := func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		n += int64(len(b))
		_, err := f.Write(b)
		return err
	}
	switch u.Scheme {
	case "serial":
		c, err := capture.ParseSerialURL(u, tr)
		if err != nil {
			return err
		}
		port, err := capture.OpenTarm(c)
		if err != nil {
			return fmt.Errorf("open %s: %w", c.Name, err)
		}
		defer port.Close()
		fmt.Fprintf(stderr, "capturing %s (%d baud, %d%s%d) to %s for %v; Ctrl-C stops\n", c.Name, c.Baud, c.DataBits, strings.ToUpper(c.Parity[:1]), c.StopBits, *out, *dur)
		buf := make([]byte, 4096)
		last := time.Now()
		for ctx.Err() == nil {
			k, err := port.Read(buf)
			if k > 0 {
				last = time.Now()
				if err := write(lm.Write(buf[:k])); err != nil {
					return err
				}
			} else if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read %s: %w", c.Name, err)
			} else if lm.Pending() && time.Since(last) > time.Second {
				if err := write(lm.FlushIdle()); err != nil {
					return err
				}
			}
		}
	default:
		return fmt.Errorf("--source: capture supports serial:// (for tcp-listen:// run the agent: the raw journal keeps everything)")
	}
	if err := write(lm.Flush()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d bytes, card data masked (%d lines masked or removed)\n", *out, n, masked.Load())
	return nil
}

// findProfile resolves a profile by file path or by name (shipped, or in dir).
func findProfile(ref, dir string) (*profile.Profile, error) {
	if strings.HasSuffix(ref, ".yaml") || strings.ContainsAny(ref, `/\`) {
		f, err := os.Open(ref)
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		defer f.Close()
		return profile.Load(f)
	}
	ps, err := loadProfiles(dir)
	if err != nil {
		return nil, err
	}
	if p := ps[ref]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("profile %q not found (see `lanebridge-agent profile list`)", ref)
}

// profileSource returns the YAML of the profile findProfile(ref, dir) finds: the file ref, or
// the file in dir or else among the shipped ones that holds the profile named ref.
func profileSource(ref, dir string) ([]byte, error) {
	if strings.HasSuffix(ref, ".yaml") || strings.ContainsAny(ref, `/\`) {
		return os.ReadFile(ref)
	}
	var fss []fs.FS
	if dir != "" {
		fss = append(fss, os.DirFS(dir))
	}
	for _, fsys := range append(fss, firmwareprofiles.FS) {
		names, err := fs.Glob(fsys, "*.yaml")
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			b, err := fs.ReadFile(fsys, n)
			if err != nil {
				return nil, fmt.Errorf("read profile %s: %w", n, err)
			}
			if p, err := profile.Load(bytes.NewReader(b)); err == nil && p.Name == ref {
				return b, nil
			}
		}
	}
	return nil, fmt.Errorf("profile %q not found (see `lanebridge-agent profile list`)", ref)
}

func cmdProfile(args []string, stdout io.Writer) error {
	if len(args) < 1 {
		return errors.New("profile: use list, show NAME or test --profile x.yaml sample.cap")
	}
	fs := flag.NewFlagSet("profile "+args[0], flag.ContinueOnError)
	dir := fs.String("profiles-dir", "", "folder of profiles overriding the shipped ones")
	prof := fs.String("profile", "", "profile file (x.yaml) or name (test)")
	term := fs.String("terminal", "T1", "terminal id for parsed records (test)")
	explain := fs.Bool("explain", false, "test: print each transaction's lines and the rule that took each")
	asJSON := fs.Bool("json", false, "test: one JSON object per transaction, then a summary object")
	dialect := fs.String("dialect", "escpos", "draft: escpos, star-line or plain")
	codePage := fs.String("code-page", "CP437", "draft: the printer's code page")
	if err := fs.Parse(reorder(fs, args[1:])); err != nil {
		return err
	}
	switch args[0] {
	case "list":
		ps, err := loadProfiles(*dir)
		if err != nil {
			return err
		}
		names := make([]string, 0, len(ps))
		for n := range ps {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p := ps[n]
			fmt.Fprintf(stdout, "%-18s v%-2d %-10s %-9s %s %s — %s\n", n, p.Version, p.Transport.Source, p.Identity.Port, p.Identity.Vendor, p.Identity.Model, p.Description)
		}
		return nil
	case "show":
		if fs.NArg() != 1 {
			return errors.New("profile show NAME")
		}
		if _, err := findProfile(fs.Arg(0), *dir); err != nil {
			return err
		}
		// The file as written (comments included), not the decoded struct: encoding that gives
		// YAML the loader refuses (durations as nanoseconds) and loses the comments.
		src, err := profileSource(fs.Arg(0), *dir)
		if err != nil {
			return err
		}
		_, err = stdout.Write(src)
		return err
	case "test":
		if *prof == "" || fs.NArg() != 1 {
			return errors.New("profile test --profile x.yaml|NAME sample.cap")
		}
		p, err := findProfile(*prof, *dir)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		return profileTest(p, *term, data, testOptions{explain: *explain, json: *asJSON}, stdout)
	case "draft":
		if fs.NArg() != 1 {
			return errors.New("profile draft [--dialect escpos|star-line|plain] [--code-page CP] sample.cap > draft.yaml")
		}
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		return profileDraft(data, *dialect, *codePage, filepath.Base(fs.Arg(0)), stdout)
	}
	return fmt.Errorf("profile %s: unknown (list, show, test, draft)", args[0])
}

// reorder moves flags before positional arguments so "test x.cap --profile p" works too. A
// boolean flag of fs takes no value.
func reorder(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !isBoolFlag(fs, a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func isBoolFlag(fs *flag.FlagSet, arg string) bool {
	f := fs.Lookup(strings.TrimLeft(arg, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// cmdReparse re-parses a terminal's raw journal with the current (fixed) profile and commits
// the records that are not captured yet, each once. The agent must be stopped: the spool and
// the journal are opened for writing and their locks say so if it is not.
func cmdReparse(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("reparse", flag.ContinueOnError)
	cfgPath := fs.String("config", "agent.yaml", "agent configuration file")
	term := fs.String("terminal", "", "terminal id")
	since := fs.String("since", "", "only journal entries at or after this time (RFC 3339)")
	prof := fs.String("profile", "", "profile file or name (default: the terminal's configured profile)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	var t *config.Terminal
	for i := range cfg.Terminals {
		if cfg.Terminals[i].ID == *term {
			t = &cfg.Terminals[i]
		}
	}
	if t == nil {
		return fmt.Errorf("--terminal %q is not in %s", *term, *cfgPath)
	}
	var from time.Time
	if *since != "" {
		if from, err = time.Parse(time.RFC3339, *since); err != nil {
			return fmt.Errorf("--since: %w", err)
		}
	}
	ref := t.Profile
	if *prof != "" {
		ref = *prof
	}
	p, err := findProfile(ref, cfg.ProfilesDir)
	if err != nil {
		return err
	}
	sp, err := spool.Open(spoolPath(cfg), spool.Options{Store: cfg.Store, OpenTimeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, spool.ErrLocked) {
			return fmt.Errorf("the agent is running: stop it first (reparse writes to the spool): %w", err)
		}
		return err
	}
	defer sp.Close()
	jr, err := capture.OpenJournal(journalPath(cfg), 2*time.Second)
	if err != nil {
		return err
	}
	defer jr.Close()
	res, err := capture.Reparse(context.Background(), capture.ReparseOptions{ID: t.ID, Terminal: t.ID, Profile: p, Since: from}, jr, sp)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "terminal %s: %d journal entries re-parsed with %s v%d: %d record(s) newly captured, %d already captured, %d still unparseable\n",
		t.ID, res.Entries, p.Name, p.Version, res.Captured, res.AlreadyCaptured, len(res.StillFailing))
	for _, q := range res.StillFailing {
		fmt.Fprintf(stdout, "  still quarantined: %s\n%s\n", q.Reason, indent(q.Excerpt))
	}
	return nil
}
