package app

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kardianos/service"

	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/update"
)

// systemdUnit replaces kardianos/service's unit, which waits 120 s to restart and has no
// hardening.
//
//go:embed systemd.tmpl
var systemdUnit string

// program adapts run to kardianos/service: Start must not block, Stop cancels the context.
type program struct {
	cfg    *config.Config
	path   string // the config file: serve reloads it with pushed overrides
	out    io.Writer
	events service.Logger // non-nil: warnings and errors also go here (the Windows Event Log)
	cancel context.CancelFunc
	done   chan error
	// stopping: Stop asked run to end, so the process must not exit before the service manager
	// hears it stopped (on Windows an exit first looks like a crash and triggers recovery).
	stopping atomic.Bool
}

func (p *program) Start(s service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan error, 1)
	go func() {
		wrap := func(log *slog.Logger) *slog.Logger {
			if p.events != nil {
				log = slog.New(eventHandler{log.Handler(), p.events})
			}
			return log
		}
		err := serve(ctx, p.path, p.out, wrap)
		p.done <- err
		if p.stopping.Load() {
			return
		}
		if err != nil {
			// A fatal error exits non-zero so the service manager restarts the agent.
			fmt.Fprintf(os.Stderr, "lanebridge-agent: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}()
	return nil
}

// Stop cancels the agent and waits for it (spool closed) at most stopTimeout, so the service
// manager never has to kill it mid-write.
func (p *program) Stop(s service.Service) error {
	if p.cancel != nil {
		p.stopping.Store(true)
		p.cancel()
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			return fmt.Errorf("agent did not stop within %s", stopTimeout)
		}
	}
	return nil
}

// eventHandler also sends warnings and errors to the service manager's log.
type eventHandler struct {
	slog.Handler
	sys service.Logger
}

func (h eventHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
		if r.Level >= slog.LevelError {
			_ = h.sys.Error(msg)
		} else {
			_ = h.sys.Warning(msg)
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return eventHandler{h.Handler.WithAttrs(as), h.sys}
}

func (h eventHandler) WithGroup(name string) slog.Handler {
	return eventHandler{h.Handler.WithGroup(name), h.sys}
}

// Windows service log: data_dir/logs/agent.log, 10 MiB, 5 old files.
const (
	logFileMax  = 10 << 20
	logFileKeep = 5
)

// serviceName is the service's name on every platform (unit, init script, Windows service).
const serviceName = "lanebridge-agent"

// stopTimeout bounds a graceful stop (bbolt closed): systemd's TimeoutStopSec in systemd.tmpl and
// well inside the Windows service manager's default 20 s wait.
const stopTimeout = 15 * time.Second

// serviceConfig describes the service; the systemd unit gets data_dir (and binDir, when not "":
// the binary's own folder, for self-update) as its only writable paths.
func serviceConfig(cfgPath string, cfg *config.Config, binDir string) (*service.Config, error) {
	abs, err := filepath.Abs(cfgPath)
	if err != nil {
		return nil, err
	}
	// A data_dir the unit cannot carry matters only to a systemd install, which checks it
	// (serviceCtl.prepare); run and the other actions do not need the unit.
	unit, _ := renderUnit(cfg, binDir)
	return &service.Config{
		Name:        serviceName,
		DisplayName: "Lanebridge store agent",
		Description: "Captures POS transactions and forwards them to the Lanebridge hub.",
		Arguments:   []string{"run", "--config", abs},
		Option: service.KeyValue{
			// Windows: kardianos sets one recovery action from these; windowsRecovery (after
			// install) replaces it with three restarts and the non-crash-failure flag.
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "5s",
			"OnFailureResetPeriod":   3600,
			"DelayedAutoStart":       true,
			"Restart":                "always",
			"SystemdScript":          unit,
		},
	}, nil
}

// renderUnit fills in what systemd.tmpl takes from the configuration (kardianos fills the rest):
// the places the agent writes, data_dir, the folder of inventory.plu_file (rewritten
// atomically there) and binDir (the binary's own folder, where self-update swaps it; "" for
// none, see updateBinDir), are the unit's only writable paths.
func renderUnit(cfg *config.Config, binDir string) (string, error) {
	rw := []string{cfg.DataDir}
	keys := []string{"data_dir"}
	if cfg.Inventory.PLUFile != "" {
		rw = append(rw, filepath.Dir(cfg.Inventory.PLUFile))
		keys = append(keys, "inventory.plu_file")
	}
	if binDir != "" {
		rw = append(rw, binDir)
		keys = append(keys, "the binary's folder")
	}
	for i, d := range rw {
		key := keys[i]
		if !filepath.IsAbs(d) {
			return "", &config.Error{Key: key, Msg: fmt.Sprintf("%q is relative; a service does not start in your directory — use an absolute path", d)}
		}
		if strings.ContainsAny(d, " \t\n\r\"'\\{}") {
			return "", &config.Error{Key: key, Msg: fmt.Sprintf("%q contains a space, quote, backslash or brace, which the systemd unit cannot carry; choose another directory", d)}
		}
		// % starts a systemd specifier.
		rw[i] = strings.ReplaceAll(filepath.Clean(d), "%", "%%")
	}
	return strings.ReplaceAll(systemdUnit, "@DATA_DIR@", strings.Join(rw, " ")), nil
}

// supervisionGap says, for a kardianos system that is not systemd (or Windows), what install
// writes and what supervision the agent then lacks; "" when the system supervises it fully.
func supervisionGap(system string) string {
	var what string
	switch system {
	case "linux-systemd", "windows-service":
		return ""
	case "linux-upstart":
		what = "an Upstart job /etc/init/" + serviceName + ".conf"
	case "unix-systemv", "linux-openrc", "linux-rcs", "linux-procd":
		what = "an init script /etc/init.d/" + serviceName + " (" + system + ")"
	default:
		what = "a " + system + " service definition"
	}
	return fmt.Sprintf("systemd is not running here; install writes %s, not the systemd unit: the agent gets no automatic restart after a crash, no start-limit handling and no sandboxing (dedicated user, ProtectSystem, ReadWritePaths)", what)
}

// chosenSystem is the service system kardianos/service detected; tests replace it.
var chosenSystem = func() string { return service.ChosenSystem().String() }

func cmdRun(args []string, stderr io.Writer) error {
	path, _, err := configFlag("run", args)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if os.Getenv(update.TrialEnv) != "" {
		return runTrial(path, stderr)
	}
	sc, err := serviceConfig(path, cfg, "")
	if err != nil {
		return err
	}
	p := &program{cfg: cfg, out: stderr, path: path}
	s, err := service.New(p, sc)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if runtime.GOOS == "windows" && !service.Interactive() {
		// A Windows service has no stderr anyone reads: a rotating file, plus the Event Log.
		f, err := openRotating(filepath.Join(cfg.DataDir, "logs", "agent.log"), logFileMax, logFileKeep)
		if err != nil {
			return err
		}
		defer f.Close()
		p.out = f
		if p.events, err = s.Logger(nil); err != nil {
			return fmt.Errorf("event log: %w", err)
		}
	}
	// service.Run blocks until SIGINT/SIGTERM (or the Windows service manager) stops us.
	return s.Run()
}

// serviceActions are the service subcommands; status is handled here, the rest by kardianos.
var serviceActions = []string{"install", "uninstall", "start", "stop", "restart", "status"}

func cmdService(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "unit" {
		return cmdServiceUnit(args[1:], stdout, stderr)
	}
	if len(args) < 1 || !slices.Contains(serviceActions, args[0]) {
		return fmt.Errorf("service: want one of %s, unit", strings.Join(serviceActions, ", "))
	}
	action := args[0]
	fs := flag.NewFlagSet("service "+action, flag.ContinueOnError)
	path := fs.String("config", "agent.yaml", "agent configuration file")
	force := fs.Bool("force", false, "install: install even where the service system cannot supervise the agent (not systemd)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	// Installing, stopping or removing the service needs only data_dir; the agent the service
	// runs refuses a file that lists no terminals.
	cfg, err := config.LoadWithoutTerminals(*path)
	if err != nil {
		return err
	}
	// kardianos/service runs this binary (os.Executable: on Linux its real path, symlinks
	// resolved). Self-update replaces it in its folder: the unit makes that folder writable
	// only when it is the agent's own (updateBinDir); install says so otherwise.
	exe, err := executable()
	if err != nil {
		return fmt.Errorf("service: this binary's path: %w", err)
	}
	binDir, why := updateBinDir(exe, true)
	sc, err := serviceConfig(*path, cfg, binDir)
	if err != nil {
		return err
	}
	s, err := service.New(&program{}, sc)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	return serviceControl(serviceCtl{Service: s, system: chosenSystem(), prepare: func() error {
		if _, err := renderUnit(cfg, binDir); err != nil {
			return err
		}
		if why != "" {
			fmt.Fprintf(stdout, "warning: %s\n", selfUpdateHint(exe, *path, why))
		}
		if os.Geteuid() != 0 {
			return nil
		}
		// The unit runs the agent as the lanebridge user (systemd.tmpl).
		return prepareServiceUser(realHost, *path, cfg, binDir, stdout)
	}}, action, *force, stdout)
}

// serviceCtl is what serviceControl needs from the machine; tests replace all of it.
type serviceCtl struct {
	service.Service
	system  string
	prepare func() error // before a systemd install: check data_dir, the service user and its files
}

// serviceControl runs one service action. Install refuses (unless force) where the agent would
// not be supervised, and always says what it lacks.
func serviceControl(c serviceCtl, action string, force bool, stdout io.Writer) error {
	if action == "status" {
		st, err := c.Status()
		if errors.Is(err, service.ErrNotInstalled) {
			fmt.Fprintf(stdout, "%s: not installed (%s)\n", serviceName, c.system)
			return err
		}
		if err != nil {
			// SysV's `service NAME status` fails for a script that is not there.
			fmt.Fprintf(stdout, "%s: unknown, not installed or not answering (%s)\n", serviceName, c.system)
			return fmt.Errorf("service status: %w", err)
		}
		words := map[service.Status]string{service.StatusRunning: "running", service.StatusStopped: "stopped"}[st]
		if words == "" {
			words = "unknown"
		}
		fmt.Fprintf(stdout, "%s: %s (%s)\n", serviceName, words, c.system)
		return nil
	}
	if action == "install" {
		if gap := supervisionGap(c.system); gap != "" {
			if !force {
				return fmt.Errorf("service install refused: %s; pass --force to install anyway", gap)
			}
			fmt.Fprintf(stdout, "warning: %s\n", gap)
		}
		if c.system == "linux-systemd" {
			if err := c.prepare(); err != nil {
				return fmt.Errorf("service install: %w", err)
			}
		}
	}
	if err := service.Control(c, action); err != nil {
		return fmt.Errorf("service %s: %w", action, err)
	}
	if action == "install" {
		if err := windowsRecovery(serviceName); err != nil {
			return fmt.Errorf("service install: recovery actions: %w", err)
		}
	}
	fmt.Fprintf(stdout, "service %s: done (%s)\n", action, c.system)
	return nil
}
