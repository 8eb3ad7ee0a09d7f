// Package app is the lanebridge-agent command: run (as a service or in the foreground),
// status, validate and version.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/capture"
	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/inventory"
	"github.com/lanebridge/lanebridge/agent/internal/replay"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/agent/internal/update"
	"github.com/lanebridge/lanebridge/agent/internal/uplink"
	"github.com/lanebridge/lanebridge/protocol"
)

// Version is set at build time with -ldflags "-X ...app.Version=...".
var Version = "dev"

const usage = `lanebridge-agent — the Lanebridge store agent

Usage:
  lanebridge-agent run       --config agent.yaml   capture and forward (foreground or as a service)
  lanebridge-agent status    --config agent.yaml   backlog, oldest unsent, last ack, last capture (works offline)
  lanebridge-agent validate  --config agent.yaml   check the configuration and exit
  lanebridge-agent enroll    --hub https://hub:8443 --token T --config agent.yaml [--ca FILE] [--data-dir DIR]
                                                  fetch the store's credentials once and write the configuration
  lanebridge-agent check     --config agent.yaml   full check of the spool, agent stopped (exit 0 sound, 3 corrupt)
  lanebridge-agent inventory SKU --config agent.yaml [--json]   item, price and available quantity
  lanebridge-agent service install|uninstall|start|stop|restart|status --config agent.yaml [--force]
  lanebridge-agent service unit --config agent.yaml [--exe PATH] [--data-dir DIR]   print the systemd unit install writes
  lanebridge-agent msi-configure --config PATH (--store S --hub URL --data-dir DIR | --config-file F) [--service]
                                              the Windows installer's step: write the config, set service recovery
  lanebridge-agent version   [--config agent.yaml]  version, os/arch, channel, trusted release keys
` + captureUsage

// Main runs the command and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stderr)
	case "status":
		err = cmdStatus(args[1:], stdout)
	case "validate":
		err = cmdValidate(args[1:], stdout, stderr)
	case "enroll":
		err = cmdEnroll(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "inventory":
		err = cmdInventory(args[1:], stdout)
	case "service":
		err = cmdService(args[1:], stdout, stderr)
	case "msi-configure":
		err = cmdMSIConfigure(args[1:], stdout)
	case "capture":
		err = cmdCapture(args[1:], stdout, stderr)
	case "profile":
		err = cmdProfile(args[1:], stdout)
	case "reparse":
		err = cmdReparse(args[1:], stdout)
	case "version", "--version":
		printVersion(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "lanebridge-agent: %v\n", err)
		return 1
	}
	return 0
}

func configFlag(name string, args []string) (string, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "agent.yaml", "agent configuration file")
	if err := fs.Parse(args); err != nil {
		return "", fs, err
	}
	return *path, fs, nil
}

// checkCredentials runs config.Check (printing its warnings) and reads the broker password.
func checkCredentials(path string, cfg *config.Config, stderr io.Writer) error {
	warnings, err := config.Check(path, cfg)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "lanebridge-agent: warning: %s\n", w)
	}
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	_, err = cfg.Password()
	return err
}

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	path, _, err := configFlag("validate", args)
	if err != nil {
		return err
	}
	cfg, ost, err := effectiveConfig(path)
	if err != nil {
		return err
	}
	if err := checkCredentials(path, cfg, stderr); err != nil {
		return err
	}
	ps, err := loadProfiles(cfg.ProfilesDir)
	if err != nil {
		return err
	}
	if err := capture.Check(cfg.Terminals, ps); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK (store %s, %d terminal(s), hub %s)\n", path, cfg.Store, len(cfg.Terminals), cfg.Hub.Broker)
	if ost != nil && ost.Active != nil {
		local, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		merged, err := config.Merge(local, ost.overrides())
		if err != nil {
			return err
		}
		trial := ""
		if ost.Trial {
			trial = ", on trial"
		}
		fmt.Fprintf(stdout, "pushed configuration version %d%s (%s) is applied over it; the effective configuration:\n%s",
			ost.Active.Version, trial, filepath.Join(cfg.DataDir, overridesFile), redactPassword(merged))
	}
	return nil
}

// redactPassword hides hub.password in a configuration shown on screen.
func redactPassword(b []byte) string {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if k, _, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "password" {
			lines[i] = k + ": (hidden)"
		}
	}
	return strings.Join(lines, "\n")
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	o := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o)).With("store", cfg.Store)
	}
	return slog.New(slog.NewTextHandler(w, o)).With("store", cfg.Store)
}

func spoolPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "spool.db") }

// agent is a running agent.
// quarantinePage bounds the quarantined captures carried by one status message.
const quarantinePage = 100

type agent struct {
	quarAcked atomic.Uint64 // quarantined captures acknowledged by the hub (this run)
	cardMasks atomic.Uint64 // card-data maskings by the capture sources (this run)
	cfg       *config.Config
	log       *slog.Logger
	sp        *spool.Spool
	fwd       *uplink.Forwarder
	sources   map[string]capture.Source // by terminal id
	inv       *inventory.Service        // nil in the offline status command
	journal   *capture.Journal          // the raw journal; nil in the offline status command
	rep       *replay.Executor          // nil in the offline status command
	upd       *update.Updater           // nil in the offline status command
	rc        *remoteConfig             // configuration pushes; nil in the offline status command and tests
	now       func() time.Time          // the agent's clock (agentClock); nil: time.Now
}

func (a *agent) clock() time.Time {
	if a.now == nil {
		return time.Now()
	}
	return a.now()
}

func (a *agent) status() protocol.Status {
	s := a.sp.Stats()
	st := protocol.Status{
		Version: Version, Clock: a.clock().UTC(), Epoch: s.Epoch, LastSeq: s.LastSeq, LastAck: s.LastAck,
		Backlog: s.Backlog, LastCapture: s.LastCapture, QuarantineCount: s.QuarantineCount, Alarms: s.Alarms,
		SpoolUsedBytes: s.UsedBytes, SpoolMaxBytes: s.MaxBytes,
		OS: runtime.GOOS, Arch: runtime.GOARCH, Channel: a.cfg.Update.Channel,
	}
	if a.fwd != nil {
		// The hub's ack as heard, not yet persisted (acks are persisted lazily): what the hub
		// has stored is what the status reports.
		if h := a.fwd.C.HubAck.Load(); h > st.LastAck && h <= st.LastSeq {
			st.Backlog -= min(st.Backlog, h-st.LastAck)
			st.LastAck = h
		}
	}
	if a.upd != nil {
		st.Update = a.upd.Report()
	}
	if !s.OldestUnsent.IsZero() {
		st.OldestUnsentAge = a.clock().Sub(s.OldestUnsent).Seconds() // both on the agent's clock
	}
	// Quarantined captures go out a page at a time, oldest first, until the hub acknowledges
	// them (Ack.QuarantineThrough): a burst larger than a page is never lost.
	if q, err := a.sp.QuarantinedAfter(a.quarAcked.Load(), quarantinePage); err == nil {
		st.Quarantine = q
	}
	if a.inv != nil {
		st.InventoryVersion = a.inv.Version()
		st.Alarms = append(st.Alarms, a.inv.Alarms()...)
	}
	if a.journal != nil {
		st.Alarms = append(st.Alarms, a.journal.Alarms()...)
	}
	if a.rep != nil {
		st.CommandResults = a.rep.Results()
	}
	if a.rc != nil {
		st.Config = a.rc.Report()
	}
	if a.fwd != nil {
		if r := a.fwd.C.Refused(); r != nil {
			st.Alarms = append(st.Alarms, fmt.Sprintf("hub refused seq %d..%d for good (%s); forwarding paused, records kept in the spool", r.From, r.To, r.Reason))
		}
	}
	return st
}

// run is the agent's life: spool, then uplink, then capture; stop in reverse.
func run(ctx context.Context, cfg *config.Config, log *slog.Logger, upd *update.Updater) error {
	return runWith(ctx, cfg, log, upd, nil)
}

// runWith is run handing configuration pushes to rc (nil: none); it returns errRestart when
// rc accepted one.
func runWith(ctx context.Context, cfg *config.Config, log *slog.Logger, upd *update.Updater, rc *remoteConfig) error {
	pw, err := cfg.Password()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("config key data_dir: cannot create %s: %w", cfg.DataDir, err)
	}
	now, err := agentClock()
	if err != nil {
		return err
	}
	sp, err := spool.Open(spoolPath(cfg), spool.Options{
		Store: cfg.Store, Retention: time.Duration(cfg.Spool.Retention), MaxSize: int64(cfg.Spool.MaxSize), Logger: log, Now: now,
	})
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	defer sp.Close()
	profiles, err := loadProfiles(cfg.ProfilesDir)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	jr, err := capture.OpenJournal(journalPath(cfg), 10*time.Second)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	defer jr.Close()
	a := &agent{cfg: cfg, log: log, sp: sp, sources: map[string]capture.Source{}, journal: jr, upd: upd, rc: rc, now: now}
	var configCmds chan *protocol.Command
	var restart chan struct{}
	if rc != nil {
		configCmds, restart = rc.cmds, rc.restart
	}
	srcs, err := capture.Build(cfg.Terminals, capture.Env{
		Profiles: profiles, Spool: sp, Journal: jr, Retention: time.Duration(cfg.Spool.Retention), Masked: &a.cardMasks, Log: log,
	})
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	for i, t := range cfg.Terminals {
		a.sources[t.ID] = srcs[i] // before the local endpoint reads them
	}
	st := sp.Stats()
	for _, al := range st.Alarms {
		log.Error("spool alarm", "alarm", al)
	}
	for _, al := range a.journal.Alarms() {
		log.Error("raw journal alarm", "alarm", al)
	}
	log.Info("spool open", "epoch", st.Epoch, "last_seq", st.LastSeq, "last_ack", st.LastAck, "backlog", st.Backlog)

	closeInv, err := a.openDownlink()
	if err != nil {
		return err
	}
	defer closeInv()
	updates := make(chan *protocol.Command, 4)
	installc := make(chan *update.Staged, 1)

	a.fwd, err = uplink.New(uplink.Config{
		Store: cfg.Store, Broker: cfg.Hub.Broker, Username: cfg.Hub.Username, Password: pw,
		CAFile: cfg.Hub.TLS.CAFile, CertFile: cfg.Hub.TLS.CertFile, KeyFile: cfg.Hub.TLS.KeyFile,
		BatchSize: cfg.Hub.BatchSize, Window: cfg.Hub.Window, WindowRecords: cfg.Hub.WindowRecords, AckTimeout: time.Duration(cfg.Hub.AckTimeout),
		Heartbeat: time.Duration(cfg.Hub.Heartbeat), Status: a.status, Logger: log,
		Inventory: a.inv.Messages(), Commands: a.rep.Commands(), Updates: updates, ConfigCommands: configCmds,
		OnQuarantineAck: func(through uint64) {
			for {
				prev := a.quarAcked.Load()
				if through <= prev || a.quarAcked.CompareAndSwap(prev, through) {
					break
				}
			}
			if through < a.sp.Stats().QuarantineCount {
				a.fwd.RequestStatus() // more pages to send: do not wait for the heartbeat
			}
		},
	}, sp)
	if err != nil {
		return fmt.Errorf("uplink: %w", err)
	}

	var (
		wg   sync.WaitGroup
		errc = make(chan error, 8+len(cfg.Terminals))
	)
	fctx, fcancel := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.fwd.Run(fctx); err != nil {
			errc <- fmt.Errorf("uplink: %w", err)
		}
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := a.inv.Run(fctx); err != nil {
			errc <- fmt.Errorf("inventory: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		_ = a.rep.Run(fctx) // returns nil; failures are command results
	}()
	if upd != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.offers(fctx, updates, installc)
		}()
	}
	if rc != nil {
		rc.notify = a.fwd.RequestStatus
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc.run(fctx)
		}()
	}

	if cfg.Listen != "off" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			log.Warn("local status endpoint disabled", "listen", cfg.Listen, "err", err)
		} else {
			srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second}
			go srv.Serve(ln)
			defer srv.Close()
			log.Info("local endpoint", "url", "http://"+ln.Addr().String())
		}
	}

	cctx, ccancel := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	for i, t := range cfg.Terminals {
		src := srcs[i]
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := src.Run(cctx); err != nil {
				errc <- fmt.Errorf("terminal %s: %w", t.ID, err)
			}
		}()
	}

	if upd != nil {
		go a.watchHealth(cctx)
	}

	if rc != nil {
		go rc.confirm(cctx) // new overrides on trial count as applied after trialPeriod without a failure
	}
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case st := <-installc:
			log.Info("update verified; stopping the agent for its trial", "version", st.Manifest.Version)
			runErr = &installRequest{st}
			break loop
		case <-restart:
			runErr = errRestart
			break loop
		case err := <-errc:
			runErr = err
			log.Error("fatal; stopping so the service manager restarts the agent", "err", err)
			break loop
		case <-purge.C:
			if n, err := sp.Purge(); err != nil {
				log.Warn("purge failed", "err", err)
			} else if n > 0 {
				log.Info("purged acknowledged records past retention", "records", n)
			}
		}
	}
	// Stop capture first, then give the forwarder a moment to drain what is in flight.
	ccancel()
	cwg.Wait()
	var inst *installRequest
	if runErr == nil || errors.As(runErr, &inst) || errors.Is(runErr, errRestart) {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && a.fwd.C.Connected.Load() && sp.LastAck() < sp.LastSeq() {
			time.Sleep(50 * time.Millisecond)
		}
	}
	fcancel()
	wg.Wait()
	log.Info("agent stopped", "last_seq", sp.LastSeq(), "last_ack", sp.LastAck(), "restart", errors.Is(runErr, errRestart))
	return runErr
}

// localStatus is served on /status and printed by `status`.
type localStatus struct {
	protocol.Status
	Connected bool              `json:"connected"`
	Published uint64            `json:"published"`
	Acked     uint64            `json:"acked"`
	Captured  map[string]uint64 `json:"captured"`
	// ConnectError is why the last connect to the hub's broker failed (none since the last
	// successful connect: nil); ConnectFailures counts those failures.
	ConnectError    *uplink.ConnectError `json:"connect_error,omitempty"`
	ConnectFailures uint64               `json:"connect_failures,omitempty"`
}

func (a *agent) local() localStatus {
	ls := localStatus{Status: a.status(), Connected: a.fwd.C.Connected.Load(), Published: a.fwd.C.Published.Load(), Acked: a.fwd.C.Acked.Load(), Captured: map[string]uint64{},
		ConnectError: a.fwd.C.LastConnectError(), ConnectFailures: a.fwd.C.ConnectFailures.Load()}
	ls.V, ls.Store = protocol.Version, a.cfg.Store
	ls.State = "offline"
	if ls.Connected {
		ls.State = "online"
	}
	for id, s := range a.sources {
		ls.Captured[id] = s.Stats().Records
	}
	return ls
}

func (a *agent) handler() http.Handler {
	mux := http.NewServeMux()
	if a.cfg.Debug {
		// Profiling, for support, only when the config asks for it (debug: true).
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(a.local())
	})
	mux.HandleFunc("GET /inventory/{sku}", a.handleInventory)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if a.sp.Stats().Failed {
			http.Error(w, "spool failed", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		ls := a.local()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		family := func(name, typ, help string, samples ...string) {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
			for _, s := range samples {
				fmt.Fprintf(w, "%s%s\n", name, s)
			}
		}
		num := func(v any) string { return fmt.Sprintf(" %v", v) }
		family("lanebridge_build_info", "gauge", "Version of the running agent (always 1).",
			fmt.Sprintf("{component=\"agent\",version=%q,go_version=%q,protocol=\"%d\"} 1", Version, runtime.Version(), protocol.Version))
		family("lanebridge_agent_last_seq", "gauge", "Sequence number of the last record captured and spooled.", num(ls.LastSeq))
		family("lanebridge_agent_last_ack", "gauge", "Sequence number the hub last acknowledged as stored.", num(ls.LastAck))
		family("lanebridge_agent_backlog", "gauge", "Spooled records the hub has not yet acknowledged.", num(ls.Backlog))
		family("lanebridge_agent_oldest_unsent_age_seconds", "gauge", "Age of the oldest unacknowledged record.", num(ls.OldestUnsentAge))
		family("lanebridge_agent_published_records_total", "counter", "Records published to the hub (resends included).", num(ls.Published))
		family("lanebridge_agent_quarantined_total", "counter", "Captures that could not be parsed and were quarantined.", num(ls.QuarantineCount))
		family("lanebridge_agent_card_masks_total", "counter", "Card numbers masked in captures before spooling.", num(a.cardMasks.Load()))
		ids := slices.Sorted(maps.Keys(ls.Captured))
		captured := make([]string, len(ids))
		for i, id := range ids {
			captured[i] = fmt.Sprintf("{terminal=%q} %d", id, ls.Captured[id])
		}
		family("lanebridge_agent_captured_records_total", "counter", "Records captured, by terminal.", captured...)
		c := 0
		if ls.Connected {
			c = 1
		}
		family("lanebridge_agent_connected", "gauge", "1 while the agent is connected to the hub's broker.", num(c))
	})
	return mux
}

func cmdStatus(args []string, stdout io.Writer) error {
	path, _, err := configFlag("status", args)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	var ls localStatus
	sp, err := spool.OpenReadOnly(spoolPath(cfg), spool.Options{Store: cfg.Store})
	switch {
	case err == nil:
		a := &agent{cfg: cfg, sp: sp}
		ls.Status = a.status()
		ls.Store, ls.State = cfg.Store, "not running"
		sp.Close()
	case errors.Is(err, spool.ErrLocked) && cfg.Listen != "off":
		c := http.Client{Timeout: 5 * time.Second}
		resp, herr := c.Get("http://" + cfg.Listen + "/status")
		if herr != nil {
			return fmt.Errorf("the agent holds the spool but its local endpoint %s does not answer: %w", cfg.Listen, herr)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&ls); err != nil {
			return fmt.Errorf("read status from the running agent: %w", err)
		}
		ls.State = "running, " + ls.State
	default:
		return fmt.Errorf("read spool: %w", err)
	}
	fmt.Fprintf(stdout, "store:           %s\n", ls.Store)
	fmt.Fprintf(stdout, "agent:           %s\n", ls.State)
	if ce := ls.ConnectError; ce != nil {
		fmt.Fprintf(stdout, "hub unreachable: %s: %s (since %d failed connects, last at %s)\n", ce.Reason, ce.Err, ls.ConnectFailures, ce.At.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "epoch:           %s\n", ls.Epoch)
	fmt.Fprintf(stdout, "captured (seq):  %d\n", ls.LastSeq)
	fmt.Fprintf(stdout, "acked by hub:    %d\n", ls.LastAck)
	fmt.Fprintf(stdout, "backlog:         %d\n", ls.Backlog)
	fmt.Fprintf(stdout, "oldest unsent:   %s\n", (time.Duration(ls.OldestUnsentAge) * time.Second).String())
	fmt.Fprintf(stdout, "quarantined:     %d\n", ls.QuarantineCount)
	ids := make([]string, 0, len(ls.LastCapture))
	for id := range ls.LastCapture {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(stdout, "last capture %-4s %s\n", id+":", ls.LastCapture[id].Local().Format(time.RFC3339))
	}
	if len(ls.Alarms) > 0 {
		fmt.Fprintf(stdout, "ALARMS:          %s\n", strings.Join(ls.Alarms, "; "))
	}
	if ls.Config == nil {
		if st, err := loadOverrideState(cfg.DataDir); err == nil {
			ls.Config = st.Report
		}
	}
	if c := ls.Config; c != nil {
		fmt.Fprintf(stdout, "config push:     version %d active; last push version %d %s", c.Active, c.Version, c.State)
		if c.Detail != "" {
			fmt.Fprintf(stdout, " (%s)", c.Detail)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}
