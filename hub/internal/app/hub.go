package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lanebridge/lanebridge/hub/internal/alerts"
	"github.com/lanebridge/lanebridge/hub/internal/availability"
	"github.com/lanebridge/lanebridge/hub/internal/broker"
	"github.com/lanebridge/lanebridge/hub/internal/channels"
	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/hub/internal/extbroker"
	"github.com/lanebridge/lanebridge/hub/internal/ingest"
	"github.com/lanebridge/lanebridge/hub/internal/inventory"
	"github.com/lanebridge/lanebridge/hub/internal/posting"
	"github.com/lanebridge/lanebridge/hub/internal/reconcile"
	"github.com/lanebridge/lanebridge/hub/internal/rollout"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/hub/internal/web"
	"github.com/lanebridge/lanebridge/protocol"
)

// The store satisfies every part's own interface; the compiler checks it here, so a part that
// asks for a method the store lacks fails the build, not a run.
var (
	_ ingest.Store       = (*store.DB)(nil)
	_ web.Store          = (*store.DB)(nil)
	_ posting.Outbox     = (*store.DB)(nil)
	_ inventory.Store    = (*store.DB)(nil)
	_ reconcile.Store    = (*store.DB)(nil)
	_ credentials        = (*store.DB)(nil)
	_ ingest.SeriesStore = (*store.DB)(nil)
	_ alerts.Store       = (*store.DB)(nil)
	_ rollout.Store      = (*store.DB)(nil)
)

// openStore opens the configured store: PostgreSQL when store.postgres_url is set, else SQLite
// in the data directory.
func openStore(ctx context.Context, cfg *Config) (*store.DB, error) {
	if cfg.Store.PostgresURL != "" {
		return store.OpenPostgres(ctx, cfg.Store.PostgresURL)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return store.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "hub.db"))
}

// credentials is what the embedded broker's authenticator reads.
type credentials interface {
	// Credentials returns a store's credentials (store.ErrNotFound if unknown).
	Credentials(ctx context.Context, id string) (store.Credential, error)
	// CredentialsChanged lists the stores whose credentials changed after since.
	CredentialsChanged(ctx context.Context, since time.Time) ([]string, error)
}

// authenticator checks store passwords against the store: the current one, or the previous
// one during its grace, of an active store.
type authenticator struct{ credentials }

func (a authenticator) CheckStore(ctx context.Context, id, password string) (bool, error) {
	c, err := a.Credentials(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ok := false
	for _, h := range c.Valid(clock.Now()) {
		ok = creds.Verify(h, password) || ok
	}
	return ok, nil
}

type brokerPublisher struct{ b *broker.Broker }

func (p brokerPublisher) Publish(topic string, payload []byte) error {
	return p.b.Publish(topic, payload, false, 1)
}

type inventoryRefresher struct{ s *inventory.Service }

func (r inventoryRefresher) RefreshInventory(ctx context.Context) (any, error) {
	return r.s.Refresh(ctx)
}

// hub is a hub set up by newHub: store open, listeners bound, parts ready to run.
type hub struct {
	cfg   *Config
	log   *slog.Logger
	st    *store.DB
	reg   *prometheus.Registry
	parts []part
	// closers release what newHub opened, in reverse order, once the parts have stopped (or
	// when setting up fails); each part also stops what it serves when its ctx ends.
	closers []func()

	pub      ingest.Publisher
	av       *availability.Engine // available to sell, reservations, the webhook feed
	healthy  func() error         // the transport's health
	mqttAddr string               // the embedded broker's bound address ("" with an external broker)
	httpAddr string               // the HTTP server's bound address
	// metricsAddr is the bound address of http.metrics_listen ("" when off).
	metricsAddr string
}

// run sets the hub up and runs it until ctx ends or a part fails.
func run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	h, err := newHub(ctx, cfg, log)
	if err != nil {
		return err
	}
	return h.run(ctx)
}

// run runs every part (runParts) and then closes what newHub opened, the store last.
func (h *hub) run(ctx context.Context) error {
	err := runParts(ctx, h.log, h.parts)
	h.close()
	h.log.Info("hub stopped")
	return err
}

func (h *hub) close() {
	for i := len(h.closers) - 1; i >= 0; i-- {
		h.closers[i]()
	}
	h.closers = nil
}

func (h *hub) add(name string, run func(context.Context) error) {
	h.parts = append(h.parts, part{name, run})
}

// newHub sets up, in order: store, transport (embedded broker or external broker client), alerts,
// ingest, posting, inventory, close scheduler and web. Errors here (a port in use, a bad
// certificate) are returned before any part runs, with everything opened closed again.
func newHub(ctx context.Context, cfg *Config, log *slog.Logger) (_ *hub, err error) {
	h := &hub{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	h.st = st
	h.closers = append(h.closers, func() { st.Close() })
	if err := st.CheckDurable(ctx); err != nil {
		if !cfg.Store.AllowNondurable {
			return nil, fmt.Errorf("open store: %w", err)
		}
		log.Warn("running on a non-durable PostgreSQL (store.allow_nondurable)", "err", err)
	}

	h.reg = prometheus.NewRegistry()
	h.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h.reg.MustRegister(BuildInfo("hub", Version), newOpenExceptions(st))

	// Availability is kept by the store in the transactions that change it; the engine hears
	// of each committed change through the hook, before any part runs.
	if h.av, err = availability.New(st, cfg.Availability, availability.Options{Logger: log}); err != nil {
		return nil, err
	}
	st.SetAvailabilityHook(h.av.Notify)
	h.add("availability", h.av.Run)
	if len(cfg.Connectors) > 0 {
		p, err := channels.NewConfigured(cfg.Connectors, h.av.Channels(), channels.Options{Source: availSource{h.av}, State: st,
			Log: log.With("component", "channels"), Registry: h.reg})
		if err != nil {
			return nil, err
		}
		h.add("channels", p.Run)
	}

	conn, err := openERP(cfg)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		// erp.kind none: store records, post nothing (no posting waits for an absent ERP).
		st.SetPostings(false)
	}

	// The ingester needs the transport's publisher; the transport delivers to the ingester
	// once attached to it.
	var attach func(*ingest.Ingester) error
	if cfg.Broker.URL == "" {
		attach, err = h.embeddedBroker()
	} else {
		attach, err = h.externalBroker()
	}
	if err != nil {
		return nil, err
	}

	// The inventory push runs whenever the ERP is a stock source; it hears agent statuses
	// from ingest.
	var inv *inventory.Service
	var onStatus func(protocol.Status)
	if src, ok := conn.(erp.StockSource); ok {
		inv = inventory.New(st, src, h.pub, inventory.Options{Interval: cfg.Inventory.Interval,
			ResendAfter: cfg.Inventory.ResendAfter, Logger: log, Registry: h.reg})
		onStatus = inv.OnStatus
	}
	ev, err := h.alerts()
	if err != nil {
		return nil, err
	}
	if onInv := onStatus; onInv != nil {
		onStatus = func(s protocol.Status) { onInv(s); ev.OnStatus(s) }
	} else {
		onStatus = ev.OnStatus
	}
	cp := newConfigPusher(st, h.pub, log)
	h.add("configpush", cp.Run)
	prevStatus := onStatus
	onStatus = func(s protocol.Status) { prevStatus(s); cp.OnStatus(s) }
	rec := ingest.NewRecorder(st, ingest.RecorderOptions{Flush: cfg.Series.Flush, KeepMinutes: cfg.Series.KeepMinutes,
		KeepHours: cfg.Series.KeepHours, PerStore: cfg.Metrics.PerStore, PerStoreMax: cfg.Metrics.PerStoreMax, Logger: log})
	rec.Register(h.reg)
	h.add("series", rec.Run)
	in := ingest.New(st, h.pub, ingest.Options{Workers: cfg.Ingest.Workers, Logger: log, Registry: h.reg, OnStatus: onStatus, Series: rec})
	h.add("ingest", in.Run)
	if err := attach(in); err != nil {
		return nil, err
	}

	if conn != nil {
		if cfg.Store.PostgresURL == "" {
			// One hub process per SQLite file: leases left by a killed process are stale.
			if err := st.ReleaseLeases(ctx, ""); err != nil {
				return nil, fmt.Errorf("release posting leases: %w", err)
			}
		}
		poster := posting.New(st, conn, posting.Options{Rate: cfg.ERP.Rate, Lease: cfg.ERP.Lease, Logger: log, Registry: h.reg})
		h.add("posting", poster.Run)
		log.Info("posting to the erp", "kind", cfg.ERP.Kind, "owner", poster.Owner(), "rate", cfg.ERP.Rate)
	}

	var invRefresher web.InventoryRefresher
	if inv != nil {
		h.add("inventory", inv.Run)
		invRefresher = inventoryRefresher{inv}
		log.Info("pushing inventory to agents", "interval", cfg.Inventory.Interval)
	}

	sched := schedules{st, cfg.Alerts.TradingHours, cfg.Alerts.TimeZone}
	rc := &reconcile.Closer{St: st, Pub: h.pub, Log: log.With("component", "reconcile"), ReplayWait: cfg.Close.ReplayWait,
		NoERP: conn == nil, Location: sched.Location}
	if by := cfg.Close.NoZBy; by != "" || cfg.Close.At != "" {
		if by == "" {
			by = cfg.Close.At
		}
		rc.ZDue = reconcile.ZDueBy(by)
	}
	if cfg.Close.At != "" {
		h.add("scheduler", (&reconcile.Scheduler{C: rc, At: cfg.Close.At}).Run)
	}

	ro := h.cfg.Rollouts
	eng := rollout.New(st, h.pub, rollout.Options{Tick: ro.Tick, ResendAfter: ro.ResendAfter, StoreTimeout: ro.StoreTimeout,
		MaxInFlight: ro.MaxDownloads, Tries: ro.Tries, Window: ro.MaintenanceWindow, Zone: cfg.Alerts.TimeZone, Logger: log, Registry: h.reg})
	h.add("rollout", eng.Run)

	if err := h.web(rc, invRefresher, sched); err != nil {
		return nil, err
	}
	ops, err := st.Operators(ctx)
	toks, err2 := st.Tokens(ctx)
	if err := errors.Join(err, err2); err != nil {
		return nil, fmt.Errorf("read users and tokens: %w", err)
	}
	if len(ops) == 0 && len(toks) == 0 {
		log.Warn("no users or API tokens yet: nobody can use the API or dashboard; add one with " +
			"`lanebridge-hub users add NAME --role admin --password-file -` or `lanebridge-hub tokens add`")
	}
	scheme := "http://"
	if cfg.HTTP.CertFile != "" {
		scheme = "https://"
	}
	log.Info("hub ready", "http", scheme+h.httpAddr, "version", Version)
	return h, nil
}

// alerts sets up the "alerts" part (and "webhook" when alerts.webhook is set).
func (h *hub) alerts() (*alerts.Evaluator, error) {
	o, err := h.cfg.Alerts.options()
	if err != nil {
		return nil, err
	}
	o.Logger, o.Registry = h.log.With("component", "alerts"), h.reg
	if url := h.cfg.Alerts.Webhook; url != "" {
		wh := alerts.NewWebhook(url, alerts.WebhookOptions{Logger: o.Logger, Registry: h.reg})
		o.Notify = wh.Send
		h.add("webhook", wh.Run)
	}
	ev, err := alerts.New(h.st, o)
	if err != nil {
		return nil, fmt.Errorf("config key alerts: %w", err)
	}
	h.add("alerts", ev.Run)
	return ev, nil
}

// embeddedBroker configures the embedded broker; the returned attach subscribes ingest to the
// agents' topics and binds the listener, and adds the "broker" part that closes it.
func (h *hub) embeddedBroker() (attach func(*ingest.Ingester) error, err error) {
	cfg := h.cfg
	tc, err := loadTLS("mqtt.cert_file", cfg.MQTT.CertFile, cfg.MQTT.KeyFile)
	if err != nil {
		return nil, err
	}
	b, err := broker.New(broker.Config{Addr: cfg.MQTT.Listen, MaxClients: cfg.MQTT.MaxClients, TLSConfig: tc, Auth: authenticator{h.st}, Logger: h.log})
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	h.closers = append(h.closers, func() { b.Close() })
	h.pub = brokerPublisher{b}
	h.healthy = func() error { return nil }
	return func(in *ingest.Ingester) error {
		// Handle blocks while a worker's queue is full (back-pressure on the agent's
		// connection) until the broker part stops.
		hctx, hcancel := context.WithCancel(context.Background())
		h.closers = append(h.closers, hcancel)
		handler := func(topic string, payload []byte) {
			in.Handle(hctx, ingest.Message{Topic: topic, Payload: payload})
		}
		if err := b.Subscribe(protocol.AllRecordsFilter, 1, handler); err != nil {
			return fmt.Errorf("subscribe records: %w", err)
		}
		if err := b.Subscribe(protocol.AllStatusFilter, 2, handler); err != nil {
			return fmt.Errorf("subscribe status: %w", err)
		}
		if err := b.Start(); err != nil {
			if strings.Contains(err.Error(), "address already in use") {
				return fmt.Errorf("embedded broker cannot listen on %s: another MQTT broker may be running there; pass --mqtt ADDR or set broker.url to use it: %w", cfg.MQTT.Listen, err)
			}
			return fmt.Errorf("embedded broker: %w", err)
		}
		h.mqttAddr = b.Addr()
		h.add("broker", func(ctx context.Context) error {
			<-ctx.Done()
			hcancel()
			return b.Close()
		})
		return nil
	}, nil
}

// externalBroker configures the client of broker.url; the returned attach adds the
// "extbroker" part, which connects (and keeps reconnecting) while it runs.
func (h *hub) externalBroker() (attach func(*ingest.Ingester) error, err error) {
	cfg := h.cfg
	var ing *ingest.Ingester // set by attach, before the client connects
	pw, err := cfg.brokerPassword()
	if err != nil {
		return nil, err
	}
	c, err := extbroker.New(extbroker.Config{URL: cfg.Broker.URL, Username: cfg.Broker.Username, Password: pw,
		ClientID: cfg.Broker.ClientID, SharedGroup: cfg.Broker.SharedGroup,
		Filters: map[string]byte{protocol.AllRecordsFilter: 1, protocol.AllStatusFilter: 1},
		Handler: func(topic string, payload []byte) {
			// Never block paho's router: a full queue drops the message and the agent resends.
			ing.TryHandle(ingest.Message{Topic: topic, Payload: payload})
		},
		Logger: h.log})
	if err != nil {
		return nil, err
	}
	h.pub = c
	h.healthy = c.Healthy
	return func(in *ingest.Ingester) error {
		ing = in
		h.add("extbroker", c.Run)
		h.add("brokerprobe", func(ctx context.Context) error { return probeBroker(ctx, h.st, cfg, h.log) })
		return nil
	}, nil
}

// web binds the HTTP listener and adds the "web" part serving the API, dashboard, health and
// metrics.
func (h *hub) web(closer web.DayCloser, inv web.InventoryRefresher, trading web.TradingDays) error {
	health := func(ctx context.Context) error {
		if err := h.healthy(); err != nil {
			return err
		}
		_, err := h.st.Exceptions(ctx, store.ExceptionFilter{Limit: 1})
		return err
	}
	cfg := &h.cfg.HTTP
	rep, _ := closer.(web.Replayer)
	handler := web.New(h.st, web.Options{Logger: h.log, Gatherer: h.reg, Health: health, Closer: closer, Replayer: rep, Inventory: inv, Trading: trading,
		Hosts: h.cfg.hosts(), SessionIdle: cfg.SessionIdle, SessionAbsolute: cfg.SessionMax, Availability: h.av,
		ReleasesDir: h.cfg.releasesDir(), MaxDownloads: h.cfg.Rollouts.MaxDownloads,
		Enroll: web.EnrollOptions{BrokerURL: agentBrokerURL(h.cfg), HubURL: hubPublicURL(h.cfg), ExternalBroker: h.cfg.Broker.URL != ""}})
	tc, err := loadTLS("http.cert_file", cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return err
	}
	addr, err := h.serveHTTP("web", cfg.Listen, handler, tc)
	if err != nil {
		return fmt.Errorf("http listen %s: %w (pass --http ADDR)", cfg.Listen, err)
	}
	h.httpAddr = addr
	if cfg.MetricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{}))
		if h.metricsAddr, err = h.serveHTTP("metrics", cfg.MetricsListen, mux, nil); err != nil {
			return fmt.Errorf("config key http.metrics_listen: %w", err)
		}
	}
	return nil
}

// loadTLS loads a listener's certificate and key (nil, nil when certFile is empty); errors
// name the config key.
func loadTLS(key, certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("config key %s: %w", key, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// serveHTTP binds addr and adds a part serving handler there (TLS when tc is set) with
// timeouts on every phase of a request; it returns the bound address.
func (h *hub) serveHTTP(name, addr string, handler http.Handler, tc *tls.Config) (string, error) {
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A close waits for an agent's replay (close.replay_wait, 30s by default) before it answers.
		WriteTimeout: max(2*time.Minute, h.cfg.Close.ReplayWait+time.Minute),
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	h.closers = append(h.closers, func() { ln.Close() })
	h.add(name, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
		}
		h.log.Info("shutting down", "server", name)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			// Requests still running after the grace period are cut off; that is no failure.
			h.log.Warn("http shutdown incomplete", "server", name, "err", err)
			srv.Close()
		}
		<-errc
		return nil
	})
	return ln.Addr().String(), nil
}
