// Package update is the agent side of signed self-update.
//
// The hub offers a release with a Command{Type: "update", Manifest, URL}. The agent:
//
//  1. verifies the manifest's minisign signature against the keys built into this binary
//     (agent/internal/trust), then its expiry, os/arch, channel and versions (never lower than
//     the highest version this agent has run, never the running one, never from below
//     min_from, never a version that was rolled back here before);
//  2. downloads the binary from update.hub_url + Command.URL (HTTP Basic: store id and hub
//     password) into the data dir, reading at most Size+1 bytes, with connect, header and
//     whole-download timeouts; verifies its size, sha256 and minisign signature (binary_signature);
//  3. stops itself (spool closed), writes the pending file, and runs the staged binary as a
//     child in trial mode (LANEBRIDGE_UPDATE_TRIAL=<pending file>): the child runs the whole
//     agent and, once healthy (spool open, capture running, hub reachable or spool writable),
//     writes the healthy marker. The old process, whose code is still in memory, decides: a
//     child that exits, hangs or is not healthy within update.health_timeout is killed, the
//     version is recorded as failed (never retried) and the old agent simply runs again,
//     reporting rolled_back. Until the trial succeeds the binary at the target path is the old,
//     verified one: a crash or power cut during download, verification or trial leaves it
//     untouched;
//  4. on a healthy trial it stops the child gracefully (closes its stdin), swaps the binary in
//     with github.com/minio/selfupdate (Checksum and minisign Verifier both set, the old
//     binary kept at OldSavePath next to it) and hands over: on unix it execs the new binary
//     in place (same pid: the service manager sees no restart); on Windows it exits non-zero
//     and the service's recovery action restarts it;
//  5. the new binary starts with the pending file in phase "swapped": it counts its starts
//     there and must report healthy within update.health_timeout; after maxStarts starts or a
//     timeout it restores the old binary from OldSavePath and execs it (rolled_back). Once
//     healthy it records its version as the highest run and reports healthy.
//
// State lives in the data dir: update-state.json (highest version run, versions rolled back,
// the last report), update-pending.json (see Pending), update-healthy (the trial's marker) and
// update-*.bin / update-*.minisig (the staged download). Every write is a durable atomic
// replace (temp file, fsync, rename, fsync of the directory).
package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"aead.dev/minisign"

	"github.com/lanebridge/lanebridge/protocol"
)

// TrialEnv names the pending file in a trial child's environment.
const TrialEnv = "LANEBRIDGE_UPDATE_TRIAL"

// File names in the data dir.
const (
	stateFile   = "update-state.json"
	pendingFile = "update-pending.json"
	healthyFile = "update-healthy"
	// trialErrorFile is where a trial child that refuses to run says why (its parent reports it).
	trialErrorFile = "update-trial-error"
)

// Download timeouts (variables so tests can shorten them).
var (
	ConnectTimeout  = 10 * time.Second
	HeaderTimeout   = 30 * time.Second
	DownloadTimeout = 10 * time.Minute
)

// Options configure an Updater.
type Options struct {
	DataDir       string
	HubURL        string // update.hub_url
	Store         string // HTTP Basic user
	Password      string // HTTP Basic password (the broker password)
	Channel       string // update.channel
	HealthTimeout time.Duration
	Enabled       bool
	Version       string // the running version (app.Version)
	Trusted       []minisign.PublicKey
	TrustErr      error  // why Trusted is empty (trust.Trusted's error)
	Exe           string // the target path: the running executable
	Log           *slog.Logger
	Now           func() time.Time
}

// state is update-state.json.
type state struct {
	Highest string                 `json:"highest,omitempty"` // highest version this agent has run
	Failed  []string               `json:"failed,omitempty"`  // versions rolled back here: never retried
	Last    *protocol.UpdateReport `json:"last,omitempty"`
}

// Updater handles update offers; its methods are safe for concurrent use.
type Updater struct {
	o     Options
	mu    sync.Mutex
	st    state
	trial *Pending // non-nil: this process is a trial child
	post  *Pending // non-nil: this process is the new binary after the swap, not yet healthy
	ok    bool     // Healthy was called
}

// Staged is a verified download ready to be installed.
type Staged struct {
	Manifest  *protocol.Manifest
	CommandID string
	Path      string // the verified binary, in the data dir
	SigPath   string // its minisign signature
	Key       minisign.PublicKey
	SHA256    []byte
}

// New loads the state. In a trial child (TrialEnv set) it reads the pending file; after a swap
// it counts the start (see Startup). Call Startup next.
func New(o Options) (*Updater, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("update: the running executable: %w", err)
		}
		if exe, err = filepath.EvalSymlinks(exe); err != nil {
			return nil, fmt.Errorf("update: the running executable: %w", err)
		}
		o.Exe = exe
	}
	u := &Updater{o: o}
	if err := readJSON(u.path(stateFile), &u.st); err != nil && !errors.Is(err, os.ErrNotExist) {
		// Capturing sales matters more than this file: set it aside and start afresh (the
		// highest version run is then the running one again).
		aside := u.path(stateFile) + ".corrupt-" + o.Now().UTC().Format("20060102T150405Z")
		o.Log.Error("update: unreadable update state; moved aside", "file", u.path(stateFile), "to", aside, "err", err)
		if rerr := os.Rename(u.path(stateFile), aside); rerr != nil {
			return nil, fmt.Errorf("update: %s: %w (and it cannot be moved aside: %v)", u.path(stateFile), err, rerr)
		}
		u.st = state{}
	}
	return u, nil
}

func (u *Updater) path(name string) string { return filepath.Join(u.o.DataDir, name) }

// Report is the last update report, for Status.Update (nil: none yet).
func (u *Updater) Report() *protocol.UpdateReport {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.trial != nil {
		return &protocol.UpdateReport{CommandID: u.trial.CommandID, Version: u.trial.Version, From: u.trial.From, State: protocol.UpdateTrial, At: u.trial.Started}
	}
	if u.st.Last == nil {
		return nil
	}
	r := *u.st.Last
	return &r
}

// Exe is the target path: the executable this agent runs from (symlinks resolved).
func (u *Updater) Exe() string { return u.o.Exe }

// Channel is the configured channel.
func (u *Updater) Channel() string { return u.o.Channel }

// InTrial reports whether this process is a trial child.
func (u *Updater) InTrial() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.trial != nil
}

// report records r as the last report, durably.
func (u *Updater) report(r protocol.UpdateReport) {
	r.At = u.o.Now().UTC()
	u.mu.Lock()
	u.st.Last = &r
	st := u.st
	u.mu.Unlock()
	if err := writeJSON(u.path(stateFile), st); err != nil {
		u.o.Log.Error("update: cannot save the update state", "err", err)
	}
	lvl := slog.LevelInfo
	if r.State == protocol.UpdateRefused || r.State == protocol.UpdateFailed || r.State == protocol.UpdateRolledBack {
		lvl = slog.LevelWarn
	}
	u.o.Log.Log(context.Background(), lvl, "update", "version", r.Version, "from", r.From, "state", r.State, "detail", r.Detail, "command", r.CommandID)
}

func (u *Updater) saveState(mut func(*state)) error {
	u.mu.Lock()
	mut(&u.st)
	st := u.st
	u.mu.Unlock()
	return writeJSON(u.path(stateFile), st)
}

// refusal is a verification failure: the offer is not applied (state refused).
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, a ...any) error { return &refusal{fmt.Sprintf(format, a...)} }

// Offer handles an update command. It verifies and downloads; it returns a Staged release to
// install (the caller stops the agent and calls Install) or nil when there is nothing to do
// (refused, failed, a repeat of a command already handled). Every outcome is in Report.
func (u *Updater) Offer(ctx context.Context, c *protocol.Command) *Staged {
	if u.InTrial() {
		u.o.Log.Info("update: offer ignored during a trial", "command", c.ID)
		return nil
	}
	if last := u.Report(); last != nil && last.CommandID == c.ID && last.State != protocol.UpdateFailed {
		u.o.Log.Info("update: command already handled; reporting its outcome again", "command", c.ID, "state", last.State)
		return nil
	}
	st, err := u.offer(ctx, c)
	if err == nil {
		// The agent's last status before it stops for the trial says so.
		u.report(protocol.UpdateReport{CommandID: c.ID, Version: st.Manifest.Version, From: u.o.Version, State: protocol.UpdateTrial,
			Detail: "verified; the agent restarts on it for a trial of up to " + u.o.HealthTimeout.String()})
		return st
	}
	r := protocol.UpdateReport{CommandID: c.ID, From: u.o.Version, Detail: err.Error()}
	if st != nil && st.Manifest != nil {
		r.Version = st.Manifest.Version
	}
	var ref *refusal
	if errors.As(err, &ref) {
		r.State = protocol.UpdateRefused
	} else {
		r.State = protocol.UpdateFailed
	}
	// A repeat of the running version after a good update keeps the healthy report.
	if last := u.Report(); last != nil && last.State == protocol.UpdateHealthy && last.Version == r.Version && r.Version == u.o.Version {
		return nil
	}
	u.report(r)
	return nil
}

// offer returns a Staged (with at least Manifest set once it is known) and the reason it stops.
func (u *Updater) offer(ctx context.Context, c *protocol.Command) (*Staged, error) {
	if !u.o.Enabled {
		return nil, refuse("updates are disabled on this agent (update.enabled: false)")
	}
	if len(u.o.Trusted) == 0 {
		return nil, refuse("%v", orErr(u.o.TrustErr, "no trusted release key"))
	}
	if c.Manifest == nil {
		return nil, refuse("the command carries no manifest")
	}
	m, err := protocol.VerifyManifest(u.o.Trusted, *c.Manifest)
	if err != nil {
		return nil, refuse("manifest refused: %v", err)
	}
	st := &Staged{Manifest: m, CommandID: c.ID}
	if m.Kind != protocol.ManifestBinary {
		return st, refuse("manifest kind %q is not a binary release", m.Kind)
	}
	if now := u.o.Now(); !now.Before(m.Expires) {
		return st, refuse("manifest expired at %s", m.Expires.UTC().Format(time.RFC3339))
	}
	if m.OS != runtime.GOOS || m.Arch != runtime.GOARCH {
		return st, refuse("release is for %s/%s, this agent runs on %s/%s", m.OS, m.Arch, runtime.GOOS, runtime.GOARCH)
	}
	if m.Channel != u.o.Channel {
		return st, refuse("release is on channel %q, this agent follows %q (update.channel)", m.Channel, u.o.Channel)
	}
	if _, err := protocol.ParseSemver(u.o.Version); err != nil {
		return st, refuse("the running version %q is a development build: it does not self-update", u.o.Version)
	}
	u.mu.Lock()
	highest, failed := u.st.Highest, slices.Contains(u.st.Failed, m.Version)
	u.mu.Unlock()
	if failed {
		return st, refuse("%s was rolled back on this agent before; it is not retried (publish a newer version)", m.Version)
	}
	if cmp, _ := protocol.CompareVersions(m.Version, u.o.Version); cmp == 0 {
		return st, refuse("%s is the running version: nothing to do", m.Version)
	} else if cmp < 0 {
		return st, refuse("downgrade refused: %s is lower than the running %s", m.Version, u.o.Version)
	}
	if highest != "" {
		if cmp, err := protocol.CompareVersions(m.Version, highest); err == nil && cmp < 0 {
			return st, refuse("downgrade refused: %s is lower than %s, the highest version this agent has run", m.Version, highest)
		}
	}
	if m.MinFrom != "" {
		if cmp, _ := protocol.CompareVersions(u.o.Version, m.MinFrom); cmp < 0 {
			return st, refuse("%s updates only from %s or later; this agent runs %s", m.Version, m.MinFrom, u.o.Version)
		}
	}
	// The binary's signature must parse and name a trusted key before anything is downloaded.
	var sig minisign.Signature
	if err := sig.UnmarshalText([]byte(m.BinarySignature)); err != nil {
		return st, refuse("binary_signature is not a minisign signature: %v", err)
	}
	for _, k := range u.o.Trusted {
		if k.ID() == sig.KeyID {
			st.Key = k
		}
	}
	if st.Key.ID() == 0 {
		return st, refuse("binary signed by key %X, which this build does not trust", sig.KeyID)
	}
	if u.o.HubURL == "" {
		return st, refuse("update.hub_url is not set: the agent does not know where to download from")
	}
	u.report(protocol.UpdateReport{CommandID: c.ID, Version: m.Version, From: u.o.Version, State: protocol.UpdateDownloading})
	bin, err := u.download(ctx, c.URL, m.Size)
	if err != nil {
		return st, err
	}
	u.report(protocol.UpdateReport{CommandID: c.ID, Version: m.Version, From: u.o.Version, State: protocol.UpdateVerifying})
	if err := VerifyBinary(m, st.Key, bin); err != nil {
		return st, err
	}
	sum := sha256.Sum256(bin)
	st.SHA256 = sum[:]
	st.Path = u.path("update-" + m.Version + ".bin")
	st.SigPath = u.path("update-" + m.Version + ".minisig")
	if err := writeFile(st.Path, bin, 0o755); err != nil {
		return st, fmt.Errorf("stage the binary: %w", err)
	}
	if err := writeFile(st.SigPath, []byte(m.BinarySignature), 0o644); err != nil {
		return st, fmt.Errorf("stage the signature: %w", err)
	}
	return st, nil
}

func orErr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// VerifyBinary checks a downloaded binary against its manifest: size, sha256, and the minisign
// signature by key (legacy "Ed" and prehashed "ED" signatures both verify).
func VerifyBinary(m *protocol.Manifest, key minisign.PublicKey, bin []byte) error {
	if int64(len(bin)) != m.Size {
		return refuse("binary is %d bytes, the manifest declares %d", len(bin), m.Size)
	}
	sum := sha256.Sum256(bin)
	if got := hex.EncodeToString(sum[:]); got != m.SHA256 {
		return refuse("sha256 mismatch: the binary hashes to %s, the manifest declares %s", got, m.SHA256)
	}
	if !minisign.Verify(key, bin, []byte(m.BinarySignature)) {
		return refuse("binary signature does not verify with trusted key %X", key.ID())
	}
	return nil
}

// download fetches HubURL+path with the store's credentials, reading at most size+1 bytes.
func (u *Updater) download(ctx context.Context, path string, size int64) ([]byte, error) {
	base, err := url.Parse(u.o.HubURL)
	if err != nil {
		return nil, refuse("update.hub_url: %v", err)
	}
	if !strings.HasPrefix(path, "/") || strings.Contains(path, "//") || strings.Contains(path, "..") {
		return nil, refuse("download path %q is not a hub path", path)
	}
	target := strings.TrimSuffix(base.String(), "/") + path
	ctx, cancel := context.WithTimeout(ctx, DownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, refuse("download URL %q: %v", target, err)
	}
	req.SetBasicAuth(u.o.Store, u.o.Password)
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: ConnectTimeout}).DialContext,
			TLSHandshakeTimeout:   ConnectTimeout,
			ResponseHeaderTimeout: HeaderTimeout,
		},
		// A redirect would carry the credentials elsewhere: refuse it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("download %s: %s: %s", target, resp.Status, bytes.TrimSpace(b))
	}
	if resp.ContentLength > size {
		return nil, refuse("the hub sends %d bytes, the manifest declares %d", resp.ContentLength, size)
	}
	bin, err := io.ReadAll(io.LimitReader(resp.Body, size+1))
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", target, err)
	}
	if int64(len(bin)) > size {
		return nil, refuse("the download is larger than the %d bytes the manifest declares", size)
	}
	if int64(len(bin)) < size {
		return nil, fmt.Errorf("download %s: %d of %d bytes", target, len(bin), size)
	}
	return bin, nil
}

// --- durable files ---

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'), 0o600)
}

// writeFile replaces path durably: temp file, fsync, rename, fsync of the directory.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // not supported on Windows; the rename is durable there
		d.Close()
	}
}
