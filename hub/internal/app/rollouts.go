package app

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/lanebridge/lanebridge/hub/internal/rollout"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/hub/internal/tradinghours"
	"github.com/lanebridge/lanebridge/protocol"
)

// RolloutsConfig is hub.yaml's rollouts section: the engine's pace and the defaults of
// stores without their own maintenance window.
type RolloutsConfig struct {
	// Tick is how often running rollouts are stepped (default 30s).
	Tick time.Duration `yaml:"tick"`
	// ResendAfter is how long an update command may go unanswered before it is sent again,
	// with the same id (default 5m).
	ResendAfter time.Duration `yaml:"resend_after"`
	// StoreTimeout is how long a store may take from the first send to healthy or a failure
	// before it counts as failed (default 1h).
	StoreTimeout time.Duration `yaml:"store_timeout"`
	// MaintenanceWindow is the window of stores without their own (`stores set S
	// --maintenance`), in the store's zone (default "Mon-Sun 02:00-05:00").
	MaintenanceWindow string `yaml:"maintenance_window"`
	// ReleasesDir holds the published binaries (default DATA_DIR/releases). Hub replicas on
	// one PostgreSQL must share it.
	ReleasesDir string `yaml:"releases_dir"`
	// MaxDownloads caps concurrent binary downloads (default 20); more wait for a 503 with
	// Retry-After.
	MaxDownloads int `yaml:"max_downloads"`
	// Tries is how many commands a store whose agent reports "failed" (not applied: download
	// or disk) is offered before it counts as failed (default 3).
	Tries int `yaml:"tries"`
}

func defaultRollouts() RolloutsConfig {
	return RolloutsConfig{Tick: 30 * time.Second, ResendAfter: 5 * time.Minute, StoreTimeout: time.Hour,
		MaintenanceWindow: rollout.DefaultWindow, MaxDownloads: 20, Tries: 3}
}

func (r *RolloutsConfig) validate() error {
	switch {
	case r.Tick < 10*time.Millisecond || r.Tick > time.Hour:
		return errors.New("config key rollouts.tick: must be 10ms..1h (default 30s)")
	case r.ResendAfter < r.Tick:
		return errors.New("config key rollouts.resend_after: must be at least rollouts.tick (default 5m)")
	case r.StoreTimeout < r.ResendAfter:
		return errors.New("config key rollouts.store_timeout: must be at least rollouts.resend_after (default 1h)")
	case r.MaxDownloads < 1 || r.MaxDownloads > 10000:
		return errors.New("config key rollouts.max_downloads: must be 1..10000 (default 20)")
	case r.Tries < 1 || r.Tries > 10:
		return errors.New("config key rollouts.tries: must be 1..10 (default 3)")
	}
	if _, err := tradinghours.New(r.MaintenanceWindow, "UTC"); err != nil || strings.TrimSpace(r.MaintenanceWindow) == "" {
		return fmt.Errorf("config key rollouts.maintenance_window: %q: %v (e.g. %q)", r.MaintenanceWindow, err, rollout.DefaultWindow)
	}
	return nil
}

// releasesDir is where published binaries are kept.
func (c *Config) releasesDir() string {
	return cmp.Or(c.Rollouts.ReleasesDir, filepath.Join(c.DataDir, "releases"))
}

// releaseKeyPasswordEnv holds the password of an encrypted minisign key for `releases publish`
// and `config push`.
const releaseKeyPasswordEnv = "LANEBRIDGE_SIGNING_PASSWORD"

// loadReleaseKey reads a minisign secret key file; an encrypted one is decrypted with the
// password from LANEBRIDGE_SIGNING_PASSWORD or, on a terminal, asked for.
func loadReleaseKey(path string, stderr io.Writer) (minisign.PrivateKey, error) {
	var key minisign.PrivateKey
	b, err := os.ReadFile(path)
	if err != nil {
		return key, fmt.Errorf("--key: %w", err)
	}
	if !minisign.IsEncrypted(b) {
		if err := key.UnmarshalText(b); err != nil {
			return key, fmt.Errorf("--key %s: not a minisign secret key (make one with `minisign -G -W -s FILE -p FILE.pub`): %w", path, err)
		}
		return key, nil
	}
	pw, ok := os.LookupEnv(releaseKeyPasswordEnv)
	if !ok {
		if pw, err = promptPassword(fmt.Sprintf("password of %s: ", path), stderr); err != nil {
			return key, fmt.Errorf("--key %s is encrypted: set %s or run on a terminal to be asked (%w)", path, releaseKeyPasswordEnv, err)
		}
	}
	if key, err = minisign.DecryptKey(pw, b); err != nil {
		return key, fmt.Errorf("--key %s: wrong password, or not a minisign secret key: %w", path, err)
	}
	return key, nil
}

// releasesPublish is `releases publish`: sign the binary and its manifest, keep the binary in
// the releases directory and record the release.
func releasesPublish(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("releases publish", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	bin := fs.String("binary", "", "the agent binary to publish (required)")
	version := fs.String("version", "", "its version, v1.2.3 (required; must be the version stamped into it)")
	goos := fs.String("os", "", "GOOS: linux, windows (required)")
	arch := fs.String("arch", "", "GOARCH: amd64, arm64, 386, arm (required)")
	channel := fs.String("channel", rollout.DefaultChannel, "update channel")
	keyPath := fs.String("key", "", "minisign secret key file (required)")
	minFrom := fs.String("min-from", "", "lowest version that may update to this one (default any)")
	expires := fs.String("expires", "30d", "how long the manifest stays valid: 30d, 12h")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"binary", *bin}, {"version", *version}, {"os", *goos}, {"arch", *arch}, {"key", *keyPath}} {
		if f.v == "" {
			return fmt.Errorf("releases publish: --%s is required", f.name)
		}
	}
	life, err := parseLifetime(*expires)
	if err != nil || life == 0 {
		return fmt.Errorf("--expires %q: use a lifetime such as 30d or 12h; every manifest expires", *expires)
	}
	if sv, err := protocol.ParseSemver(*version); err != nil {
		return fmt.Errorf("--version: %w", err)
	} else if sv.String() != *version {
		return fmt.Errorf("--version %q: write it as %s", *version, sv)
	}
	key, err := loadReleaseKey(*keyPath, stderr)
	if err != nil {
		return err
	}
	cfg, st, err := cf.open(false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	existing, err := st.Releases(ctx, *version)
	if err != nil {
		return err
	}
	for _, r := range existing {
		if r.OS == *goos && r.Arch == *arch && r.Channel == *channel {
			return fmt.Errorf("%s is already published for %s/%s on %s (sha256 %s); publish a new version instead", *version, *goos, *arch, *channel, r.SHA256)
		}
	}
	sum, size, sig, err := storeBinary(cfg.releasesDir(), *bin, key)
	if err != nil {
		return err
	}
	now := clock.Now().UTC().Truncate(time.Second)
	m := &protocol.Manifest{V: protocol.ManifestVersion, Kind: protocol.ManifestBinary, Product: protocol.ProductAgent, Published: now,
		Expires: now.Add(life), Version: *version, OS: *goos, Arch: *arch, Channel: *channel, SHA256: sum, Size: size, MinFrom: *minFrom,
		BinarySignature: string(sig)}
	sm, err := protocol.SignManifest(key, m)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	pub, _ := key.Public().(minisign.PublicKey)
	if _, err := protocol.VerifyManifest([]minisign.PublicKey{pub}, sm); err != nil {
		return fmt.Errorf("the signed manifest does not verify with its own key: %w", err)
	}
	r := store.Release{Version: *version, OS: *goos, Arch: *arch, Channel: *channel, SHA256: sum, Size: size, MinFrom: *minFrom,
		Manifest: sm, File: sum, Expires: m.Expires, PublishedAt: now, PublishedBy: cliUser()}
	id, err := st.AddRelease(ctx, r)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%s is already published for %s/%s on %s; publish a new version instead", *version, *goos, *arch, *channel)
	}
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("%s %s/%s %s sha256 %s, %d bytes, expires %s, key %X", *version, *goos, *arch, *channel, sum, size,
		m.Expires.Format(time.RFC3339), key.ID())
	fmt.Fprintf(stdout, "published release %d: %s\nsigned by key %X (public key %s); agents must trust it\nstart a rollout: lanebridge-hub rollouts start --release %s --waves 1,10%%,50%%,100%%\n",
		id, detail, key.ID(), pub, *version)
	return cliAudit(ctx, st, "releases publish", *version, detail)
}

// storeBinary copies the binary into dir under its sha256 (0644, written to a temporary file,
// synced and renamed), signing the bytes as it copies them; it reads the stored file back and
// checks the signature before it returns.
func storeBinary(dir, src string, key minisign.PrivateKey) (sum string, size int64, sig []byte, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, nil, fmt.Errorf("--binary: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 || fi.Size() > protocol.MaxReleaseBinary {
		return "", 0, nil, fmt.Errorf("--binary %s: want a regular file of 1..%d bytes (%v)", src, protocol.MaxReleaseBinary, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, nil, fmt.Errorf("releases directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".publish-*")
	if err != nil {
		return "", 0, nil, fmt.Errorf("releases directory: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing
	h := sha256.New()
	mr := minisign.NewReader(io.TeeReader(io.LimitReader(in, protocol.MaxReleaseBinary+1), h))
	size, err = io.Copy(tmp, mr)
	if err == nil && size > protocol.MaxReleaseBinary {
		err = fmt.Errorf("larger than %d bytes", protocol.MaxReleaseBinary)
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, nil, fmt.Errorf("copy --binary %s: %w", src, err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	sig = mr.SignWithComments(key, fmt.Sprintf("lanebridge-agent binary sha256:%s", sum), "lanebridge release binary")
	final := filepath.Join(dir, sum)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", 0, nil, fmt.Errorf("releases directory: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	// Read back what is stored: what the agents will download is what was signed.
	f, err := os.Open(final)
	if err != nil {
		return "", 0, nil, err
	}
	defer f.Close()
	vr := minisign.NewReader(f)
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return "", 0, nil, err
	}
	pub, _ := key.Public().(minisign.PublicKey)
	if !vr.Verify(pub, sig) {
		return "", 0, nil, fmt.Errorf("stored binary %s does not verify: the disk changed it", final)
	}
	return sum, size, sig, nil
}

// cliUser names the person at the command line as cliAudit does: cli:<OS user>.
func cliUser() string {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	return "cli:" + who
}

// releasesList is `releases list`.
func releasesList(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("releases list", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, st, err := cf.open(false)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.Releases(context.Background(), "")
	if err != nil {
		return err
	}
	rows := [][]string{{"ID", "VERSION", "OS", "ARCH", "CHANNEL", "SIZE", "SHA256", "MIN FROM", "EXPIRES", "PUBLISHED", "BY"}}
	for _, r := range list {
		exp := r.Expires.Format(time.RFC3339)
		if clock.Now().After(r.Expires) {
			exp += " (expired)"
		}
		rows = append(rows, []string{strconv.FormatInt(r.ID, 10), r.Version, r.OS, r.Arch, r.Channel, strconv.FormatInt(r.Size, 10),
			r.SHA256[:16], cmp.Or(r.MinFrom, "-"), exp, r.PublishedAt.Format(time.RFC3339), r.PublishedBy})
	}
	return writeTable(stdout, rows)
}

// rolloutsStart is `rollouts start --release V --waves W`.
func rolloutsStart(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rollouts start", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	version := fs.String("release", "", "version to roll out (required; see `releases list`)")
	var f rollout.Filter
	fs.StringVar(&f.OS, "os", "", "only stores on this GOOS (default any a release was published for)")
	fs.StringVar(&f.Arch, "arch", "", "only stores on this GOARCH")
	fs.StringVar(&f.Channel, "channel", "", "only stores on this channel")
	waves := fs.String("waves", "1,10%,50%,100%", "cumulative waves: store counts or percentages, the last 100%")
	maxf := fs.String("max-failures", "5%", "failures (rolled back, refused, failed, timed out) above this halt the rollout: 5% or a count")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" {
		return errors.New("rollouts start: --release V is required")
	}
	ts, err := rollout.ParseWaves(*waves)
	if err != nil {
		return err
	}
	if _, err := rollout.ParseMaxFailures(*maxf); err != nil {
		return err
	}
	_, st, err := cf.open(false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	rels, err := st.Releases(ctx, *version)
	if err != nil {
		return err
	}
	now := clock.Now()
	live := rels[:0]
	for _, r := range rels {
		if now.Before(r.Expires) {
			live = append(live, r)
		} else {
			fmt.Fprintf(stderr, "release %s %s/%s %s expired at %s: left out (publish it again)\n", r.Version, r.OS, r.Arch, r.Channel, r.Expires.Format(time.RFC3339))
		}
	}
	stores, err := st.ListStores(ctx)
	if err != nil {
		return err
	}
	ws, rs, skipped, err := rollout.Plan(*version, f, ts, stores, live)
	for _, s := range skipped {
		fmt.Fprintln(stderr, "not in the rollout: "+s)
	}
	if err != nil {
		return err
	}
	ro := store.Rollout{Version: *version, OS: f.OS, Arch: f.Arch, Channel: f.Channel, MaxFailures: *maxf, Waves: ws, CreatedBy: cliUser()}
	id, err := st.AddRollout(ctx, ro, rs)
	if err != nil {
		return err
	}
	var parts []string
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s=%d", w.Target, w.Stores))
	}
	detail := fmt.Sprintf("%s to %d stores (%s), waves %s, max failures %s", *version, len(rs), f, strings.Join(parts, " "), *maxf)
	fmt.Fprintf(stdout, "started rollout %d: %s\nthe running hub sends it within rollouts.tick; follow it with `lanebridge-hub rollouts status %d` or /rollouts\n", id, detail, id)
	return cliAudit(ctx, st, "rollouts start", fmt.Sprintf("rollout/%d", id), detail)
}

// rolloutsStatus is `rollouts status [ID]`.
func rolloutsStatus(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rollouts status", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	arg, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	_, st, err := cf.open(false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	if arg == "" {
		list, err := st.Rollouts(ctx, "")
		if err != nil {
			return err
		}
		rows := [][]string{{"ID", "VERSION", "STATE", "WAVE", "STORES", "MAX FAILURES", "STARTED", "BY", "REASON"}}
		for _, ro := range list {
			n := 0
			if len(ro.Waves) > 0 {
				n = ro.Waves[len(ro.Waves)-1].Stores
			}
			rows = append(rows, []string{strconv.FormatInt(ro.ID, 10), ro.Version, ro.State, fmt.Sprintf("%d/%d", ro.Wave+1, len(ro.Waves)),
				strconv.Itoa(n), ro.MaxFailures, ro.CreatedAt.Format(time.RFC3339), ro.CreatedBy, ro.Reason})
		}
		return writeTable(stdout, rows)
	}
	id, err := rolloutID(arg)
	if err != nil {
		return err
	}
	ro, err := st.Rollout(ctx, id)
	if err != nil {
		return rolloutNotFound(id, err)
	}
	fmt.Fprintf(stdout, "rollout %d of %s: %s, wave %d of %d, max failures %s, started %s by %s\n", ro.ID, ro.Version, ro.State,
		ro.Wave+1, len(ro.Waves), ro.MaxFailures, ro.CreatedAt.Format(time.RFC3339), ro.CreatedBy)
	if ro.Reason != "" {
		fmt.Fprintln(stdout, "reason: "+ro.Reason)
	}
	rows := [][]string{{"WAVE", "TARGET", "STORES", "STARTED", "FINISHED"}}
	for _, w := range ro.Waves {
		rows = append(rows, []string{strconv.Itoa(w.Wave + 1), w.Target, strconv.Itoa(w.Stores), fmtTime(w.StartedAt), fmtTime(w.FinishedAt)})
	}
	if err := writeTable(stdout, rows); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	rows = [][]string{{"STORE", "WAVE", "STATE", "FROM", "TRIES", "SENDS", "SENT", "DETAIL"}}
	for _, s := range ro.Stores {
		rows = append(rows, []string{s.Store, strconv.Itoa(s.Wave + 1), s.State, s.FromVersion, strconv.Itoa(s.Tries), strconv.Itoa(s.Attempts), fmtTime(s.SentAt), s.Detail})
	}
	return writeTable(stdout, rows)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func rolloutID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("rollout id %q: not a number (see `lanebridge-hub rollouts status`)", s)
	}
	return id, nil
}

func rolloutNotFound(id int64, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no rollout %d (see `lanebridge-hub rollouts status`)", id)
	}
	return err
}

// rolloutsChange is `rollouts pause|resume|abort ID`: the running hub follows at its next tick.
func rolloutsChange(verb string, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("rollouts "+verb, flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	reason := fs.String("reason", "", "why (kept with the rollout and in the audit log)")
	arg, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	id, err := rolloutID(arg)
	if err != nil {
		return err
	}
	from, to := map[string][]string{
		"pause":  {store.RolloutRunning},
		"resume": {store.RolloutPaused},
		"abort":  {store.RolloutRunning, store.RolloutPaused, store.RolloutHalted},
	}[verb], map[string]string{"pause": store.RolloutPaused, "resume": store.RolloutRunning, "abort": store.RolloutAborted}[verb]
	_, st, err := cf.open(false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	why := cmp.Or(*reason, to+" by "+cliUser())
	if err := st.SetRolloutState(ctx, id, from, to, why); err != nil {
		if errors.Is(err, store.ErrRolloutState) {
			return fmt.Errorf("rollout %d: %s needs a rollout that is %s: %w", id, verb, strings.Join(from, " or "), err)
		}
		return rolloutNotFound(id, err)
	}
	fmt.Fprintf(stderr, "rollout %d %s; the running hub follows at its next tick (commands already sent are not recalled)\n", id, to)
	return cliAudit(ctx, st, "rollouts "+verb, fmt.Sprintf("rollout/%d", id), why)
}

// promptPassword asks for a password on the terminal (stdin) without echo.
func promptPassword(prompt string, stderr io.Writer) (string, error) {
	restore, err := noEcho(os.Stdin)
	if err != nil {
		return "", err
	}
	fmt.Fprint(stderr, prompt)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	restore()
	fmt.Fprintln(stderr)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// runReleaseCommand runs `releases …` and `rollouts …`; false for an unknown subcommand.
func runReleaseCommand(args []string, stdout, stderr io.Writer) (bool, error) {
	if len(args) < 2 {
		return false, nil
	}
	rest := args[2:]
	switch args[0] + " " + args[1] {
	case "releases publish":
		return true, releasesPublish(rest, stdout, stderr)
	case "releases list":
		return true, releasesList(rest, stdout)
	case "rollouts start":
		return true, rolloutsStart(rest, stdout, stderr)
	case "rollouts status":
		return true, rolloutsStatus(rest, stdout)
	case "rollouts pause", "rollouts resume", "rollouts abort":
		return true, rolloutsChange(args[1], rest, stderr)
	}
	return false, nil
}
