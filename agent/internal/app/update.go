package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/trust"
	"github.com/lanebridge/lanebridge/agent/internal/update"
	"github.com/lanebridge/lanebridge/protocol"
)

// installRequest ends run: a verified release waits for its trial (see update.Install).
type installRequest struct{ st *update.Staged }

func (r *installRequest) Error() string { return "update " + r.st.Manifest.Version + " staged" }

func newUpdater(cfg *config.Config, log *slog.Logger) (*update.Updater, error) {
	pw, err := cfg.Password()
	if err != nil {
		return nil, err
	}
	keys, kerr := trust.Trusted()
	return update.New(update.Options{
		DataDir: cfg.DataDir, HubURL: cfg.Update.HubURL, Store: cfg.Store, Password: pw,
		Channel: cfg.Update.Channel, HealthTimeout: time.Duration(cfg.Update.HealthTimeout), Enabled: cfg.Update.On(),
		Version: Version, Trusted: keys, TrustErr: kerr, Log: log,
	})
}

// serve is the agent's life across updates and configuration pushes. It runs the agent from the
// config file at cfgPath with its pushed overrides: again after an accepted push, and with the
// previous overrides when the new ones fail their trial. When the agent stops for a verified
// release it runs the release's trial; a failed trial starts the agent again (this process's code
// is still the old one), a good one hands over to the new binary.
func serve(ctx context.Context, cfgPath string, logw io.Writer, wrap func(*slog.Logger) *slog.Logger) error {
	abs, err := filepath.Abs(cfgPath)
	if err != nil {
		return err
	}
	args := []string{"run", "--config", abs}
	var upd *update.Updater
	for {
		cfg, st, err := effectiveConfig(cfgPath)
		if err != nil && (st == nil || st.Active == nil) {
			return err
		}
		log := wrap(newLogger(cfgOr(cfg, cfgPath), logw))
		if err != nil {
			rollback(st, cfgOr(cfg, cfgPath).DataDir, fmt.Sprintf("the configuration with version %d does not load: %v", st.active(), err), log)
			continue
		}
		if upd == nil {
			// data_dir and update.* cannot be pushed, so the updater outlives configuration reloads.
			if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
				return fmt.Errorf("config key data_dir: cannot create %s: %w", cfg.DataDir, err)
			}
			if upd, err = newUpdater(cfg, log); err != nil {
				return err
			}
			act, err := upd.Startup()
			if err != nil {
				return err
			}
			if act == update.ExecOld {
				log.Warn("update: the new binary never became healthy; running the restored previous binary")
				return update.ExecTarget(upd.Exe(), args)
			}
		}
		rc := newRemoteConfig(cfgPath, cfg, st, log)
		rctx, rcancel := context.WithCancel(ctx)
		var timedOut atomic.Bool
		var watchdog *time.Timer
		pending, within := upd.PostSwap()
		if pending != nil {
			// The new binary after the swap must be healthy in time, or the previous one returns.
			watchdog = time.AfterFunc(within, func() {
				if p, _ := upd.PostSwap(); p != nil {
					timedOut.Store(true)
					rcancel()
				}
			})
		}
		err = runWith(rctx, cfg, log, upd, rc)
		if watchdog != nil {
			watchdog.Stop()
		}
		rcancel()
		if timedOut.Load() && ctx.Err() == nil {
			if err := upd.Revert(pending, fmt.Sprintf("%s did not report healthy within %s after the swap", pending.Version, within)); err != nil {
				return err
			}
			return update.ExecTarget(pending.Target, args)
		}
		if errors.Is(err, errRestart) {
			continue
		}
		rc.mu.Lock() // a confirm may still be finishing
		failedTrial := err != nil && ctx.Err() == nil && st.Trial
		if failedTrial {
			rollback(st, cfg.DataDir, fmt.Sprintf("the agent failed with version %d: %v", st.active(), err), log)
		}
		rc.mu.Unlock()
		if failedTrial {
			continue
		}
		var ir *installRequest
		if !errors.As(err, &ir) {
			return err
		}
		if err := upd.Install(ctx, ir.st, args, logw); !errors.Is(err, update.ErrRolledBack) {
			return err // not reached on unix after a good trial (exec); Windows: ErrRestart
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("update rolled back; the agent runs on", "version", ir.st.Manifest.Version, "report", upd.Report().Detail)
	}
}

// runTrial is `run` in a trial child (update.TrialEnv set): no service manager, and a graceful
// stop when the parent closes our stdin (or dies) or on SIGINT/SIGTERM.
func runTrial(cfgPath string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return serve(ctx, cfgPath, stderr, func(l *slog.Logger) *slog.Logger { return l.With("trial", Version) })
}

// offers handles update commands one at a time; a verified release goes to installc.
func (a *agent) offers(ctx context.Context, in <-chan *protocol.Command, installc chan<- *update.Staged) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-in:
			st := a.upd.Offer(ctx, c)
			a.requestStatus()
			if st != nil {
				installc <- st
				return
			}
		}
	}
}

// watchHealth tells the updater once the agent is healthy: spool open (it is), capture running
// for a second without a fatal error, and the hub reachable or the spool writable.
func (a *agent) watchHealth(ctx context.Context) {
	start := time.Now()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(start) < time.Second || a.sp.Stats().Failed {
			continue
		}
		if !a.fwd.C.Connected.Load() && !writable(a.cfg.DataDir) {
			continue
		}
		if err := a.upd.Healthy(); err != nil {
			a.log.Error("update: cannot record health", "err", err)
			continue
		}
		a.requestStatus()
		return
	}
}

// writable proves the data dir (the spool's folder) takes a durable write.
func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".health-*")
	if err != nil {
		return false
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.WriteString("ok"); err != nil {
		return false
	}
	return f.Sync() == nil
}

// printVersion is `version`: version, os/arch, channel (from --config when given) and the
// trusted release keys.
func printVersion(args []string, stdout io.Writer) {
	channel := config.DefaultUpdateChannel
	if path, _, err := configFlag("version", args); err == nil && len(args) > 0 {
		if cfg, err := config.Load(path); err == nil {
			channel = cfg.Update.Channel
		}
	}
	fmt.Fprintf(stdout, "lanebridge-agent %s (protocol v%d)\n", Version, protocol.Version)
	fmt.Fprintf(stdout, "os/arch:      %s/%s\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "channel:      %s\n", channel)
	keys, err := trust.Trusted()
	if err != nil {
		fmt.Fprintf(stdout, "trusted keys: none (%v)\n", err)
		return
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = fmt.Sprintf("%016X", k.ID())
	}
	fmt.Fprintf(stdout, "trusted keys: %s\n", strings.Join(ids, ", "))
}
