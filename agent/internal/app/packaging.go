package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/lanebridge/lanebridge/agent/internal/config"
)

// cmdServiceUnit prints the systemd unit `service install` writes (systemd.tmpl, rendered as
// kardianos/service renders it), so packages ship that unit rather than a second copy. With
// --data-dir the configuration is not read (a package renders the unit before its config
// exists); otherwise data_dir and inventory.plu_file come from --config.
func cmdServiceUnit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("service unit", flag.ContinueOnError)
	path := fs.String("config", "agent.yaml", "agent configuration file the unit runs the agent with")
	exe := fs.String("exe", "", "the agent binary the unit runs (default: this binary)")
	dataDir := fs.String("data-dir", "", "data_dir to make writable, without reading --config (for packages)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := &config.Config{DataDir: *dataDir}
	if *dataDir == "" {
		var err error
		// The unit is installed before the installer adds the terminals: data_dir is what it needs
		// (run refuses the file until it lists a terminal).
		if cfg, err = config.LoadWithoutTerminals(*path); err != nil {
			return err
		}
	}
	if *exe == "" {
		p, err := os.Executable()
		if err != nil {
			return err
		}
		*exe = p
	}
	if !filepath.IsAbs(*exe) {
		return fmt.Errorf("service unit: --exe %q must be an absolute path", *exe)
	}
	// The unit makes --exe's folder writable for self-update unless it is a shared system
	// folder (the packages use packagedBinDir, a folder of their own).
	binDir, why := updateBinDir(*exe, false)
	if why != "" {
		fmt.Fprintf(stderr, "warning: %s\n", selfUpdateHint(*exe, *path, why))
	}
	sc, err := serviceConfig(*path, cfg, "")
	if err != nil {
		return err
	}
	unit, err := renderUnit(cfg, binDir)
	if err != nil {
		return err
	}
	return renderKardianos(stdout, unit, *exe, sc.Arguments, sc.Name, sc.Description)
}

// renderKardianos fills in the unit as kardianos/service v1.3 does (its cmd and cmdEscape
// transforms in service_linux.go).
func renderKardianos(w io.Writer, unit, exe string, arguments []string, name, description string) error {
	if !filepath.IsAbs(exe) {
		return fmt.Errorf("service unit: --exe %q must be an absolute path", exe)
	}
	funcs := template.FuncMap{
		"Description": func() string { return description },
		"Path":        func() string { return exe },
		"Arguments":   func() []string { return arguments },
		"Name":        func() string { return name },
		"cmd":         func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` },
		"cmdEscape":   func(s string) string { return strings.ReplaceAll(s, " ", `\x20`) },
	}
	t, err := template.New("unit").Funcs(funcs).Option("missingkey=error").Parse(unit)
	if err != nil {
		return fmt.Errorf("service unit: %w", err)
	}
	return t.Execute(w, nil)
}

// cmdMSIConfigure is the Windows installer's custom action: it writes the configuration from
// the MSI properties (STORE_ID + HUB_URL, or a whole CONFIG_FILE), validated before anything
// is written, and with --service sets the installed service's recovery actions and delayed
// start (the MSI's ServiceInstall cannot). With no properties it leaves an existing config
// alone (upgrade, repair).
func cmdMSIConfigure(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("msi-configure", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file to write")
	dataDir := fs.String("data-dir", "", "data_dir written into a configuration made from --store and --hub")
	store := fs.String("store", "", "store id (MSI property STORE_ID)")
	hub := fs.String("hub", "", "hub broker URL, tcp://host:1883 or ssl://host:8883; with --enroll-token the hub's enrolment URL (MSI property HUB_URL)")
	token := fs.String("enroll-token", "", "one-time enrolment token: runs `enroll --hub URL --token T --config PATH` (MSI property ENROLL_TOKEN)")
	from := fs.String("config-file", "", "a complete agent.yaml to install instead (MSI property CONFIG_FILE)")
	svc := fs.Bool("service", false, "also set the service's recovery actions and delayed start, and restrict the config's folder to SYSTEM and Administrators (Windows)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("msi-configure: --config is required")
	}
	var out []byte
	switch {
	case *from != "" && (*store != "" || *hub != "" || *token != ""):
		return errors.New("msi-configure: give CONFIG_FILE, or STORE_ID and HUB_URL, or ENROLL_TOKEN and HUB_URL, not several")
	case *token != "":
		if *hub == "" {
			return errors.New("msi-configure: ENROLL_TOKEN needs HUB_URL (the hub's enrolment URL)")
		}
		// enroll fetches the store's credentials from the hub once and writes the config.
		cmd := exec.Command(selfExe(), "enroll", "--hub", *hub, "--token", *token, "--config", *path)
		cmd.Stdout, cmd.Stderr = stdout, stdout
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("msi-configure: enroll at %s: %w", *hub, err)
		}
	case *from != "":
		b, err := os.ReadFile(*from)
		if err != nil {
			return fmt.Errorf("msi-configure: CONFIG_FILE: %w", err)
		}
		if _, err := config.Parse(b); err != nil {
			return fmt.Errorf("msi-configure: CONFIG_FILE %s: %w", *from, err)
		}
		out = b
	case *store != "" || *hub != "":
		if *store == "" || *hub == "" {
			return errors.New("msi-configure: STORE_ID and HUB_URL go together (or pass CONFIG_FILE)")
		}
		if *dataDir == "" {
			return errors.New("msi-configure: --data-dir is required with --store")
		}
		type hubKeys struct {
			Broker string `yaml:"broker"`
		}
		doc := struct {
			Store   string  `yaml:"store"`
			DataDir string  `yaml:"data_dir"`
			Hub     hubKeys `yaml:"hub"`
		}{*store, *dataDir, hubKeys{*hub}}
		b, err := yaml.Marshal(doc)
		if err != nil {
			return err
		}
		if _, err := config.ParseWithoutTerminals(b); err != nil {
			return fmt.Errorf("msi-configure: STORE_ID/HUB_URL: %w", err)
		}
		out = append([]byte("# Written by the Lanebridge agent installer (msi-configure); add terminals, hub.password.\n"), b...)
		defer fmt.Fprintf(stdout, "msi-configure: set hub.password (or hub.password_file) and terminals in %s, then start the service\n", *path)
	}
	if out != nil {
		if err := os.MkdirAll(filepath.Dir(*path), 0o700); err != nil {
			return err
		}
		tmp := *path + ".tmp"
		if err := os.WriteFile(tmp, out, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *path); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "msi-configure: wrote %s\n", *path)
	} else if *token != "" {
		// enroll wrote it.
	} else if _, err := os.Stat(*path); err == nil {
		fmt.Fprintf(stdout, "msi-configure: no properties given; keeping %s\n", *path)
	} else {
		fmt.Fprintf(stdout, "msi-configure: no properties given and no %s yet: write it, then start the service\n", *path)
	}
	if *svc {
		if err := msiProtect(filepath.Dir(*path)); err != nil {
			return fmt.Errorf("msi-configure: %w", err)
		}
		if err := msiServiceSetup(serviceName); err != nil {
			return fmt.Errorf("msi-configure: service %s: %w", serviceName, err)
		}
		fmt.Fprintf(stdout, "msi-configure: service %s recovery actions set\n", serviceName)
	}
	return nil
}

// selfExe is this binary, which msi-configure runs for enroll; tests replace it.
var selfExe = func() string {
	p, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return p
}
