// Package uplink forwards captured records from the spool to the hub over MQTT and advances the
// spool's acknowledgement only on the hub's own acks.
//
// One goroutine (Run) owns all state: the next seq to send, the window of batches in flight and
// the last ack. paho callbacks never block: they hand events to Run through channels. A record
// leaves the outbox only when an Ack from the hub says it is durably applied; a broker PUBACK
// means nothing here. On reconnect, on "resend from M" and when acks stop coming for AckTimeout,
// Run rewinds to the first unacknowledged seq; the hub is idempotent so resending is safe.
package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

// Outbox is the part of the spool the forwarder uses. Safe for concurrent use.
type Outbox interface {
	Epoch() string
	LastSeq() uint64
	LastAck() uint64
	// ReadRaw returns the stored JSON of up to max records with seq >= from, in order.
	ReadRaw(from uint64, max int) ([]spool.RawRecord, error)
	// Ack persists that the hub applied every seq <= through of epoch.
	Ack(epoch string, through uint64) error
	// Notify receives after commits that added records.
	Notify() <-chan struct{}
}

// Config configures the forwarder.
type Config struct {
	Store     string
	Broker    string // tcp://host:port or ssl://host:port
	Username  string
	Password  string
	CAFile    string
	CertFile  string
	KeyFile   string
	BatchSize int
	Window    int // batches in flight; with BatchSize the default of WindowRecords (default 8)
	// WindowRecords is how many unacknowledged records may be in flight (default Window ×
	// BatchSize); the last batch of a full window is cut to fit.
	WindowRecords int
	// AckPersist bounds how long a hub ack is held in memory before it is persisted to the
	// spool (one fsync), and AckPersistRecords how many records it may cover beyond the
	// persisted one (defaults 250ms and 16384); it is also persisted when Run returns. Acks are
	// cumulative and the hub stores idempotently: an ack lost in a crash only makes the agent
	// resend records the hub then counts as duplicates and acks again.
	AckPersist        time.Duration
	AckPersistRecords uint64
	AckTimeout        time.Duration
	Heartbeat         time.Duration
	ClientID          string
	// RejectRetry is how long forwarding stays paused at records the hub refused for good
	// (Ack.Rejected) before they are offered again, e.g. to an upgraded hub (default 1h).
	RejectRetry time.Duration
	// ConnectRetry is the pause between connects until the first succeeds; after a lost
	// connection it is the first pause, doubling up to 30s (default 2s).
	ConnectRetry time.Duration
	// OnQuarantineAck is called (from paho's goroutine: it must not block) when the hub
	// acknowledges quarantined captures of this epoch through a seq.
	OnQuarantineAck func(through uint64)
	// Status builds the heartbeat; State and V are filled in by the forwarder.
	Status func() protocol.Status
	// Inventory and Commands, when set, receive the hub's down/inventory and down/commands
	// messages, decoded and checked. The forwarder sends without blocking: a message that finds
	// the channel full is dropped and counted in DownDropped (the hub recovers: a missed delta
	// leads to a snapshot, a command without a result is sent again).
	Inventory chan<- *protocol.Inventory
	Commands  chan<- *protocol.Command
	// Updates, when set, receives the update commands (protocol.CommandUpdate) instead of
	// Commands, likewise without blocking.
	Updates chan<- *protocol.Command
	// ConfigCommands, when set, receives the config commands (signed configuration pushes)
	// instead of Commands.
	ConfigCommands chan<- *protocol.Command
	Logger         *slog.Logger // nil discards
}

// Counters are exported for metrics and status.
type Counters struct {
	Published   atomic.Uint64 // records published (including resends)
	Acked       atomic.Uint64 // records newly acknowledged by the hub
	Rewinds     atomic.Uint64
	BadAcks     atomic.Uint64
	BadDown     atomic.Uint64 // inventory or command messages that failed to decode
	DownDropped atomic.Uint64 // inventory or command messages dropped on a full channel
	Connected   atomic.Bool
	LastAckTime atomic.Int64 // unix nanos
	// HubAck is the hub's cumulative ack as last heard (0: none since Run began). It runs ahead
	// of the spool's persisted LastAck by at most Config.AckPersist / AckPersistRecords.
	HubAck atomic.Uint64
	// ConnectFailures counts failed connects since the last successful one.
	ConnectFailures atomic.Uint64
	lastConnErr     atomic.Pointer[ConnectError]
	refused         atomic.Pointer[protocol.Rejection]
}

// Refused returns the hub's refusal that pauses forwarding, or nil.
func (c *Counters) Refused() *protocol.Rejection { return c.refused.Load() }

// ConnectError is why the last connect to the broker failed.
type ConnectError struct {
	Reason string    `json:"reason"` // bad credentials, not authorized, connection refused, tls, timeout, …
	Err    string    `json:"error"`
	At     time.Time `json:"at"`
}

// LastConnectError returns the last connect failure since the last successful connect, or nil.
func (c *Counters) LastConnectError() *ConnectError { return c.lastConnErr.Load() }

// Forwarder moves records from an Outbox to the hub.
type Forwarder struct {
	cfg    Config
	out    Outbox
	log    *slog.Logger
	client mqtt.Client

	acks      chan protocol.Ack
	conn      chan bool
	lost      chan struct{} // to the connect loop: the connection is gone, connect again
	statusReq chan struct{}
	C         Counters
	epoch     string
}

type inflight struct {
	from, to uint64
	sentAt   time.Time
}

// New builds a forwarder; it connects when Run starts.
func New(cfg Config, out Outbox) (*Forwarder, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	if cfg.Window <= 0 {
		cfg.Window = 8
	}
	if cfg.WindowRecords <= 0 {
		cfg.WindowRecords = cfg.Window * cfg.BatchSize
	}
	if cfg.AckPersist <= 0 {
		cfg.AckPersist = 250 * time.Millisecond
	}
	if cfg.AckPersistRecords == 0 {
		cfg.AckPersistRecords = 16384
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 20 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ConnectRetry <= 0 {
		cfg.ConnectRetry = 2 * time.Second
	}
	if cfg.RejectRetry <= 0 {
		cfg.RejectRetry = time.Hour
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "lanebridge-agent-" + cfg.Store
	}
	f := &Forwarder{
		cfg:  cfg,
		out:  out,
		log:  cfg.Logger.With("component", "uplink"),
		acks: make(chan protocol.Ack, 1024),
		conn: make(chan bool, 16),
		lost: make(chan struct{}, 1),
		// statusReq coalesces requests for a prompt status (capacity 1).
		statusReq: make(chan struct{}, 1),
		epoch:     out.Epoch(),
	}
	opts, err := f.clientOptions()
	if err != nil {
		return nil, err
	}
	f.client = mqtt.NewClient(opts)
	return f, nil
}

func (f *Forwarder) clientOptions() (*mqtt.ClientOptions, error) {
	u, err := url.Parse(f.cfg.Broker)
	if err != nil {
		return nil, fmt.Errorf("broker url: %w", err)
	}
	o := mqtt.NewClientOptions()
	o.AddBroker(f.cfg.Broker)
	o.SetClientID(f.cfg.ClientID)
	o.SetUsername(f.cfg.Username)
	o.SetPassword(f.cfg.Password)
	o.SetCleanSession(true) // the spool is the store; paho keeps nothing we rely on
	o.SetOrderMatters(false)
	// Run's own connect loop (connectLoop) retries, so that each failure's reason is seen:
	// paho's ConnectRetry and AutoReconnect would hide them.
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetConnectTimeout(10 * time.Second)
	// A half-open link (nothing gets through, nothing is closed) is noticed by the keepalive:
	// at most keepalive + ping timeout after the last packet received.
	o.SetKeepAlive(15 * time.Second)
	o.SetPingTimeout(5 * time.Second)
	o.SetWriteTimeout(15 * time.Second)
	o.SetResumeSubs(false)
	will, _ := json.Marshal(protocol.Status{V: protocol.Version, Store: f.cfg.Store, State: "offline"})
	o.SetBinaryWill(protocol.StatusTopic(f.cfg.Store), will, 1, true)
	if u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" {
		tc, err := f.tlsConfig()
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	o.SetOnConnectHandler(func(c mqtt.Client) {
		// Subscribing waits for a SUBACK, which must not happen on paho's callback goroutine
		// without a timeout; hand the event to Run, which subscribes.
		select {
		case f.conn <- true:
		default:
		}
	})
	o.SetConnectionLostHandler(func(c mqtt.Client, err error) {
		f.log.Warn("connection to broker lost", "err", err)
		select {
		case f.conn <- false:
		default:
		}
		f.reconnect()
	})
	return o, nil
}

func (f *Forwarder) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.cfg.CAFile != "" {
		pem, err := os.ReadFile(f.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("hub.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("hub.tls.ca_file %s: no PEM certificates", f.cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if f.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.cfg.CertFile, f.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("hub.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (f *Forwarder) onAck(_ mqtt.Client, m mqtt.Message) {
	a, err := protocol.DecodeAck(m.Payload())
	if err == nil && a.QuarantineThrough > 0 && a.Epoch == f.epoch && f.cfg.OnQuarantineAck != nil {
		f.cfg.OnQuarantineAck(a.QuarantineThrough) // cheap and non-blocking by contract
	}
	if err != nil {
		f.C.BadAcks.Add(1)
		f.log.Warn("ack rejected", "err", err)
		return
	}
	select {
	case f.acks <- *a:
	default:
		// Acks are cumulative and the ack timeout rewinds: dropping one under overload is safe.
		f.C.BadAcks.Add(1)
	}
}

func (f *Forwarder) onInventory(_ mqtt.Client, m mqtt.Message) {
	inv, err := protocol.DecodeInventory(f.cfg.Store, m.Payload())
	if err != nil {
		f.C.BadDown.Add(1)
		f.log.Warn("inventory message rejected", "err", err)
		return
	}
	select {
	case f.cfg.Inventory <- inv:
	default:
		f.C.DownDropped.Add(1)
		f.log.Warn("inventory queue full; message dropped", "version", inv.Version)
	}
}

func (f *Forwarder) onCommand(_ mqtt.Client, m mqtt.Message) {
	c, err := protocol.DecodeCommand(m.Payload())
	if err != nil {
		f.C.BadDown.Add(1)
		f.log.Warn("command rejected", "err", err)
		return
	}
	ch := f.cfg.Commands
	switch {
	case c.Type == protocol.CommandUpdate && f.cfg.Updates != nil:
		ch = f.cfg.Updates
	case c.Type == protocol.CommandConfig && f.cfg.ConfigCommands != nil:
		ch = f.cfg.ConfigCommands
	}
	select {
	case ch <- c:
	default:
		f.C.DownDropped.Add(1)
		f.log.Warn("command queue full; command dropped", "id", c.ID)
	}
}

// RequestStatus asks Run to publish the status now (if connected), e.g. after the inventory
// version changed or a command finished. It never blocks; requests coalesce.
func (f *Forwarder) RequestStatus() {
	select {
	case f.statusReq <- struct{}{}:
	default:
	}
}

// ErrNotConnected is returned by PublishRecords while the broker connection is down.
var ErrNotConnected = errors.New("not connected to the broker")

// PublishRecords publishes a batch payload (a replay) on the store's records topic with QoS 1
// and waits, bounded by ctx and 30 s, for the broker's PUBACK, which is not the hub's ack.
// Safe for concurrent use; never call it from a paho callback.
func (f *Forwarder) PublishRecords(ctx context.Context, payload []byte) error {
	if !f.client.IsConnectionOpen() {
		return ErrNotConnected
	}
	tok := f.client.Publish(protocol.RecordsTopic(f.cfg.Store), 1, false, payload)
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return errors.New("publish: no PUBACK within 30s")
	}
}

// reconnect tells the connect loop to connect again. It never blocks.
func (f *Forwarder) reconnect() {
	select {
	case f.lost <- struct{}{}:
	default:
	}
}

// maxConnectRetry caps the pause between connects.
const maxConnectRetry = 30 * time.Second

// connectLogEvery is how often a run of failed connects with one reason is logged again.
const connectLogEvery = 60 * time.Second

// connectLoop connects, and connects again after each loss, until ctx is done. Each failure is
// recorded for status; the log gets a warning on the first failure, on a new reason and then at
// most every connectLogEvery, with the count of failures.
func (f *Forwarder) connectLoop(ctx context.Context) {
	pause := f.cfg.ConnectRetry
	var (
		lastLog       time.Time
		lastReason    string
		everConnected bool
	)
	for {
		if f.client.IsConnectionOpen() { // a stale signal: still connected
			select {
			case <-f.lost:
			case <-ctx.Done():
				return
			}
			continue
		}
		tok := f.client.Connect()
		var err error
		select {
		case <-tok.Done():
			err = tok.Error()
		case <-ctx.Done():
			return
		}
		if err == nil {
			if n := f.C.ConnectFailures.Swap(0); n > 0 {
				f.log.Info("broker reachable again", "broker", f.cfg.Broker, "failures", n)
			}
			f.C.lastConnErr.Store(nil)
			pause, lastReason, everConnected = f.cfg.ConnectRetry, "", true
			select {
			case <-f.lost:
			case <-ctx.Done():
				return
			}
			continue
		}
		n := f.C.ConnectFailures.Add(1)
		ce := &ConnectError{Reason: connectReason(err), Err: err.Error(), At: time.Now().UTC()}
		f.C.lastConnErr.Store(ce)
		if ce.Reason != lastReason || time.Since(lastLog) >= connectLogEvery {
			f.log.Warn("cannot connect to the hub's broker", "reason", ce.Reason, "broker", f.cfg.Broker,
				"err", err, "failures", n, "hint", connectHint(ce.Reason))
			lastLog, lastReason = time.Now(), ce.Reason
		} else {
			f.log.Debug("connect failed", "reason", ce.Reason, "err", err, "failures", n)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		if everConnected {
			pause = min(2*pause, maxConnectRetry)
		}
	}
}

// connectReason names the kind of a connect failure.
func connectReason(err error) string {
	var (
		certErr x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invErr  x509.CertificateInvalidError
		recErr  tls.RecordHeaderError
		altErr  tls.AlertError
		verErr  *tls.CertificateVerificationError
	)
	msg := err.Error()
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return "bad credentials"
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return "not authorized"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &invErr), errors.As(err, &recErr),
		errors.As(err, &altErr), errors.As(err, &verErr), strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"):
		return "tls"
	case errors.Is(err, os.ErrDeadlineExceeded), strings.Contains(msg, "timeout"), strings.Contains(msg, "timed out"):
		return "timeout"
	case strings.Contains(msg, "no such host"):
		return "unknown host"
	}
	return "other"
}

// connectHint says what to check for a reason.
func connectHint(reason string) string {
	switch reason {
	case "bad credentials", "not authorized":
		return "check hub.username and hub.password against `lanebridge-hub stores add` (is the store enrolled?)"
	case "connection refused":
		return "nothing listens at hub.broker: is the hub running, and are host and port right?"
	case "tls":
		return "check hub.tls.ca_file (and cert_file/key_file) and that hub.broker names the host in the hub's certificate"
	case "timeout":
		return "the broker does not answer: check the network, firewall and hub.broker"
	case "unknown host":
		return "check the host name in hub.broker"
	}
	return "check hub.broker and the network"
}

// Run connects and forwards until ctx is done. It returns nil on a normal stop and an error
// only for failures that need a restart (the spool refusing an ack write).
func (f *Forwarder) Run(ctx context.Context) error {
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.connectLoop(cctx)
	}()
	defer func() {
		cancel()
		<-done
		if f.client.IsConnectionOpen() {
			f.publishStatus("offline")
		}
		f.client.Disconnect(500)
	}()

	var (
		connected bool
		// acked is the hub's ack (cumulative) as last heard; persisted is what the spool
		// holds. acked runs ahead by at most AckPersist / AckPersistRecords.
		acked     = f.out.LastAck()
		persisted = acked
		persistAt time.Time // when the held ack is due to be persisted (zero: none held)
		next      = acked + 1
		window    []inflight
		lastProg  = time.Now()
		// stopAt, when > 0, is the first seq the hub refused for good: nothing from it on is
		// sent until stopUntil (the records stay in the outbox).
		stopAt    uint64
		stopUntil time.Time
	)
	persist := func() error {
		if acked <= persisted {
			return nil
		}
		if err := f.out.Ack(f.epoch, acked); err != nil {
			return fmt.Errorf("persist ack %d: %w", acked, err)
		}
		persisted, persistAt = acked, time.Time{}
		return nil
	}
	defer func() {
		if err := persist(); err != nil {
			f.log.Error("ack not persisted at stop; the hub will see those records again as duplicates", "err", err)
		}
	}()
	refuse := func(r *protocol.Rejection) {
		if r == nil || r.From <= acked || stopAt > 0 && r.From >= stopAt {
			return
		}
		stopAt, stopUntil = r.From, time.Now().Add(f.cfg.RejectRetry)
		f.C.refused.Store(r)
		f.log.Error("hub refused records for good; forwarding paused, records kept", "from", r.From, "to", r.To,
			"reason", protocol.Clip(r.Reason, 512), "retry_in", f.cfg.RejectRetry.String())
	}
	rewind := func(why string) {
		if next != acked+1 || len(window) > 0 {
			f.C.Rewinds.Add(1)
			f.log.Info("rewinding", "reason", why, "from", acked+1, "was_next", next)
		}
		next = acked + 1
		window = window[:0]
		lastProg = time.Now()
	}
	hb := time.NewTicker(f.cfg.Heartbeat)
	defer hb.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ackTimer := time.NewTimer(time.Hour)
	ackTimer.Stop()
	defer ackTimer.Stop()

	for {
		// Fill the window.
		for connected && next-(acked+1) < uint64(f.cfg.WindowRecords) && next <= f.out.LastSeq() && (stopAt == 0 || next < stopAt) {
			n := min(f.cfg.BatchSize, f.cfg.WindowRecords-int(next-(acked+1)))
			if stopAt > 0 {
				n = int(min(uint64(n), stopAt-next))
			}
			raws, err := f.out.ReadRaw(next, n)
			if err != nil {
				return fmt.Errorf("read outbox at seq %d: %w", next, err)
			}
			if len(raws) == 0 {
				break
			}
			payload := protocol.AppendBatch(nil, protocol.BatchHeader{Store: f.cfg.Store, Epoch: f.epoch}, spool.JSONs(raws))
			tok := f.client.Publish(protocol.RecordsTopic(f.cfg.Store), 1, false, payload)
			go f.watch(tok, next)
			if len(window) == 0 {
				lastProg = time.Now()
			}
			window = append(window, inflight{from: next, to: next + uint64(len(raws)) - 1, sentAt: time.Now()})
			f.C.Published.Add(uint64(len(raws)))
			next += uint64(len(raws))
		}

		select {
		case <-ctx.Done():
			return nil
		case up := <-f.conn:
			if up {
				if err := f.subscribe(); err != nil {
					f.log.Warn("subscribe to acks failed; will retry on reconnect", "err", err)
					f.client.Disconnect(0)
					f.reconnect()
					continue
				}
				connected = true
				f.C.Connected.Store(true)
				f.log.Info("connected to broker", "broker", f.cfg.Broker, "backlog", f.out.LastSeq()-f.out.LastAck())
				f.publishStatus("online")
				rewind("connected")
			} else {
				connected = false
				f.C.Connected.Store(false)
				rewind("disconnected")
			}
		case a := <-f.acks:
			// Coalesce queued acks: cumulative, so the highest wins; honour any resend request.
			var through, resend uint64
			ok := a.Epoch == f.epoch
			if ok {
				through, resend = a.AppliedThrough, a.ResendFrom
				refuse(a.Rejected)
			}
		drain:
			for {
				select {
				case b := <-f.acks:
					if b.Epoch != f.epoch {
						continue
					}
					ok = true
					refuse(b.Rejected)
					through = max(through, b.AppliedThrough)
					if b.ResendFrom > 0 {
						resend = b.ResendFrom
					}
				default:
					break drain
				}
			}
			if !ok {
				f.log.Warn("ack for another epoch ignored", "epoch", a.Epoch, "ours", f.epoch)
				continue
			}
			if through > f.out.LastSeq() {
				f.log.Error("hub acked beyond what was captured; ignoring", "through", through, "last_seq", f.out.LastSeq())
				continue
			}
			if prev := acked; through > prev {
				acked = through
				switch {
				case through-persisted >= f.cfg.AckPersistRecords:
					if err := persist(); err != nil {
						return err
					}
				case persistAt.IsZero():
					persistAt = time.Now().Add(f.cfg.AckPersist)
					ackTimer.Reset(f.cfg.AckPersist)
				}
				f.C.Acked.Add(through - prev)
				f.C.HubAck.Store(through)
				f.C.LastAckTime.Store(time.Now().UnixNano())
				lastProg = time.Now()
				i := 0
				for i < len(window) && window[i].to <= through {
					i++
				}
				window = window[i:]
				if next <= through {
					next = through + 1
				}
			}
			if resend > 0 {
				rewind(fmt.Sprintf("hub asked to resend from %d", resend))
			}
		case <-f.out.Notify():
		case <-ackTimer.C:
			if err := persist(); err != nil {
				return err
			}
		case <-tick.C:
			if !persistAt.IsZero() && time.Now().After(persistAt) {
				if err := persist(); err != nil { // the timer was reset past a persist: belt and braces
					return err
				}
			}
			if stopAt > 0 && time.Now().After(stopUntil) {
				f.log.Info("offering records the hub refused again", "from", stopAt)
				stopAt = 0
				f.C.refused.Store(nil)
			}
			if len(window) > 0 && time.Since(lastProg) > f.cfg.AckTimeout {
				rewind("no ack within ack_timeout")
			}
		case <-hb.C:
			if connected {
				f.publishStatus("online")
			}
		case <-f.statusReq:
			if connected {
				f.publishStatus("online")
			}
		}
	}
}

func (f *Forwarder) watch(tok mqtt.Token, from uint64) {
	if !tok.WaitTimeout(30 * time.Second) {
		return // the ack timeout rewinds if the hub never answers
	}
	if err := tok.Error(); err != nil {
		f.log.Debug("publish failed; the ack timeout will resend", "from", from, "err", err)
	}
}

func (f *Forwarder) subscribe() error {
	type sub struct {
		topic string
		cb    mqtt.MessageHandler
	}
	subs := []sub{{protocol.AcksTopic(f.cfg.Store), f.onAck}}
	if f.cfg.Inventory != nil {
		subs = append(subs, sub{protocol.InventoryTopic(f.cfg.Store), f.onInventory})
	}
	if f.cfg.Commands != nil || f.cfg.Updates != nil {
		subs = append(subs, sub{protocol.CommandsTopic(f.cfg.Store), f.onCommand})
	}
	for _, sub := range subs {
		tok := f.client.Subscribe(sub.topic, 1, sub.cb)
		if !tok.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("subscribe %s: timed out", sub.topic)
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("subscribe %s: %w", sub.topic, err)
		}
	}
	return nil
}

func (f *Forwarder) publishStatus(state string) {
	var st protocol.Status
	if f.cfg.Status != nil {
		st = f.cfg.Status()
	}
	st.V, st.Store, st.State = protocol.Version, f.cfg.Store, state
	b, err := json.Marshal(st)
	if err != nil {
		f.log.Error("encode status", "err", err)
		return
	}
	tok := f.client.Publish(protocol.StatusTopic(f.cfg.Store), 1, true, b)
	go func() {
		if tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
			f.log.Debug("status publish failed", "err", tok.Error())
		}
	}()
}
