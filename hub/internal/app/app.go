package app

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
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

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lanebridge/lanebridge/hub/internal/broker"
	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/hub/internal/erp/flatfile"
	"github.com/lanebridge/lanebridge/hub/internal/erp/tryton"
	"github.com/lanebridge/lanebridge/hub/internal/ingest"
	"github.com/lanebridge/lanebridge/hub/internal/inventory"
	"github.com/lanebridge/lanebridge/hub/internal/posting"
	"github.com/lanebridge/lanebridge/hub/internal/reconcile"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/hub/internal/web"
	"github.com/lanebridge/lanebridge/protocol"
)

// Version is set at build time with -ldflags "-X ...app.Version=...".
var Version = "dev"

const usage = `lanebridge-hub — the Lanebridge hub

Usage:
  lanebridge-hub serve [--config hub.yaml] [--data DIR] [--mqtt ADDR] [--http ADDR]
  lanebridge-hub stores add STORE [--config hub.yaml] [--data DIR] [--broker-url URL]
  lanebridge-hub stores list [--config hub.yaml] [--data DIR]
  lanebridge-hub version
`

// Main runs the command and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
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

func openStore(ctx context.Context, cfg *Config) (store.Store, error) {
	if cfg.Store.PostgresURL != "" {
		return store.OpenPostgres(ctx, cfg.Store.PostgresURL)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return store.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "hub.db"))
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

// authenticator checks store passwords against the store.
type authenticator struct{ st store.Store }

func (a authenticator) CheckStore(ctx context.Context, id, password string) (bool, error) {
	h, err := a.st.Credentials(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return creds.Verify(h, password), nil
}

type brokerPublisher struct{ b *broker.Broker }

func (p brokerPublisher) Publish(topic string, payload []byte) error {
	return p.b.Publish(topic, payload, false, 1)
}

type inventoryRefresher struct{ s *inventory.Service }

func (r inventoryRefresher) RefreshInventory(ctx context.Context) (any, error) {
	return r.s.Refresh(ctx)
}

type pahoPublisher struct{ c mqtt.Client }

func (p pahoPublisher) Publish(topic string, payload []byte) error {
	if !p.c.IsConnectionOpen() {
		return errors.New("not connected to broker")
	}
	// Do not wait for the PUBACK here: it is processed by paho's router, which may be busy
	// delivering to our own handler. The ack is idempotent and the agent resends on timeout.
	tok := p.c.Publish(topic, 1, false, payload)
	go tok.WaitTimeout(30 * time.Second)
	return nil
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

func run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lanebridge_hub_build_info", Help: "Version of the running hub."}, []string{"version"})
	buildInfo.WithLabelValues(Version).Set(1)
	reg.MustRegister(buildInfo)

	var (
		pub    ingest.Publisher
		health func(context.Context) error
		start  func(in *ingest.Ingester) error
		closer func()
	)
	if cfg.Broker.URL == "" {
		var tc *tls.Config
		if cfg.MQTT.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.MQTT.CertFile, cfg.MQTT.KeyFile)
			if err != nil {
				return fmt.Errorf("config key mqtt.cert_file: %w", err)
			}
			tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		b, err := broker.New(broker.Config{Addr: cfg.MQTT.Listen, TLSConfig: tc, Auth: authenticator{st}, Logger: log})
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		pub = brokerPublisher{b}
		start = func(in *ingest.Ingester) error {
			h := func(topic string, payload []byte) { in.Handle(ctx, ingest.Message{Topic: topic, Payload: payload}) }
			if err := b.Subscribe(protocol.AllRecordsFilter, 1, h); err != nil {
				return fmt.Errorf("subscribe records: %w", err)
			}
			if err := b.Subscribe(protocol.AllStatusFilter, 2, h); err != nil {
				return fmt.Errorf("subscribe status: %w", err)
			}
			if err := b.Start(); err != nil {
				if strings.Contains(err.Error(), "address already in use") {
					return fmt.Errorf("embedded broker cannot listen on %s: another MQTT broker may be running there; pass --mqtt ADDR or set broker.url to use it: %w", cfg.MQTT.Listen, err)
				}
				return fmt.Errorf("embedded broker: %w", err)
			}
			log.Info("embedded MQTT broker listening", "addr", b.Addr())
			return nil
		}
		closer = func() { b.Close() }
		health = func(ctx context.Context) error {
			_, err := st.Exceptions(ctx, store.ExceptionFilter{Limit: 1})
			return err
		}
	} else {
		var in *ingest.Ingester
		group := cfg.Broker.SharedGroup
		clientID := cfg.Broker.ClientID
		if clientID == "" {
			host, _ := os.Hostname()
			clientID = fmt.Sprintf("lanebridge-hub-%s-%d", host, os.Getpid())
		}
		o := mqtt.NewClientOptions().AddBroker(cfg.Broker.URL).SetClientID(clientID).
			SetUsername(cfg.Broker.Username).SetPassword(cfg.Broker.Password).
			SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
			SetConnectRetryInterval(2 * time.Second).SetMaxReconnectInterval(15 * time.Second).
			SetOrderMatters(true).SetKeepAlive(20 * time.Second).SetWriteTimeout(15 * time.Second)
		handler := func(_ mqtt.Client, m mqtt.Message) {
			// Never block paho's router: a full queue drops the message and the agent resends.
			in.TryHandle(ingest.Message{Topic: m.Topic(), Payload: m.Payload()})
		}
		o.SetOnConnectHandler(func(c mqtt.Client) {
			go func() {
				filters := map[string]byte{
					"$share/" + group + "/" + protocol.AllRecordsFilter: 1,
					"$share/" + group + "/" + protocol.AllStatusFilter:  1,
				}
				tok := c.SubscribeMultiple(filters, handler)
				if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
					log.Error("subscribe on external broker failed; reconnecting", "err", tok.Error())
					c.Disconnect(0)
					c.Connect()
					return
				}
				log.Info("subscribed on external broker", "url", cfg.Broker.URL, "group", group)
			}()
		})
		o.SetConnectionLostHandler(func(_ mqtt.Client, err error) { log.Warn("lost external broker", "err", err) })
		client := mqtt.NewClient(o)
		pub = pahoPublisher{client}
		start = func(i *ingest.Ingester) error {
			in = i
			client.Connect()
			return nil
		}
		closer = func() { client.Disconnect(1000) }
		health = func(ctx context.Context) error {
			if !client.IsConnectionOpen() {
				return errors.New("not connected to broker " + cfg.Broker.URL)
			}
			_, err := st.Exceptions(ctx, store.ExceptionFilter{Limit: 1})
			return err
		}
	}

	hubSt, _ := st.(store.Hub)
	conn, err := openERP(cfg)
	if err != nil {
		return err
	}
	if conn == nil {
		// erp.kind none: store records, post nothing (no posting waits for an absent ERP).
		if ps, ok := st.(store.PostingSwitch); ok {
			ps.SetPostings(false)
		}
	}
	// The inventory push runs whenever the ERP is a stock source; it hears agent statuses
	// from ingest.
	var inv *inventory.Service
	if src, ok := conn.(erp.StockSource); ok && hubSt != nil {
		inv = inventory.New(hubSt, src, pub, inventory.Options{Interval: cfg.Inventory.Interval,
			ResendAfter: cfg.Inventory.ResendAfter, Logger: log, Registry: reg})
	}
	var onStatus func(protocol.Status)
	if inv != nil {
		onStatus = inv.OnStatus
	}
	in := ingest.New(st, pub, ingest.Options{Workers: cfg.Ingest.Workers, Logger: log, Registry: reg, OnStatus: onStatus})
	ingDone := make(chan struct{})
	ictx, icancel := context.WithCancel(context.Background())
	go func() { in.Run(ictx); close(ingDone) }()
	defer func() { icancel(); <-ingDone }()

	if err := start(in); err != nil {
		return err
	}
	defer closer()

	if conn != nil && hubSt != nil {
		if cfg.Store.PostgresURL == "" {
			// One hub process per SQLite file: leases left by a killed process are stale.
			if err := hubSt.ReleaseLeases(ctx, ""); err != nil {
				return err
			}
		}
		poster := posting.New(hubSt, conn, posting.Options{Rate: cfg.ERP.Rate, Lease: cfg.ERP.Lease, Logger: log, Registry: reg})
		pctx, pcancel := context.WithCancel(context.Background())
		pdone := make(chan struct{})
		go func() { poster.Run(pctx); close(pdone) }()
		defer func() { pcancel(); <-pdone }()
		log.Info("posting to the ERP", "kind", cfg.ERP.Kind, "owner", poster.Owner(), "rate", cfg.ERP.Rate)
	}

	var invRefresher web.InventoryRefresher
	if inv != nil {
		vctx, vcancel := context.WithCancel(context.Background())
		vdone := make(chan struct{})
		go func() { inv.Run(vctx); close(vdone) }()
		defer func() { vcancel(); <-vdone }()
		invRefresher = inventoryRefresher{inv}
		log.Info("pushing inventory to agents", "interval", cfg.Inventory.Interval)
	}

	var dayCloser web.DayCloser
	if hubSt != nil {
		rc := &reconcile.Closer{St: hubSt, Pub: pub, Log: log.With("component", "reconcile"), ReplayWait: cfg.Close.ReplayWait,
			NoERP: conn == nil}
		if by := cfg.Close.NoZBy; by != "" || cfg.Close.At != "" {
			if by == "" {
				by = cfg.Close.At
			}
			rc.ZDue = zDue(by)
		}
		dayCloser = rc
		if cfg.Close.At != "" {
			sctx, scancel := context.WithCancel(context.Background())
			sdone := make(chan struct{})
			go func() { (&reconcile.Scheduler{C: rc, At: cfg.Close.At}).Run(sctx); close(sdone) }()
			defer func() { scancel(); <-sdone }()
		}
	}
	srv := &http.Server{
		Addr:              cfg.HTTP.Listen,
		Handler:           web.New(st, web.Options{Logger: log, Gatherer: reg, Health: health, Closer: dayCloser, Inventory: invRefresher}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http listen %s: %w (pass --http ADDR)", cfg.HTTP.Listen, err)
	}
	log.Info("hub ready", "http", "http://"+ln.Addr().String(), "version", Version)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

func storesAdd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stores add", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	brokerURL := fs.String("broker-url", "", "broker URL the agent connects to (written into agent.yaml)")
	// Accept flags before or after the store id.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if err := protocol.ValidateStoreID(id); err != nil {
		return fmt.Errorf("store id: %w", err)
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	pw := creds.NewPassword()
	if err := st.AddStore(ctx, id, creds.Hash(pw)); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("store %s is already enrolled", id)
		}
		return err
	}
	u := *brokerURL
	if u == "" {
		u = cfg.Broker.AgentURL
	}
	if u == "" && cfg.Broker.URL != "" {
		u = cfg.Broker.URL
	}
	if u == "" {
		host, port, _ := net.SplitHostPort(cfg.MQTT.Listen)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host, _ = os.Hostname()
		}
		u = "tcp://" + net.JoinHostPort(host, port)
	}
	fmt.Fprintf(stderr, "enrolled store %s; its agent.yaml follows (keep it secret: it holds the store's password)\n", id)
	fmt.Fprintf(stdout, `# Lanebridge agent configuration for store %[1]s, made by lanebridge-hub stores add.
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
	return nil
}

func storesList(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stores list", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	list, err := st.ListStores(ctx)
	if err != nil {
		return err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tRECORDS\tAGENT\tBACKLOG\tLAST STATUS")
	for _, s := range list {
		state, backlog, at := "never seen", "-", "-"
		if s.Status != nil {
			state, backlog = s.Status.State, fmt.Sprint(s.Status.Backlog)
			at = s.StatusAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.ID, s.Records, state, backlog, at)
	}
	return tw.Flush()
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

// zDue reports Z reports of a business date as due once the local time of day by has passed on
// the following day.
func zDue(by string) func(string, time.Time) bool {
	at, _ := time.Parse("15:04", by) // validated with the config
	return func(date string, now time.Time) bool {
		d, err := time.ParseInLocation("2006-01-02", date, now.Location())
		if err != nil {
			return true
		}
		due := d.AddDate(0, 0, 1).Add(time.Duration(at.Hour())*time.Hour + time.Duration(at.Minute())*time.Minute)
		return !now.Before(due)
	}
}
