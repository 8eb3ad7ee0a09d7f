// Package extbroker is the hub's client of an external MQTT broker (broker.url), used instead
// of the embedded one (package broker) when several hub replicas share a broker: each replica
// subscribes to the agents' topics in one shared subscription group ($share/GROUP/...), so the
// broker hands every message to one replica only.
//
// The client connects when Run starts and reconnects for as long as Run runs: a broker that is
// down at start or goes away later is retried (every RetryInterval at first, backing off to
// MaxReconnectInterval). Failed attempts are logged (the first one, then at most every
// LogInterval while they go on). After each connection the client subscribes; a filter the
// broker refuses (SUBACK 0x80: an ACL, or a broker without shared subscriptions) is a failure,
// logged and retried with the same back-off. Healthy reports an error, naming the last
// connection error or the refused filter, until the client is both connected and subscribed.
// The session is clean: messages published while no replica is subscribed are lost, which is
// safe because agents resend everything the hub has not acknowledged.
package extbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Config configures a Client.
type Config struct {
	URL      string // tcp://host:1883, ssl://host:8883, ...
	Username string
	Password string
	// ClientID must be unique per hub process (default lanebridge-hub-HOST-PID).
	ClientID string
	// SharedGroup names the shared subscription (required).
	SharedGroup string
	// Filters are the topic filters to subscribe to, with their QoS (required).
	Filters map[string]byte
	// Handler receives every message. It runs on paho's router and must not block: hand the
	// message off or drop it (required).
	Handler func(topic string, payload []byte)
	// RetryInterval is the first wait between connection (or subscription) attempts (default
	// 2s); the wait doubles after each failure up to MaxReconnectInterval (default 15s).
	RetryInterval        time.Duration
	MaxReconnectInterval time.Duration
	// LogInterval is the least time between two log lines about one run of failed connection
	// or subscription attempts (default 30s); the first failure is always logged.
	LogInterval time.Duration
	Logger      *slog.Logger // nil discards
}

// subackFailure is the SUBACK return code of a refused subscription (MQTT 3.1.1).
const subackFailure = 0x80

// Client is a connection to an external broker. Publish and Healthy are safe for concurrent
// use; Run is called once.
type Client struct {
	cfg    Config
	url    string // cfg.URL with any password redacted
	log    *slog.Logger
	client mqtt.Client
	stop   chan struct{} // closed when Run returns
	lost   chan struct{} // signalled by paho when an established connection is lost

	mu         sync.Mutex
	conn       uint64 // counts connections and losses: a subscription attempt of an older one is stale
	connErr    error  // why the last connection attempt failed or the connection was lost
	subscribed bool   // every filter is granted on the current connection
	subErr     error  // why the last subscription attempt on the current connection failed
}

// New configures a client; Run connects it.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.URL == "":
		return nil, errors.New("extbroker: Config.URL is empty")
	case cfg.SharedGroup == "":
		return nil, errors.New("extbroker: Config.SharedGroup is empty")
	case len(cfg.Filters) == 0:
		return nil, errors.New("extbroker: Config.Filters is empty")
	case cfg.Handler == nil:
		return nil, errors.New("extbroker: Config.Handler is nil")
	}
	if cfg.ClientID == "" {
		host, _ := os.Hostname()
		cfg.ClientID = fmt.Sprintf("lanebridge-hub-%s-%d", host, os.Getpid())
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 2 * time.Second
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 15 * time.Second
	}
	if cfg.LogInterval <= 0 {
		cfg.LogInterval = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, url: redact(cfg.URL), stop: make(chan struct{}), lost: make(chan struct{}, 1)}
	c.log = log.With("component", "extbroker", "url", c.url)
	// Connection attempts are made by Run, one at a time, so that failures can be logged:
	// paho's own retries (ConnectRetry, AutoReconnect) report them only at its debug level.
	o := mqtt.NewClientOptions().AddBroker(cfg.URL).SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetOrderMatters(true).SetKeepAlive(20 * time.Second).SetWriteTimeout(15 * time.Second)
	o.SetOnConnectHandler(c.connected)
	o.SetConnectionLostHandler(c.connectionLost)
	c.client = mqtt.NewClient(o)
	return c, nil
}

// redact returns rawURL with any password replaced by xxxxx.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// connected (paho's OnConnect) starts the shared subscription of the new connection.
func (c *Client) connected(mc mqtt.Client) {
	c.mu.Lock()
	c.conn++
	conn := c.conn
	c.connErr, c.subscribed, c.subErr = nil, false, nil
	c.mu.Unlock()
	c.log.Info("connected to external broker")
	go c.subscribe(mc, conn)
}

// connectionLost (paho's OnConnectionLost) resets the subscription state and wakes Run to
// reconnect.
func (c *Client) connectionLost(_ mqtt.Client, err error) {
	c.mu.Lock()
	c.conn++
	c.connErr, c.subscribed, c.subErr = fmt.Errorf("connection lost: %w", err), false, nil
	c.mu.Unlock()
	c.log.Warn("lost external broker", "err", err)
	select {
	case c.lost <- struct{}{}:
	default:
	}
}

// failureLog logs the first of a run of failures, then at most one line per interval.
type failureLog struct {
	interval time.Duration
	failures int // in this run
	logged   time.Time
}

// fail counts a failure and reports whether to log it.
func (l *failureLog) fail() bool {
	l.failures++
	if l.failures == 1 || time.Since(l.logged) >= l.interval {
		l.logged = time.Now()
		return true
	}
	return false
}

// backoff returns the wait before the next attempt after wait, doubled up to the maximum.
func (c *Client) backoff(wait time.Duration) time.Duration {
	return min(2*wait, c.cfg.MaxReconnectInterval)
}

// sleep waits d, or returns false once Run is ending.
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.stop:
		return false
	case <-t.C:
		return true
	}
}

// refusedError names the filters the broker refused in a SUBACK.
type refusedError struct{ filters []string }

func (e *refusedError) Error() string {
	return fmt.Sprintf("broker refused %s (ACL, or no shared-subscription support)", strings.Join(e.filters, ", "))
}

// subscribe makes the shared subscription of connection conn (the session is clean), retrying
// what failed or was refused while that connection lasts; a new connection calls it again.
func (c *Client) subscribe(mc mqtt.Client, conn uint64) {
	pending := make(map[string]byte, len(c.cfg.Filters))
	for f, qos := range c.cfg.Filters {
		pending["$share/"+c.cfg.SharedGroup+"/"+f] = qos
	}
	handler := func(_ mqtt.Client, m mqtt.Message) { c.cfg.Handler(m.Topic(), m.Payload()) }
	failures := failureLog{interval: c.cfg.LogInterval}
	wait := c.cfg.RetryInterval
	for {
		err := c.subscribeOnce(mc, pending, handler)
		if !c.setSubscribed(conn, err) {
			return // connection gone: the next one subscribes anew
		}
		if err == nil {
			c.log.Info("subscribed on external broker", "group", c.cfg.SharedGroup, "attempts", failures.failures+1)
			return
		}
		if failures.fail() {
			if r := (*refusedError)(nil); errors.As(err, &r) {
				c.log.Error("external broker refused subscription; retrying", "filters", r.filters,
					"reason", "ACL, or no shared-subscription support", "attempts", failures.failures, "retry_in", wait)
			} else {
				c.log.Error("subscribe on external broker failed; retrying", "err", err, "attempts", failures.failures, "retry_in", wait)
			}
		}
		if !c.sleep(wait) {
			return
		}
		wait = c.backoff(wait)
	}
}

// subscribeOnce subscribes to the pending filters, removing those the broker grants; a refusal
// returns a *refusedError.
func (c *Client) subscribeOnce(mc mqtt.Client, pending map[string]byte, handler mqtt.MessageHandler) error {
	tok := mc.SubscribeMultiple(pending, handler)
	if !tok.WaitTimeout(15 * time.Second) {
		return errors.New("no SUBACK within 15s")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	st, ok := tok.(*mqtt.SubscribeToken)
	if !ok {
		return fmt.Errorf("unexpected subscribe token %T", tok)
	}
	granted := st.Result()
	var refused []string
	for f := range pending {
		switch code, ok := granted[f]; {
		case !ok:
			refused = append(refused, f) // no return code for it: a malformed SUBACK
		case code == subackFailure:
			refused = append(refused, f)
		default:
			delete(pending, f)
		}
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		return &refusedError{filters: refused}
	}
	return nil
}

// setSubscribed records the outcome of a subscription attempt on connection conn and reports
// whether that connection is still the current, open one.
func (c *Client) setSubscribed(conn uint64, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != conn || !c.client.IsConnectionOpen() {
		return false
	}
	c.subscribed, c.subErr = err == nil, err
	return true
}

// Run connects, and keeps reconnecting, until ctx ends; then it disconnects and returns nil.
// It does not fail on its own: an unreachable broker is retried, logged, and Healthy says so.
func (c *Client) Run(ctx context.Context) error {
	defer func() {
		close(c.stop)
		c.client.Disconnect(1000)
	}()
	c.log.Info("connecting to external broker")
	failures := failureLog{interval: c.cfg.LogInterval}
	wait := c.cfg.RetryInterval
	for {
		tok := c.client.Connect()
		select {
		case <-ctx.Done():
			return nil
		case <-tok.Done():
		}
		if err := tok.Error(); err != nil {
			c.mu.Lock()
			c.connErr = err
			c.mu.Unlock()
			if failures.fail() {
				c.log.Error("cannot connect to external broker; retrying", "err", err, "attempts", failures.failures, "retry_in", wait)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			wait = c.backoff(wait)
			continue
		}
		failures = failureLog{interval: c.cfg.LogInterval}
		wait = c.cfg.RetryInterval
		select {
		case <-ctx.Done():
			return nil
		case <-c.lost:
		}
	}
}

// Healthy returns an error while the client is not connected, or not (yet) subscribed to every
// filter; the error says why.
func (c *Client) Healthy() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.client.IsConnectionOpen() && c.connErr != nil:
		return fmt.Errorf("not connected to broker %s: %w", c.url, c.connErr)
	case !c.client.IsConnectionOpen():
		return fmt.Errorf("not connected to broker %s", c.url)
	case c.subErr != nil:
		return fmt.Errorf("not subscribed: %w", c.subErr)
	case !c.subscribed:
		return errors.New("not subscribed yet")
	}
	return nil
}

// Publish sends a QoS 1 message and returns without waiting for the broker's PUBACK: the
// publish is fire-and-forget. Waiting would be wrong here (the PUBACK is processed by paho's
// router, which may be busy delivering to our own Handler) and pointless: the ack is
// idempotent, and the agent resends a record whose ack does not arrive.
func (c *Client) Publish(topic string, payload []byte) error {
	if !c.client.IsConnectionOpen() {
		return errors.New("not connected to broker")
	}
	c.client.Publish(topic, 1, false, payload)
	return nil
}
