// Package broker is the hub's embedded MQTT broker (mochi-mqtt) with a deny-by-default policy:
// each store authenticates as itself and may publish only to its own up/records and up/status
// topics and read only its own down/acks, down/inventory and down/commands topics. The hub
// itself talks to the broker through the in-process client (Publish, Subscribe). Connected
// stores whose credentials change (disabled, removed, rotated out) are rechecked and
// disconnected within Config.Recheck; failed logins are throttled per client address; strings
// clients control are cut in logs.
//
// Caveats: sessions, queued messages and retained messages live in memory only; a hub restart
// loses them. That is safe under Lanebridge's rules (agents keep every record until the hub
// acks its own durable write, and re-send), but acks queued for offline stores are lost with
// it. A PUBACK from this broker means only that the broker took the message.
package broker

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Limits applied to every client.
const (
	// MaxPacketSize bounds one MQTT packet, CONNECT included; record batches are ~1 MiB.
	MaxPacketSize = 8 << 20
	// Expiry is how long a disconnected store's session and the messages queued for it are
	// kept (mochi's default message expiry is 24 h; stores may be offline for days).
	Expiry = 30 * 24 * 60 * 60 // seconds
	// DefaultMaxClients bounds concurrent connections unless Config.MaxClients says otherwise
	// (hub.yaml mqtt.max_clients). Each idle connection costs the hub a few tens of KiB.
	DefaultMaxClients = 100_000
	// MaxInflight bounds QoS 1/2 messages queued per client (mochi drops beyond it).
	MaxInflight = 4096
	// MaxWritesPending bounds packets buffered for writing to one connected client.
	MaxWritesPending = 1024
)

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("broker closed")

// Authenticator checks store credentials. It is implemented by the hub's store and must be
// safe for concurrent use: the broker calls it from one goroutine per connecting client.
type Authenticator interface {
	// CheckStore reports whether password is right for store id. An unknown store is
	// (false, nil); an error means the check could not be made (the client is refused).
	// A constant-time comparison is the implementation's job.
	CheckStore(ctx context.Context, store, password string) (bool, error)
}

// Config configures a Broker.
type Config struct {
	// Addr is the TCP listen address, e.g. "127.0.0.1:18830" or "127.0.0.1:0".
	Addr string
	// TLSConfig, if set, makes the listener TLS only (at least TLS 1.2).
	TLSConfig *tls.Config
	// Auth checks store passwords; required.
	Auth Authenticator
	// Logger receives the broker's logs; nil discards them. Packets (payloads, passwords)
	// are never logged, and client-supplied strings (topics, ids) are cut to maxLogString.
	Logger *slog.Logger
	// Recheck is how often credential changes are looked up when Auth is a ChangeLister
	// (default DefaultRecheck).
	Recheck time.Duration
	// LoginFreeFailures and LoginBackoff set the per-address back-off on failed logins
	// (defaults DefaultLoginFreeFailures, DefaultLoginBackoff); a negative LoginBackoff turns
	// it off.
	LoginFreeFailures int
	LoginBackoff      time.Duration
	// MaxClients bounds concurrent client connections (default DefaultMaxClients); a client
	// beyond it is refused at CONNECT (server busy). Negative is an error.
	MaxClients int
}

// Broker is an embedded MQTT broker. Its methods are safe for concurrent use.
type Broker struct {
	srv    *mqtt.Server
	ln     *listener
	log    *slog.Logger
	cancel context.CancelFunc
	// recheck, if set, runs the credential rechecks until the broker closes.
	recheck func()

	mu      sync.Mutex
	started bool
	closed  bool
}

// New configures a broker; Start makes it listen.
func New(cfg Config) (*Broker, error) {
	if cfg.Addr == "" {
		return nil, errors.New("broker: Config.Addr is empty")
	}
	if cfg.Auth == nil {
		return nil, errors.New("broker: Config.Auth is nil")
	}
	if cfg.MaxClients < 0 {
		return nil, fmt.Errorf("broker: Config.MaxClients is %d; want 0 (default %d) or more", cfg.MaxClients, DefaultMaxClients)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = slog.New(redactHandler{log.Handler()}).With(slog.String("component", "broker"))

	var tlsConf *tls.Config
	if cfg.TLSConfig != nil {
		tlsConf = cfg.TLSConfig.Clone()
		if tlsConf.MinVersion < tls.VersionTLS12 {
			tlsConf.MinVersion = tls.VersionTLS12
		}
	}

	srv := mqtt.New(&mqtt.Options{
		Capabilities: capabilities(cmp.Or(cfg.MaxClients, DefaultMaxClients)),
		Logger:       log,
		InlineClient: true,
		// $SYS topics are unreadable for stores; publish them rarely.
		SysTopicResendInterval: 60,
	})
	ctx, cancel := context.WithCancel(context.Background())
	hook := &aclHook{auth: cfg.Auth, log: log, ctx: ctx, sessions: sessions{m: map[*mqtt.Client]session{}}}
	if cfg.LoginBackoff >= 0 {
		hook.throttle = newThrottle(cmp.Or(cfg.LoginFreeFailures, DefaultLoginFreeFailures), cmp.Or(cfg.LoginBackoff, DefaultLoginBackoff))
	}
	if err := srv.AddHook(hook, nil); err != nil {
		cancel()
		return nil, fmt.Errorf("broker: add acl hook: %w", err)
	}
	b := &Broker{
		srv:    srv,
		ln:     newListener("lanebridge", cfg.Addr, tlsConf),
		log:    log,
		cancel: cancel,
	}
	if lister, ok := cfg.Auth.(ChangeLister); ok {
		b.recheck = func() { hook.recheck(ctx, lister, cmp.Or(cfg.Recheck, DefaultRecheck)) }
	}
	return b, nil
}

func capabilities(maxClients int) *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	c.MaximumPacketSize = MaxPacketSize
	c.MaximumMessageExpiryInterval = Expiry
	c.MaximumSessionExpiryInterval = Expiry
	c.MaximumClients = int64(maxClients)
	c.MaximumInflight = MaxInflight
	c.MaximumClientWritesPending = MaxWritesPending
	// Inbound topic aliases would be resolved after mochi's ACL check; nobody needs them.
	c.TopicAliasMaximum = 0
	c.SharedSubAvailable = 0
	return c
}

// Start binds the listener and serves; the broker accepts connections when it returns.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.started {
		return errors.New("broker: already started")
	}
	if err := b.srv.AddListener(b.ln); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.started = true
	if b.recheck != nil {
		go b.recheck()
	}
	b.log.Info("mqtt broker listening", slog.String("addr", b.ln.Address()), slog.String("protocol", b.ln.Protocol()))
	return nil
}

// Addr returns the address the broker listens on (host:port, with the real port when the
// configured one was 0), or the configured address before Start.
func (b *Broker) Addr() string { return b.ln.Address() }

// Publish publishes from the hub itself, bypassing the ACL. qos caps the QoS of delivery to
// each subscriber. Inline subscribers receive payload itself, so the caller must not modify
// it afterwards.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	if qos > 2 {
		return fmt.Errorf("broker: publish %s: qos %d", topic, qos)
	}
	if err := b.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("broker: publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe adds an in-process subscription identified by (filter, id). h runs on the
// publishing client's goroutine after the broker has acknowledged the message to it, so it
// must hand work off quickly and must not call Subscribe or Unsubscribe. h must not modify
// payload; it may keep it.
func (b *Broker) Subscribe(filter string, id int, h func(topic string, payload []byte)) error {
	if err := b.usable(); err != nil {
		return err
	}
	if h == nil {
		return errors.New("broker: subscribe: nil handler")
	}
	err := b.srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		h(pk.TopicName, pk.Payload)
	})
	if err != nil {
		return fmt.Errorf("broker: subscribe %s: %w", filter, err)
	}
	return nil
}

// Unsubscribe removes the in-process subscription (filter, id).
func (b *Broker) Unsubscribe(filter string, id int) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.srv.Unsubscribe(filter, id); err != nil {
		return fmt.Errorf("broker: unsubscribe %s: %w", filter, err)
	}
	return nil
}

func (b *Broker) usable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

// Close disconnects every client, stops listening and waits for connection goroutines.
// It is safe to call more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.started
	b.mu.Unlock()

	b.cancel()
	if !started {
		return nil
	}
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("broker: close: %w", err)
	}
	b.log.Info("mqtt broker stopped")
	return nil
}
