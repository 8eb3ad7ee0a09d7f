package app

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/hub/internal/erp/flatfile"
	"github.com/lanebridge/lanebridge/hub/internal/erp/tryton"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// Version is set at build time with -ldflags "-X ...app.Version=...".
var Version = "dev"

const usage = `lanebridge-hub — the Lanebridge hub

Usage:
  lanebridge-hub serve [--config hub.yaml] [--data DIR] [--mqtt ADDR] [--http ADDR]
  lanebridge-hub stores add STORE [--config hub.yaml] [--data DIR] [--broker-url URL] [--out FILE] [--create] [--enroll-token [--enroll-expires 24h]]
  lanebridge-hub stores enroll-token STORE [--expires 24h] [--out FILE] [--config hub.yaml] [--data DIR]
  lanebridge-hub stores list [--config hub.yaml] [--data DIR]
  lanebridge-hub stores set STORE [--trading-hours SPEC] [--tz ZONE] [--maintenance SPEC] [--config hub.yaml] [--data DIR]
  lanebridge-hub stores rotate-credentials STORE [--grace 24h] [--out FILE] | --revoke-old [--config hub.yaml] [--data DIR]
  lanebridge-hub stores disable|enable|remove STORE [--config hub.yaml] [--data DIR]
  lanebridge-hub config push STORE --file overrides.yaml --key minisign.key [--expires 7d] [--config hub.yaml] [--data DIR]
  lanebridge-hub config status [STORE] [--config hub.yaml] [--data DIR]
  lanebridge-hub export mosquitto --out DIR [--skip-missing] [--config hub.yaml] [--data DIR]
  lanebridge-hub users add NAME --role viewer|operator|admin [--stores S001,S002] --password-file F|- [--config hub.yaml] [--data DIR]
  lanebridge-hub users list|disable NAME|passwd NAME --password-file F|- [--config hub.yaml] [--data DIR]
  lanebridge-hub tokens add --name NAME --role viewer|operator|admin [--stores S001,S002] [--expires 90d|never] [--config hub.yaml] [--data DIR]
  lanebridge-hub tokens list|revoke NAME [--config hub.yaml] [--data DIR]
  lanebridge-hub releases publish --binary F --version V --os OS --arch ARCH [--channel stable] --key minisign.key [--min-from V] [--expires 30d] [--config hub.yaml] [--data DIR]
  lanebridge-hub releases list [--config hub.yaml] [--data DIR]
  lanebridge-hub rollouts start --release V [--os OS] [--arch ARCH] [--channel C] [--waves 1,10%,50%,100%] [--max-failures 5%] [--config hub.yaml] [--data DIR]
  lanebridge-hub rollouts status [ID] | pause ID | resume ID | abort ID [--reason TEXT] [--config hub.yaml] [--data DIR]
  lanebridge-hub version
`

// Main runs the command and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err := clock.Load(); err != nil {
		fmt.Fprintln(stderr, "lanebridge-hub:", err)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "stores":
		if len(args) < 2 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		switch args[1] {
		case "add":
			err = storesAdd(args[2:], stdout, stderr)
		case "list":
			err = storesList(args[2:], stdout)
		case "set":
			err = storesSet(args[2:], stderr)
		case "enroll-token":
			err = storesEnrollToken(args[2:], stdout, stderr)
		case "rotate-credentials":
			err = storesRotate(args[2:], stdout, stderr)
		case "disable", "enable", "remove":
			err = storesSetState(map[string]string{"disable": store.StoreDisabled, "enable": store.StoreActive, "remove": store.StoreRemoved}[args[1]], args[2:], stderr)
		default:
			fmt.Fprint(stderr, usage)
			return 2
		}
	case "users", "tokens":
		var ok bool
		if ok, err = runCLICommand(args[0], args[1:], stdout, stderr); !ok {
			fmt.Fprint(stderr, usage)
			return 2
		}
	case "releases", "rollouts":
		var ok bool
		if ok, err = runReleaseCommand(args, stdout, stderr); !ok {
			fmt.Fprint(stderr, usage)
			return 2
		}
	case "export":
		err = exportMosquitto(args[1:], stderr)
	case "config":
		switch {
		case len(args) >= 2 && args[1] == "push":
			err = configPush(args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "status":
			err = configStatus(args[2:], stdout)
		default:
			fmt.Fprint(stderr, usage)
			return 2
		}
	case "version", "--version":
		fmt.Fprintf(stdout, "lanebridge-hub %s (protocol v%d)\n", Version, protocol.Version)
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
		fmt.Fprintf(stderr, "lanebridge-hub: %v\n", err)
		return 1
	}
	return 0
}

type commonFlags struct {
	config, data string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "hub.yaml")
	fs.StringVar(&c.data, "data", "", "data directory (overrides data_dir)")
}

func (c *commonFlags) load() (*Config, error) {
	cfg, err := loadConfig(c.config)
	if err != nil {
		return nil, err
	}
	if c.data != "" {
		cfg.DataDir = c.data
	}
	return cfg, nil
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	o := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	mqttAddr := fs.String("mqtt", "", "embedded broker listen address (overrides mqtt.listen)")
	httpAddr := fs.String("http", "", "HTTP listen address (overrides http.listen)")
	pprofAddr := fs.String("pprof", "", "serve Go profiling endpoints on this address (e.g. 127.0.0.1:6060); off by default")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if *mqttAddr != "" {
		cfg.MQTT.Listen = *mqttAddr
	}
	if *httpAddr != "" {
		cfg.HTTP.Listen = *httpAddr
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if *pprofAddr != "" {
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			log.Info("profiling endpoint", "addr", *pprofAddr)
			if err := http.ListenAndServe(*pprofAddr, mux); err != nil {
				log.Warn("profiling endpoint failed", "err", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, cfg, log)
}

func storesAdd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stores add", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	brokerURL := fs.String("broker-url", "", "broker URL the agent connects to (written into agent.yaml)")
	outPath := fs.String("out", "", "write the agent.yaml to this file (mode 0600) instead of stdout")
	create := fs.Bool("create", false, "create a new hub database in --data if there is none (e.g. to enroll stores before the first serve)")
	enrollTok := fs.Bool("enroll-token", false, "print a one-time enrolment token for `lanebridge-agent enroll` instead of an agent.yaml with the password")
	enrollExp := fs.String("enroll-expires", "24h", "with --enroll-token: how long the token may be used (once)")
	// Accept flags before or after the store id.
	id, err := parseStoreArgs(fs, args)
	if err != nil {
		return err
	}
	if id == ProbeUser {
		return fmt.Errorf("store id %s is reserved for the hub's broker probe account; choose another", id)
	}
	life, err := parseEnrollLife("--enroll-expires", *enrollExp)
	if err != nil {
		return err
	}
	if *enrollTok && *brokerURL != "" {
		return errors.New("--broker-url does not apply with --enroll-token: the serving hub tells enrolled agents broker.agent_url from hub.yaml (else broker.url or its own MQTT address)")
	}
	cfg, st, err := cf.open(*create)
	if err != nil {
		return err
	}
	defer st.Close()
	// Opened before enrolling, so a path that cannot be written leaves no store behind
	// without its password; 0600 also when the file was already there.
	out, closeOut, err := secretOut(*outPath, stdout)
	if err != nil {
		return err
	}
	defer closeOut() // on early returns; the explicit close below reports write errors
	ctx := context.Background()
	pw := creds.NewPassword()
	if err := st.EnrollStore(ctx, id, creds.Hash(pw), creds.MosquittoHash(pw)); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("store %s is already enrolled", id)
		}
		return err
	}
	u := *brokerURL
	if u == "" {
		u = agentBrokerURL(cfg)
	}
	if *enrollTok {
		until, err := issueEnrollToken(ctx, st, id, life, out)
		if err == nil {
			err = closeOut()
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "enrolled store %s\n", id)
		enrollHint(stderr, cfg, id, until)
		return nil
	}
	if *outPath != "" {
		fmt.Fprintf(stderr, "enrolled store %s; its agent.yaml is in %s (mode 0600: it holds the store's password)\n", id, *outPath)
	} else {
		fmt.Fprintf(stderr, "enrolled store %s; its agent.yaml follows (keep it secret: it holds the store's password)\n", id)
	}
	_, err = fmt.Fprintf(out, `# Lanebridge agent configuration for store %[1]s, made by lanebridge-hub stores add.
store: %[1]s
data_dir: /var/lib/lanebridge-agent
hub:
  broker: %[2]s
  username: %[1]s
  password: %[3]s
spool:
  retention: 35d
  max_size: 2GiB
terminals:
  - id: T1
    source: file:///var/pos/T1.jsonl
    profile: canonical-jsonl
`, id, u, pw)
	if err != nil {
		return fmt.Errorf("write agent.yaml: %w", err)
	}
	if err := closeOut(); err != nil {
		return fmt.Errorf("write agent.yaml: %w", err)
	}
	return nil
}

func storesList(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stores list", flag.ContinueOnError)
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
	ctx := context.Background()
	list, err := st.ListStores(ctx)
	if err != nil {
		return err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tSTATE\tRECORDS\tAGENT\tBACKLOG\tLAST STATUS\tTIME ZONE")
	for _, s := range list {
		state, backlog, at := "never seen", "-", "-"
		if s.Status != nil {
			state, backlog = s.Status.State, fmt.Sprint(s.Status.Backlog)
			at = s.StatusAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.State, s.Records, state, backlog, at, cmp.Or(s.TimeZone, "(default)"))
	}
	return tw.Flush()
}

// requireDB refuses a data directory without a hub database, for every command but serve (which
// starts a new hub there): a misspelt --data must not create an empty hub. PostgreSQL needs no
// file.
func requireDB(cfg *Config) error {
	if cfg.Store.PostgresURL != "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "hub.db")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no hub database in %[1]s (hub.db); start `lanebridge-hub serve --data %[1]s` there first, or check the path", cfg.DataDir)
		}
		return fmt.Errorf("hub database in %s: %w", cfg.DataDir, err)
	}
	return nil
}

// openERP returns the configured connector, or nil for erp.kind none. A Tryton that is down
// does not stop the hub: the connector logs in on first use and the outbox retries.
func openERP(cfg *Config) (erp.Connector, error) {
	switch cfg.ERP.Kind {
	case "tryton":
		t := cfg.ERP.Tryton
		pw := ""
		if t.PasswordFile != "" {
			b, err := os.ReadFile(t.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("config key erp.tryton.password_file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		user := t.User
		if user == "" {
			user = "admin"
		}
		return tryton.NewLazy(t.URL, t.DB, user, pw), nil
	case "flatfile":
		f := cfg.ERP.Flatfile
		state := f.State
		if state == "" {
			state = filepath.Join(cfg.DataDir, "flatfile")
		}
		c, err := flatfile.Open(f.Outbound, f.Inbound, state)
		if err != nil {
			return nil, fmt.Errorf("config key erp.flatfile: %w", err)
		}
		return c, nil
	}
	return nil, nil
}
