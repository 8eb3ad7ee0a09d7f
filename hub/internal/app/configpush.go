package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lanebridge/lanebridge/hub/internal/ingest"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// agentKeys are the top-level keys of agent.yaml (agent/internal/config.Config); the hub checks
// a push's shape against them, the agent validates it fully.
var agentKeys = map[string]bool{"store": true, "data_dir": true, "hub": true, "spool": true, "terminals": true, "log": true,
	"listen": true, "profiles_dir": true, "inventory": true, "debug": true, "update": true}

// forbiddenPushKeys are the keys a configuration push may never set; the agent refuses them
// too (agent/internal/config.ForbiddenOverride, which says why).
var forbiddenPushKeys = []string{"store", "data_dir", "update", "trust", "listen", "debug", "hub.broker", "hub.username",
	"hub.password", "hub.password_file", "hub.tls"}

// checkOverrides checks that b is a YAML mapping of agent.yaml keys and touches no forbidden key.
func checkOverrides(b []byte) error {
	if len(b) > protocol.MaxOverridesBytes {
		return fmt.Errorf("--file: %d bytes, the limit is %d", len(b), protocol.MaxOverridesBytes)
	}
	var m map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("--file: not a YAML mapping of agent.yaml keys: %w", err)
	}
	if len(m) == 0 {
		return errors.New("--file: no keys to push")
	}
	for k, v := range m {
		if !agentKeys[k] {
			return fmt.Errorf("--file: key %s is not an agent.yaml key (see the README's agent.yaml table)", k)
		}
		for _, f := range forbiddenPushKeys {
			if f == k {
				return fmt.Errorf("--file: key %s cannot be pushed: change it in the store's own agent.yaml", k)
			}
			if sub, ok := strings.CutPrefix(f, k+"."); ok {
				if mm, isMap := v.(map[string]any); isMap {
					if _, set := mm[sub]; set {
						return fmt.Errorf("--file: key %s cannot be pushed: change it in the store's own agent.yaml", f)
					}
				}
			}
		}
	}
	return nil
}

// configPush is `config push STORE --file overrides.yaml --key minisign.key [--expires 7d]`.
func configPush(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config push", flag.ContinueOnError)
	file := fs.String("file", "", "YAML of agent.yaml keys to set on the store's agent (required)")
	keyFile := fs.String("key", "", "minisign secret key whose public key the agents trust (required)")
	expires := fs.String("expires", "7d", "the agent refuses the push after this long")
	id, st, err := storeCmd(fs, args)
	if err != nil {
		return err
	}
	defer st.Close()
	if *file == "" || *keyFile == "" {
		return errors.New("config push: --file and --key are required")
	}
	life, err := parseLifetime(*expires)
	if err != nil || life == 0 {
		return fmt.Errorf("--expires: %q: use 7d, 24h, …", *expires)
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("--file: %w", err)
	}
	if err := checkOverrides(b); err != nil {
		return err
	}
	key, err := loadReleaseKey(*keyFile, stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	for range 3 { // another push taking the version first: sign the next one
		v, err := st.NextConfigVersion(ctx, id)
		if err != nil {
			return storeNotFound(id, err)
		}
		now := clock.Now().UTC()
		m := &protocol.Manifest{V: protocol.ManifestVersion, Kind: protocol.ManifestConfig, Product: protocol.ProductAgent,
			Published: now, Expires: now.Add(life), Store: id, ConfigVersion: v, Overrides: string(b)}
		sm, err := protocol.SignManifest(key, m)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		js, _ := json.Marshal(sm)
		p := store.ConfigPush{Store: id, Version: v, CommandID: fmt.Sprintf("config-%s-%d", id, v), Overrides: string(b),
			Manifest: string(js), ExpiresAt: m.Expires}
		err = st.AddConfigPush(ctx, p)
		if errors.Is(err, store.ErrExists) {
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s config version %d\n", id, v)
		fmt.Fprintf(stderr, "store %s: config version %d signed and queued; the hub sends it while the agent is online until it reports (`lanebridge-hub config status %s`)\n", id, v, id)
		return nil
	}
	return errors.New("config push: other pushes to this store keep taking the version; try again")
}

// configStatus is `config status [STORE]`.
func configStatus(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("config status", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	id, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	_, st, err := cf.open(false)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.ConfigPushes(context.Background(), id)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tVERSION\tSTATE\tPUSHED\tREPORTED\tDETAIL")
	for _, p := range list {
		rep := "-"
		if !p.ReportedAt.IsZero() {
			rep = p.ReportedAt.Format(time.RFC3339)
		}
		state := p.State
		if state == store.ConfigPending && !clock.Now().Before(p.ExpiresAt) {
			state = "expired" // never reported before its expiry: no longer sent
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", p.Store, p.Version, state, p.CreatedAt.Format(time.RFC3339), rep, p.Detail)
	}
	return tw.Flush()
}

// configPusher sends pending configuration pushes to their stores' agents as config commands,
// while the agent is online (its statuses arrive), again every resend until the agent reports
// on that version; it stores the agents' reports.
type configPusher struct {
	st     *store.DB
	pub    ingest.Publisher
	log    *slog.Logger
	resend time.Duration
	reload time.Duration

	mu       sync.Mutex
	pending  map[string]store.ConfigPush // by store
	sent     map[string]time.Time        // command id -> last sent
	reported map[string]string           // store -> last report stored ("version state detail")
}

func newConfigPusher(st *store.DB, pub ingest.Publisher, log *slog.Logger) *configPusher {
	return &configPusher{st: st, pub: pub, log: log.With("component", "configpush"), resend: configResend, reload: configReload,
		pending: map[string]store.ConfigPush{}, sent: map[string]time.Time{}, reported: map[string]string{}}
}

// Run reloads the pending pushes (a `config push` made while the hub runs) until ctx ends.
func (c *configPusher) Run(ctx context.Context) error {
	for {
		list, err := c.st.PendingConfigPushes(ctx, clock.Now())
		if err != nil && ctx.Err() == nil {
			c.log.Warn("read pending config pushes", "err", err)
		}
		if err == nil {
			m := map[string]store.ConfigPush{}
			for _, p := range list {
				m[p.Store] = p // ordered by version: the newest wins
			}
			c.mu.Lock()
			c.pending = m
			c.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.reload):
		}
	}
}

// OnStatus stores a new config report and sends the store's pending push if due.
func (c *configPusher) OnStatus(s protocol.Status) {
	ctx := context.Background()
	if r := s.Config; r != nil && r.Version > 0 {
		key := fmt.Sprintf("%d %s %s", r.Version, r.State, r.Detail)
		c.mu.Lock()
		seen := c.reported[s.Store] == key
		c.mu.Unlock()
		if !seen {
			changed, err := c.st.PutConfigReport(ctx, s.Store, r.Version, r.State, r.Detail)
			if err != nil {
				c.log.Warn("store config report", "store", s.Store, "err", err)
			} else {
				c.mu.Lock()
				c.reported[s.Store] = key
				if p, ok := c.pending[s.Store]; ok && p.Version == r.Version {
					delete(c.pending, s.Store)
				}
				c.mu.Unlock()
				if changed {
					c.log.Info("agent reported on a config push", "store", s.Store, "version", r.Version, "state", r.State, "active", r.Active, "detail", r.Detail)
				}
			}
		}
	}
	if s.State == "offline" {
		return
	}
	c.mu.Lock()
	p, ok := c.pending[s.Store]
	due := ok && time.Since(c.sent[p.CommandID]) >= c.resend && (s.Config == nil || s.Config.Version != p.Version)
	if due {
		c.sent[p.CommandID] = time.Now()
	}
	c.mu.Unlock()
	if !due {
		return
	}
	var sm protocol.SignedManifest
	if err := json.Unmarshal([]byte(p.Manifest), &sm); err != nil {
		c.log.Error("stored config manifest unreadable", "store", p.Store, "version", p.Version, "err", err)
		return
	}
	body, _ := json.Marshal(protocol.Command{V: protocol.Version, ID: p.CommandID, Type: protocol.CommandConfig, Manifest: &sm})
	if err := c.pub.Publish(protocol.CommandsTopic(p.Store), body); err != nil {
		c.log.Warn("send config push", "store", p.Store, "version", p.Version, "err", err)
		return
	}
	c.log.Info("config push sent", "store", p.Store, "version", p.Version, "command", p.CommandID)
}

// configResend is how often a pending push is sent again to an online agent that has not
// reported on it; configReload how often pushes made by the CLI are picked up (tests shorten).
var configResend, configReload = 15 * time.Second, 5 * time.Second
