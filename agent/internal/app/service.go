package app

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kardianos/service"

	"github.com/lanebridge/lanebridge/agent/internal/config"
)

// systemdUnit replaces kardianos/service's unit, which waits 120 s to restart and has no
// hardening.
//
//go:embed systemd.tmpl
var systemdUnit string

// program adapts run to kardianos/service: Start must not block, Stop cancels the context.
type program struct {
	cfg    *config.Config
	out    io.Writer
	cancel context.CancelFunc
	done   chan error
}

func (p *program) Start(s service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan error, 1)
	go func() {
		err := run(ctx, p.cfg, newLogger(p.cfg, p.out))
		p.done <- err
		if err != nil {
			// A fatal error exits non-zero so the service manager restarts the agent.
			fmt.Fprintf(os.Stderr, "lanebridge-agent: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}()
	return nil
}

func (p *program) Stop(s service.Service) error {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	return nil
}

func serviceConfig(cfgPath string) (*service.Config, error) {
	abs, err := filepath.Abs(cfgPath)
	if err != nil {
		return nil, err
	}
	return &service.Config{
		Name:        "lanebridge-agent",
		DisplayName: "Lanebridge store agent",
		Description: "Captures POS transactions and forwards them to the Lanebridge hub.",
		Arguments:   []string{"run", "--config", abs},
		Option: service.KeyValue{
			// Windows recovery actions are only set when OnFailure is given (kardianos issue 401).
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "5s",
			"OnFailureResetPeriod":   3600,
			"DelayedAutoStart":       true,
			"Restart":                "always",
			"SystemdScript":          systemdUnit,
		},
	}, nil
}

func cmdRun(args []string, stderr io.Writer) error {
	path, _, err := configFlag("run", args)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	sc, err := serviceConfig(path)
	if err != nil {
		return err
	}
	p := &program{cfg: cfg, out: stderr}
	s, err := service.New(p, sc)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	// service.Run blocks until SIGINT/SIGTERM (or the Windows service manager) stops us.
	return s.Run()
}

func cmdService(args []string, stdout io.Writer) error {
	if len(args) < 1 {
		return fmt.Errorf("service: want install, uninstall, start, stop or restart")
	}
	action := args[0]
	path, _, err := configFlag("service", args[1:])
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	sc, err := serviceConfig(path)
	if err != nil {
		return err
	}
	s, err := service.New(&program{}, sc)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if action == "install" && service.Platform() == "linux-systemd" && os.Geteuid() == 0 {
		// The unit runs the agent as the lanebridge user (systemd.tmpl).
		if err := prepareServiceUser(realHost, path, cfg, stdout); err != nil {
			return fmt.Errorf("service install: %w", err)
		}
	}
	if err := service.Control(s, action); err != nil {
		return fmt.Errorf("service %s: %w", action, err)
	}
	fmt.Fprintf(stdout, "service %s: done\n", action)
	return nil
}
