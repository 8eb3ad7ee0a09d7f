// Package extbroker is the hub's client of an external MQTT broker (broker.url), used instead
// of the embedded one (package broker) when several hub replicas share a broker: each replica
// subscribes to the agents' topics in one shared subscription group ($share/GROUP/...), so the
// broker hands every message to one replica only.
//
// The client connects when Run starts and reconnects for as long as Run runs: a broker that is
// down at start or goes away later is retried (every RetryInterval at first, backing off to
// MaxReconnectInterval); Healthy reports whether it is connected meanwhile. The session is
// clean: messages published while no replica is subscribed are lost, which is safe because
// agents resend everything the hub has not acknowledged.
package extbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	// RetryInterval is the wait between connection attempts while the broker is down at start
	// (default 2s); MaxReconnectInterval caps the backoff after a lost connection (default 15s).
	RetryInterval        time.Duration
	MaxReconnectInterval time.Duration
	Logger               *slog.Logger // nil discards
}

// Client is a connection to an external broker. Publish and Healthy are safe for concurrent
// use; Run is called once.
type Client struct {
	cfg    Config
	log    *slog.Logger
	client mqtt.Client
	stop   chan struct{} // closed when Run returns
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, log: log.With("component", "extbroker", "url", cfg.URL), stop: make(chan struct{})}
	o := mqtt.NewClientOptions().AddBroker(cfg.URL).SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(cfg.RetryInterval).SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetOrderMatters(true).SetKeepAlive(20 * time.Second).SetWriteTimeout(15 * time.Second)
	o.SetOnConnectHandler(func(mc mqtt.Client) { go c.subscribe(mc) })
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) { c.log.Warn("lost external broker", "err", err) })
	c.client = mqtt.NewClient(o)
	return c, nil
}

// subscribe makes the shared subscription after each (re)connection (the session is clean),
// retrying while the connection lasts; a new connection calls it again.
func (c *Client) subscribe(mc mqtt.Client) {
	filters := make(map[string]byte, len(c.cfg.Filters))
	for f, qos := range c.cfg.Filters {
		filters["$share/"+c.cfg.SharedGroup+"/"+f] = qos
	}
	handler := func(_ mqtt.Client, m mqtt.Message) { c.cfg.Handler(m.Topic(), m.Payload()) }
	for {
		tok := mc.SubscribeMultiple(filters, handler)
		if tok.WaitTimeout(15*time.Second) && tok.Error() == nil {
			c.log.Info("subscribed on external broker", "group", c.cfg.SharedGroup)
			return
		}
		if !mc.IsConnectionOpen() {
			return
		}
		c.log.Error("subscribe on external broker failed; retrying", "err", tok.Error())
		select {
		case <-c.stop:
			return
		case <-time.After(c.cfg.RetryInterval):
		}
	}
}

// Run connects, and keeps reconnecting, until ctx ends; then it disconnects and returns nil.
// It does not fail on its own: an unreachable broker is retried, and Healthy says so.
func (c *Client) Run(ctx context.Context) error {
	c.log.Info("connecting to external broker")
	c.client.Connect()
	<-ctx.Done()
	close(c.stop)
	c.client.Disconnect(1000)
	return nil
}

// Healthy returns an error while the client is not connected.
func (c *Client) Healthy() error {
	if !c.client.IsConnectionOpen() {
		return fmt.Errorf("not connected to broker %s", c.cfg.URL)
	}
	return nil
}

// Publish sends a QoS 1 message without waiting for the broker's PUBACK.
func (c *Client) Publish(topic string, payload []byte) error {
	if !c.client.IsConnectionOpen() {
		return errors.New("not connected to broker")
	}
	// Do not wait for the PUBACK here: it is processed by paho's router, which may be busy
	// delivering to our own handler. The ack is idempotent and the agent resends on timeout.
	tok := c.client.Publish(topic, 1, false, payload)
	go tok.WaitTimeout(30 * time.Second)
	return nil
}
