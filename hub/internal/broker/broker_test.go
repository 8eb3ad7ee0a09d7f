package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/syncbuf"
)

const waitFor = 5 * time.Second

// fakeAuth knows a fixed set of stores; safe for concurrent use.
type fakeAuth struct {
	passwords map[string]string
	err       error
}

func (a fakeAuth) CheckStore(_ context.Context, store, password string) (bool, error) {
	if a.err != nil {
		return false, a.err
	}
	want, ok := a.passwords[store]
	return ok && want == password, nil
}

var testStores = map[string]string{"S1": "pw1", "S2": "pw2", "inline": "pwi", AgentClientIDPrefix + "S2": "pwx"}

// syncBuffer collects log output from several goroutines.
type syncBuffer = syncbuf.Buffer

func startBroker(t testing.TB, auth Authenticator, logs io.Writer) *Broker {
	t.Helper()
	return startBrokerCfg(t, Config{Auth: auth}, logs)
}

// startBrokerCfg starts a broker with cfg on a free loopback port.
func startBrokerCfg(t testing.TB, cfg Config, logs io.Writer) *Broker {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

type clientOpt func(*paho.ClientOptions)

func options(addr, user, clientID, password string, opts ...clientOpt) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(clientID).
		SetUsername(user).
		SetPassword(password).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(waitFor).
		SetOrderMatters(false)
	for _, f := range opts {
		f(o)
	}
	return o
}

func connectErr(addr, user, clientID, password string, opts ...clientOpt) (paho.Client, error) {
	c := paho.NewClient(options(addr, user, clientID, password, opts...))
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		return c, errors.New("connect timed out")
	}
	return c, tok.Error()
}

// connect connects store with its own client id and password and disconnects at cleanup.
func connect(t testing.TB, b *Broker, store string, opts ...clientOpt) paho.Client {
	t.Helper()
	c, err := connectErr(b.Addr(), store, store, testStores[store], opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", store, err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// inbox records messages in arrival order.
type inbox struct {
	mu   sync.Mutex
	msgs []msg
}

type msg struct {
	topic   string
	payload []byte
}

func (in *inbox) add(topic string, payload []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs = append(in.msgs, msg{topic, bytes.Clone(payload)})
}

func (in *inbox) pahoHandler(_ paho.Client, m paho.Message) { in.add(m.Topic(), m.Payload()) }

func (in *inbox) all() []msg {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]msg(nil), in.msgs...)
}

// waitPayload waits until a message with payload arrives and returns everything received.
func (in *inbox) waitPayload(t testing.TB, payload string) []msg {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		all := in.all()
		for _, m := range all {
			if string(m.payload) == payload {
				return all
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("payload %q never arrived; got %v", payload, in.all())
	return nil
}

func (in *inbox) has(payload string) bool {
	for _, m := range in.all() {
		if string(m.payload) == payload {
			return true
		}
	}
	return false
}

func (m msg) String() string {
	p := m.payload
	if len(p) > 40 {
		p = p[:40]
	}
	return fmt.Sprintf("%s=%q", m.topic, p)
}

// hubSpy subscribes the inline client to every topic.
func hubSpy(t testing.TB, b *Broker) *inbox {
	t.Helper()
	in := &inbox{}
	if err := b.Subscribe("#", 1, in.add); err != nil {
		t.Fatalf("inline Subscribe: %v", err)
	}
	return in
}

func publish(t testing.TB, c paho.Client, topic string, qos byte, payload []byte) paho.Token {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("publish to %s timed out", topic)
	}
	return tok
}

func TestConnectAuthentication(t *testing.T) {
	// Many refusals from one address: the login back-off (TestLoginThrottle) is off here.
	b := startBrokerCfg(t, Config{Auth: fakeAuth{passwords: testStores}, LoginBackoff: -1}, nil)
	withWill := func(topic string) clientOpt {
		return func(o *paho.ClientOptions) { o.SetWill(topic, "offline", 1, true) }
	}
	tests := []struct {
		name                     string
		user, clientID, password string
		opts                     []clientOpt
		ok                       bool
	}{
		{"right password", "S1", "S1", "pw1", nil, true},
		{"other store right password", "S2", "S2", "pw2", nil, true},
		{"wrong password", "S1", "S1", "pw2", nil, false},
		{"empty password", "S1", "S1", "", nil, false},
		{"unknown store", "S9", "S9", "pw1", nil, false},
		{"store id with slash", "a/b", "a/b", "pw1", nil, false},
		{"store id with wildcard", "S1+", "S1+", "pw1", nil, false},
		{"empty username", "", "S1", "pw1", nil, false},
		{"client id of another store", "S1", "S2", "pw1", nil, false},
		{"client id differs from store", "S1", "agent-S1", "pw1", nil, false},
		{"agent client id", "S1", AgentClientIDPrefix + "S1", "pw1", nil, true},
		{"agent client id of another store", "S1", AgentClientIDPrefix + "S2", "pw1", nil, false},
		{"store id with agent prefix", AgentClientIDPrefix + "S2", AgentClientIDPrefix + "S2", "pwx", nil, false},
		{"empty client id", "S1", "", "pw1", nil, false},
		{"store named like the inline client", "inline", "inline", "pwi", nil, false},
		{"will on own status", "S1", "S1", "pw1", []clientOpt{withWill(protocol.StatusTopic("S1"))}, true},
		{"will on other store's status", "S1", "S1", "pw1", []clientOpt{withWill(protocol.StatusTopic("S2"))}, false},
		{"will on other store's records", "S1", "S1", "pw1", []clientOpt{withWill(protocol.RecordsTopic("S2"))}, false},
		{"will on own records", "S1", "S1", "pw1", []clientOpt{withWill(protocol.RecordsTopic("S1"))}, false},
		{"will on other store's acks", "S1", "S1", "pw1", []clientOpt{withWill(protocol.AcksTopic("S2"))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := connectErr(b.Addr(), tt.user, tt.clientID, tt.password, tt.opts...)
			defer c.Disconnect(50)
			if tt.ok && err != nil {
				t.Fatalf("connect(%q, %q) = %v, want success", tt.user, tt.clientID, err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("connect(%q, %q) succeeded, want refusal", tt.user, tt.clientID)
			}
		})
	}
}

func TestConnectAuthenticatorError(t *testing.T) {
	b := startBroker(t, fakeAuth{err: errors.New("database down")}, nil)
	c, err := connectErr(b.Addr(), "S1", "S1", "pw1")
	defer c.Disconnect(50)
	if err == nil {
		t.Fatal("connect succeeded while the authenticator failed")
	}
}

func TestWillToOtherStoreIsNeverPublished(t *testing.T) {
	b := startBroker(t, fakeAuth{passwords: testStores}, nil)
	spy := hubSpy(t, b)
	var conn net.Conn
	var mu sync.Mutex
	grab := func(o *paho.ClientOptions) {
		o.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			mu.Lock()
			conn = c
			mu.Unlock()
			return c, err
		})
	}
	for _, topic := range []string{protocol.StatusTopic("S2"), protocol.StatusTopic("S1")} {
		c, err := connectErr(b.Addr(), "S1", "S1", "pw1", grab, func(o *paho.ClientOptions) {
			o.SetWill(topic, "will:"+topic, 1, false)
		})
		if err != nil {
			c.Disconnect(50)
			continue
		}
		// Drop the TCP connection without DISCONNECT so that the broker sends the Will.
		mu.Lock()
		_ = conn.Close()
		mu.Unlock()
	}
	spy.waitPayload(t, "will:"+protocol.StatusTopic("S1")) // control: an allowed Will is sent
	if spy.has("will:" + protocol.StatusTopic("S2")) {
		t.Errorf("a Will for another store's topic was published: %v", spy.all())
	}
}

func TestStorePublishACL(t *testing.T) {
	b := startBroker(t, fakeAuth{passwords: testStores}, nil)
	spy := hubSpy(t, b)
	records := &inbox{}
	if err := b.Subscribe(protocol.AllRecordsFilter, 2, records.add); err != nil {
		t.Fatal(err)
	}
	s2 := &inbox{}
	c2 := connect(t, b, "S2")
	c2.Subscribe("lanebridge/v1/S2/down/+", 1, s2.pahoHandler).WaitTimeout(waitFor)

	denied := []string{
		protocol.RecordsTopic("S2"),
		protocol.StatusTopic("S2"),
		protocol.AcksTopic("S2"),
		protocol.AcksTopic("S1"),
		protocol.RecordsTopic("S1") + "/x",
		"lanebridge/v1/S1/up",
		"other",
	}
	t.Run("qos0 dropped silently", func(t *testing.T) {
		c1 := connect(t, b, "S1")
		for _, topic := range append(denied, "$SYS/broker/version") {
			publish(t, c1, topic, 0, []byte("denied0:"+topic))
		}
		// The same connection's packets are handled in order: once this arrives, every
		// earlier publish has been handled.
		publish(t, c1, protocol.RecordsTopic("S1"), 0, []byte("barrier0"))
		all := spy.waitPayload(t, "barrier0")
		for _, m := range all {
			if strings.HasPrefix(string(m.payload), "denied0:") {
				t.Errorf("denied QoS 0 publish was delivered: %v", m)
			}
		}
		if !c1.IsConnectionOpen() {
			t.Error("QoS 0 denial dropped the connection; want it kept")
		}
	})
	for _, topic := range denied {
		t.Run("qos1 disconnects "+topic, func(t *testing.T) {
			lost := make(chan error, 1)
			c1 := connect(t, b, "S1", func(o *paho.ClientOptions) {
				o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
			})
			// MQTT 3.1.1 has no negative PUBACK: mochi closes the connection instead.
			c1.Publish(topic, 1, false, []byte("denied1:"+topic))
			select {
			case <-lost:
			case <-time.After(waitFor):
				t.Fatal("connection kept after a denied QoS 1 publish")
			}
		})
	}
	t.Run("qos1 to $SYS ignored without PUBACK", func(t *testing.T) {
		// mochi drops any client publish to a $-topic before the ACL check, without a PUBACK
		// and without disconnecting; paho's token then never completes.
		c1 := connect(t, b, "S1")
		tok := c1.Publish("$SYS/broker/version", 1, false, []byte("denied-sys"))
		if tok.WaitTimeout(200 * time.Millisecond) {
			t.Errorf("publish to $SYS completed (err %v), want no PUBACK", tok.Error())
		}
	})
	// Ordered after every denied publish above: the S1 allowed message arrives and nothing
	// denied ever reached the hub or S2.
	c1 := connect(t, b, "S1")
	publish(t, c1, protocol.RecordsTopic("S1"), 1, []byte("allowed-records"))
	publish(t, c1, protocol.StatusTopic("S1"), 1, []byte("allowed-status"))
	spy.waitPayload(t, "allowed-status")
	got := records.waitPayload(t, "allowed-records")
	for _, m := range append(spy.all(), s2.all()...) {
		if strings.HasPrefix(string(m.payload), "denied") {
			t.Errorf("denied publish was delivered: %v", m)
		}
	}
	for _, m := range got {
		if m.topic != protocol.RecordsTopic("S1") {
			t.Errorf("records subscriber got %v, want only S1's batches", m)
		}
	}
}

func TestStoreSubscribeACL(t *testing.T) {
	b := startBroker(t, fakeAuth{passwords: testStores}, nil)
	c1 := connect(t, b, "S1")
	s1 := &inbox{}
	tests := []struct {
		filter string
		ok     bool
	}{
		{protocol.AcksTopic("S1"), true},
		{protocol.InventoryTopic("S1"), true},
		{protocol.CommandsTopic("S1"), true},
		{"lanebridge/v1/S1/down/+", true},
		{protocol.AcksTopic("S2"), false},
		{"lanebridge/v1/S2/down/+", false},
		{"lanebridge/v1/+/down/acks", false},
		{"lanebridge/v1/+/down/+", false},
		{"lanebridge/v1/S1/#", false},
		{"lanebridge/v1/#", false},
		{"#", false},
		{"+/+/+/+/+", false},
		{"$SYS/#", false},
		{"$share/g/" + protocol.AcksTopic("S1"), false},
		{"$share/g/lanebridge/v1/+/down/acks", false},
		{protocol.RecordsTopic("S2"), false},
		{protocol.AllRecordsFilter, false},
	}
	for _, tt := range tests {
		tok := c1.Subscribe(tt.filter, 1, s1.pahoHandler)
		if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("subscribe %q: %v", tt.filter, tok.Error())
		}
		// paho keys results by the filter without a $share/{group}/ prefix: take the only one.
		res := tok.(*paho.SubscribeToken).Result()
		if len(res) != 1 {
			t.Fatalf("subscribe %q: results %v", tt.filter, res)
		}
		var code byte
		for _, code = range res {
		}
		if granted := code != 0x80; granted != tt.ok {
			t.Errorf("SUBACK for %q = %#x, want granted=%v", tt.filter, code, tt.ok)
		}
	}

	// S2 and the hub publish to S2's and others' topics; then the hub acks S1. S1 must
	// receive only its own messages.
	c2 := connect(t, b, "S2")
	s2 := &inbox{}
	c2.Subscribe(protocol.AcksTopic("S2"), 1, s2.pahoHandler).WaitTimeout(waitFor)
	publish(t, c2, protocol.RecordsTopic("S2"), 1, []byte("s2-records"))
	publish(t, c2, protocol.StatusTopic("S2"), 1, []byte("s2-status"))
	for _, topic := range []string{protocol.AcksTopic("S2"), protocol.CommandsTopic("S2"), "lanebridge/v1/S1/down/other", "$SYS/x"} {
		if err := b.Publish(topic, []byte("hub:"+topic), false, 1); err != nil {
			t.Fatalf("Publish %s: %v", topic, err)
		}
	}
	if err := b.Publish(protocol.AcksTopic("S1"), []byte("ack-s1"), false, 1); err != nil {
		t.Fatal(err)
	}
	got := s1.waitPayload(t, "ack-s1")
	s2.waitPayload(t, "hub:"+protocol.AcksTopic("S2")) // control: S2 gets its own ack
	for _, m := range got {
		if m.topic != protocol.AcksTopic("S1") {
			t.Errorf("S1 received %v", m)
		}
	}
}

func TestLargeBatchAndPacketLimit(t *testing.T) {
	b := startBroker(t, fakeAuth{passwords: testStores}, nil)
	records := &inbox{}
	if err := b.Subscribe(protocol.AllRecordsFilter, 1, records.add); err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 1)
	c1 := connect(t, b, "S1", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	})

	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	big[0] = 'B'
	if tok := publish(t, c1, protocol.RecordsTopic("S1"), 1, big); tok.Error() != nil {
		t.Fatalf("publish 1 MiB: %v", tok.Error())
	}
	got := records.waitPayload(t, string(big))
	if len(got) != 1 || !bytes.Equal(got[0].payload, big) {
		t.Fatalf("1 MiB batch not delivered intact")
	}

	tooBig := make([]byte, MaxPacketSize)
	c1.Publish(protocol.RecordsTopic("S1"), 1, false, tooBig)
	select {
	case <-lost:
	case <-time.After(waitFor):
		t.Fatal("connection kept after a packet over MaxPacketSize")
	}
	if n := len(records.all()); n != 1 {
		t.Errorf("records subscriber got %d messages, want 1", n)
	}
}

func TestQueuedForOfflineStore(t *testing.T) {
	b := startBroker(t, fakeAuth{passwords: testStores}, nil)
	persistent := func(o *paho.ClientOptions) { o.SetCleanSession(false) }

	c, err := connectErr(b.Addr(), "S1", "S1", "pw1", persistent)
	if err != nil {
		t.Fatal(err)
	}
	if tok := c.Subscribe(protocol.AcksTopic("S1"), 1, nil); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	c.Disconnect(50)

	if err := b.Publish(protocol.AcksTopic("S1"), []byte("queued-ack"), false, 1); err != nil {
		t.Fatal(err)
	}
	cl, ok := b.srv.Clients.Get("S1")
	if !ok {
		t.Fatal("session of S1 gone after disconnect")
	}
	queued := cl.State.Inflight.GetAll(false)
	if len(queued) != 1 {
		t.Fatalf("%d messages queued for S1, want 1", len(queued))
	}
	for _, pk := range queued {
		if ttl := time.Duration(pk.Expiry-pk.Created) * time.Second; ttl < 7*24*time.Hour {
			t.Errorf("queued message expires after %v, want at least 7 days", ttl)
		}
	}

	in := &inbox{}
	connect(t, b, "S1", persistent, func(o *paho.ClientOptions) {
		o.SetDefaultPublishHandler(in.pahoHandler)
	})
	in.waitPayload(t, "queued-ack")
}

func TestConnectTimeout(t *testing.T) {
	b, err := New(Config{Addr: "127.0.0.1:0", Auth: fakeAuth{passwords: testStores}})
	if err != nil {
		t.Fatal(err)
	}
	b.ln.connectTimeout = 200 * time.Millisecond // before Start: Serve reads it
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr() = %s, want the bound port", b.Addr())
	}
	idle, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection without CONNECT: read error %v, want EOF from the broker", err)
	}
}

func TestClose(t *testing.T) {
	b, err := New(Config{Addr: "127.0.0.1:0", Auth: fakeAuth{passwords: testStores}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 1)
	c, err := connectErr(b.Addr(), "S1", "S1", "pw1", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(50)
	// A connection still before CONNECT (30 s allowed) must not hold up Close.
	idle, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	deadline := time.Now().Add(waitFor)
	for {
		b.ln.mu.Lock()
		n := len(b.ln.conns)
		b.ln.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker tracks %d connections, want 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}

	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Close hung on a connection without CONNECT")
	}
	select {
	case <-lost:
	case <-time.After(waitFor):
		t.Error("store client still connected after Close")
	}
	_ = idle.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("pre-CONNECT connection after Close: read error %v, want EOF", err)
	}
	if err := b.Publish(protocol.AcksTopic("S1"), nil, false, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if conn, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		conn.Close()
		t.Error("broker still accepts connections after Close")
	}
}

func TestLogsHoldNoPayloadOrPassword(t *testing.T) {
	logs := &syncBuffer{}
	b := startBroker(t, fakeAuth{passwords: map[string]string{"S1": "SECRET-PW"}}, logs)
	lost := make(chan error, 1)
	c, err := connectErr(b.Addr(), "S1", "S1", "SECRET-PW", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(50)
	// A denied QoS 1 publish makes mochi log the packet it refused.
	c.Publish(protocol.RecordsTopic("S2"), 1, false, []byte("SECRET-PAYLOAD"))
	select {
	case <-lost:
	case <-time.After(waitFor):
		t.Fatal("connection kept after a denied QoS 1 publish")
	}
	_ = b.Close()
	out := logs.String()
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("expected mochi's packet log line to be redacted; logs:\n%s", out)
	}
	for _, secret := range []string{"SECRET-PW", "SECRET-PAYLOAD", "SECRET"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
}

func BenchmarkInlineIngest(b *testing.B) {
	br := startBroker(b, fakeAuth{passwords: testStores}, nil)
	got := make(chan struct{}, 1024)
	if err := br.Subscribe(protocol.AllRecordsFilter, 1, func(string, []byte) { got <- struct{}{} }); err != nil {
		b.Fatal(err)
	}
	c := connect(b, br, "S1")
	payload := bytes.Repeat([]byte("x"), 16<<10)
	topic := protocol.RecordsTopic("S1")
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for range b.N {
		tok := c.Publish(topic, 1, false, payload)
		if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			b.Fatalf("publish: %v", tok.Error())
		}
		<-got
	}
}

// TestMaxClientsConfigurable: the connection cap is Config.MaxClients (a client beyond it is
// refused at CONNECT), the default is far above 50,000 stores, and a negative cap is an error.
func TestMaxClientsConfigurable(t *testing.T) {
	if DefaultMaxClients < 50_000 {
		t.Fatalf("DefaultMaxClients = %d, want >= 50000", DefaultMaxClients)
	}
	if c := capabilities(DefaultMaxClients); c.MaximumClients != DefaultMaxClients {
		t.Fatalf("MaximumClients = %d, want %d", c.MaximumClients, DefaultMaxClients)
	}
	if _, err := New(Config{Addr: "127.0.0.1:0", Auth: fakeAuth{passwords: testStores}, MaxClients: -1}); err == nil || !strings.Contains(err.Error(), "MaxClients") {
		t.Fatalf("New(MaxClients -1) = %v, want an error naming MaxClients", err)
	}
	b := startBrokerCfg(t, Config{Auth: fakeAuth{passwords: testStores}, MaxClients: 1}, nil)
	connect(t, b, "S1")
	c, err := connectErr(b.Addr(), "S2", "S2", testStores["S2"])
	if err == nil {
		c.Disconnect(50)
		t.Fatal("a second client connected past MaxClients 1")
	}
}
