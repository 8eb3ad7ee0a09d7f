package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"aead.dev/minisign"

	"github.com/lanebridge/lanebridge/agent/internal/capture"
	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/trust"
	"github.com/lanebridge/lanebridge/protocol"
)

// Signed configuration pushes. The hub relays a config manifest (protocol.Manifest of kind
// config) signed with a release key; the agent verifies it against the keys built into it
// (trust.Trusted), refuses an expired one, one for another store, one not newer than the
// version running and one touching a forbidden key (config.Forbidden), merges it over the local
// agent.yaml and validates the result as `validate` does. Accepted overrides are kept in
// data_dir/config-overrides.json and applied at every start after the local file. Applying
// restarts the agent's components with the new configuration on trial: if they fail (a
// config, spool or capture error) before trialPeriod has passed, the previous overrides come
// back. Every outcome is reported in Status.Config until the next push.

// overridesFile is the state of pushed configuration in the data dir.
const overridesFile = "config-overrides.json"

// trialPeriod is how long the components must run on new overrides before they count as applied.
var trialPeriod = 15 * time.Second

// trustedKeys returns the keys config pushes must be signed with (tests replace it).
var trustedKeys = func() ([]minisign.PublicKey, error) { return trust.Trusted() }

// overrideSet is one accepted push.
type overrideSet struct {
	Version   uint64    `json:"version"`
	CommandID string    `json:"command_id"`
	Overrides string    `json:"overrides"` // YAML
	At        time.Time `json:"at"`
}

// overrideState is data_dir/config-overrides.json.
type overrideState struct {
	Active   *overrideSet `json:"active,omitempty"`   // applied at start (nil: the local file only)
	Previous *overrideSet `json:"previous,omitempty"` // what a rollback returns to
	// Trial: Active was accepted but has not yet run for trialPeriod.
	Trial  bool                   `json:"trial,omitempty"`
	Report *protocol.ConfigReport `json:"report,omitempty"`
}

func (s *overrideState) active() uint64 {
	if s.Active == nil {
		return 0
	}
	return s.Active.Version
}

func (s *overrideState) overrides() []byte {
	if s.Active == nil {
		return nil
	}
	return []byte(s.Active.Overrides)
}

func loadOverrideState(dataDir string) (*overrideState, error) {
	var st overrideState
	b, err := os.ReadFile(filepath.Join(dataDir, overridesFile))
	if errors.Is(err, os.ErrNotExist) {
		return &st, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		return nil, fmt.Errorf("pushed configuration %s: %w (move it aside to run on the local file only)", filepath.Join(dataDir, overridesFile), err)
	}
	return &st, nil
}

func (s *overrideState) save(dataDir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return err
	}
	return writeFile0600(filepath.Join(dataDir, overridesFile), b)
}

// effectiveConfig loads path with the active pushed overrides of its data dir.
func effectiveConfig(path string) (*config.Config, *overrideState, error) {
	base, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := loadOverrideState(base.DataDir)
	if err != nil || st.Active == nil {
		return base, st, err
	}
	cfg, err := config.LoadWithOverrides(path, st.overrides())
	return cfg, st, err
}

// errRestart ends run so that serve starts the components again with new overrides.
var errRestart = errors.New("restart with new configuration")

// remoteConfig handles config commands for one run of the agent's components.
type remoteConfig struct {
	path string
	cfg  *config.Config
	log  *slog.Logger
	cmds chan *protocol.Command

	mu      sync.Mutex
	st      *overrideState
	restart chan struct{} // closed when an accepted push needs the components restarted
	notify  func()        // asks the uplink for a status now
}

func newRemoteConfig(path string, cfg *config.Config, st *overrideState, log *slog.Logger) *remoteConfig {
	return &remoteConfig{path: path, cfg: cfg, st: st, log: log.With("component", "remoteconfig"),
		cmds: make(chan *protocol.Command, 4), restart: make(chan struct{})}
}

// Report is Status.Config.
func (rc *remoteConfig) Report() *protocol.ConfigReport {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.st.Report == nil {
		return nil
	}
	r := *rc.st.Report
	return &r
}

// run handles config commands until ctx ends.
func (rc *remoteConfig) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-rc.cmds:
			rc.handle(c)
			if rc.notify != nil {
				rc.notify()
			}
		}
	}
}

// confirm marks a trial's overrides applied once the components have run for trialPeriod.
func (rc *remoteConfig) confirm(ctx context.Context) {
	rc.mu.Lock()
	trial := rc.st.Trial
	rc.mu.Unlock()
	if !trial {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(trialPeriod):
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	a := rc.st.Active
	rc.st.Trial = false
	rc.st.Report = &protocol.ConfigReport{CommandID: a.CommandID, Version: a.Version, Active: a.Version, State: protocol.ConfigApplied, At: time.Now().UTC()}
	if err := rc.st.save(rc.cfg.DataDir); err != nil {
		rc.log.Error("save pushed configuration state", "err", err)
	}
	rc.log.Info("pushed configuration applied", "version", a.Version)
	if rc.notify != nil {
		go rc.notify()
	}
}

// handle decides on one config command.
func (rc *remoteConfig) handle(c *protocol.Command) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	active := rc.st.active()
	// The claimed version, read only to name the push in a refusal the hub can match.
	var claimed struct {
		ConfigVersion uint64 `json:"config_version"`
	}
	_ = json.Unmarshal([]byte(c.Manifest.Body), &claimed)
	refuse := func(version uint64, format string, a ...any) {
		detail := fmt.Sprintf(format, a...)
		rc.log.Warn("configuration push refused", "command", c.ID, "version", version, "reason", detail)
		rc.st.Report = &protocol.ConfigReport{CommandID: c.ID, Version: version, Active: active, State: protocol.ConfigRefused, Detail: detail, At: time.Now().UTC()}
		if err := rc.st.save(rc.cfg.DataDir); err != nil {
			rc.log.Error("save pushed configuration state", "err", err)
		}
	}
	if r := rc.st.Report; (r != nil && r.CommandID == c.ID) || (rc.st.Active != nil && rc.st.Active.CommandID == c.ID) {
		return // decided already, or on trial (a resend): the report stands or is coming
	}
	keys, err := trustedKeys()
	if err != nil {
		refuse(claimed.ConfigVersion, "%v", err)
		return
	}
	m, err := protocol.VerifyManifest(keys, *c.Manifest)
	switch {
	case err != nil:
		refuse(claimed.ConfigVersion, "manifest: %v", err)
		return
	case m.Kind != protocol.ManifestConfig:
		refuse(claimed.ConfigVersion, "manifest kind %q is not a configuration push", m.Kind)
		return
	case m.Store != rc.cfg.Store:
		refuse(m.ConfigVersion, "the push is for store %s, this agent is store %s", m.Store, rc.cfg.Store)
		return
	case !time.Now().Before(m.Expires):
		refuse(m.ConfigVersion, "the push expired at %s", m.Expires.Format(time.RFC3339))
		return
	case m.ConfigVersion <= active:
		refuse(m.ConfigVersion, "version %d is not newer than the active version %d (replayed or out of order)", m.ConfigVersion, active)
		return
	}
	next, err := config.LoadWithOverrides(rc.path, []byte(m.Overrides))
	if err == nil {
		err = checkConfig(rc.path, next)
	}
	if err != nil {
		refuse(m.ConfigVersion, "%v", err)
		return
	}
	prev := rc.st.Active
	if rc.st.Trial {
		prev = rc.st.Previous // a trial not yet proven is no place to roll back to
	}
	rc.st.Previous, rc.st.Active, rc.st.Trial = prev, &overrideSet{Version: m.ConfigVersion, CommandID: c.ID, Overrides: m.Overrides, At: time.Now().UTC()}, true
	if err := rc.st.save(rc.cfg.DataDir); err != nil {
		rc.st.Active, rc.st.Trial = prev, false
		refuse(m.ConfigVersion, "cannot keep the overrides in %s: %v", rc.cfg.DataDir, err)
		return
	}
	rc.log.Info("configuration push accepted; restarting the agent's components with it", "version", m.ConfigVersion, "previous", active)
	close(rc.restart)
}

// checkConfig is what `validate` checks beyond the file's syntax.
func checkConfig(path string, cfg *config.Config) error {
	if _, err := config.Check(path, cfg); err != nil {
		return err
	}
	if _, err := cfg.Password(); err != nil {
		return err
	}
	ps, err := loadProfiles(cfg.ProfilesDir)
	if err != nil {
		return err
	}
	return capture.Check(cfg.Terminals, ps)
}

// cfgOr is cfg, or the local file alone when the overrides made it unloadable.
func cfgOr(cfg *config.Config, path string) *config.Config {
	if cfg != nil {
		return cfg
	}
	c, err := config.Load(path)
	if err != nil {
		return &config.Config{}
	}
	return c
}

// rollback returns to the previous overrides and reports why.
func rollback(st *overrideState, dataDir, why string, log *slog.Logger) {
	failed := st.Active
	st.Active, st.Previous, st.Trial = st.Previous, nil, false
	st.Report = &protocol.ConfigReport{CommandID: failed.CommandID, Version: failed.Version, Active: st.active(), State: protocol.ConfigRolledBack, Detail: why, At: time.Now().UTC()}
	log.Error("pushed configuration rolled back", "version", failed.Version, "active", st.active(), "reason", why)
	if err := st.save(dataDir); err != nil {
		log.Error("save pushed configuration state", "err", err)
	}
}
