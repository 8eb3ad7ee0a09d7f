package extbroker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/lanebridge/lanebridge/testharness/syncbuf"
)

// These tests run against a real Mosquitto (testharness/services.sh starts one).

func brokerURL() string {
	if u := os.Getenv("LANEBRIDGE_TEST_MQTT_URL"); u != "" {
		return u
	}
	return "tcp://127.0.0.1:1883"
}

// brokerAddr returns host:port of the test broker, failing the test when it does not answer.
func brokerAddr(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Mosquitto on 127.0.0.1:1883 (or LANEBRIDGE_TEST_MQTT_URL)")
	}
	u, err := url.Parse(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		t.Fatalf("Mosquitto unreachable at %s (set LANEBRIDGE_TEST_MQTT_URL or use -short): %v", u.Host, err)
	}
	c.Close()
	return u.Host
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inbox collects what a Handler receives.
type inbox struct {
	mu  sync.Mutex
	got map[string][]string // topic -> payloads
	n   int
}

func (b *inbox) handle(topic string, payload []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.got == nil {
		b.got = map[string][]string{}
	}
	b.got[topic] = append(b.got[topic], string(payload))
	b.n++
}

func (b *inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// running starts c.Run and returns a stop function that cancels it and fails the test unless
// Run returns nil promptly.
func running(t *testing.T, c *Client) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return within 5s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// peer is a plain MQTT client standing in for agents.
func peer(t *testing.T, addr string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("extbroker-test-%08x", rand.Uint32()))
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("peer connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func newClient(t *testing.T, url, group, prefix string, b *inbox) *Client {
	t.Helper()
	c, err := New(Config{URL: url, ClientID: fmt.Sprintf("extbroker-test-%08x", rand.Uint32()), SharedGroup: group, Filters: map[string]byte{prefix + "/+/up": 1},
		Handler: b.handle, RetryInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSharedSubscription: two clients of one group connect, subscribe in the shared group and
// get each message once between them; a client publishes to the broker.
func TestSharedSubscription(t *testing.T) {
	addr := brokerAddr(t)
	prefix := fmt.Sprintf("lbtest-%08x", rand.Uint32())
	group := "g" + prefix
	var a, b inbox
	ca, cb := newClient(t, brokerURL(), group, prefix, &a), newClient(t, brokerURL(), group, prefix, &b)
	running(t, ca)
	running(t, cb)
	waitFor(t, 10*time.Second, "both clients connected", func() bool { return ca.Healthy() == nil && cb.Healthy() == nil })

	p := peer(t, addr)
	// The subscriptions are made just after connecting: publish until both clients hear.
	probe := 0
	waitFor(t, 10*time.Second, "both subscribed", func() bool {
		probe++
		p.Publish(fmt.Sprintf("%s/probe%d/up", prefix, probe), 1, false, "probe").WaitTimeout(time.Second)
		time.Sleep(50 * time.Millisecond)
		return a.count() > 0 && b.count() > 0
	})
	before := a.count() + b.count()
	if before > probe {
		t.Fatalf("%d probes delivered %d times: not a shared subscription", probe, before)
	}
	const n = 40
	for i := range n {
		if tok := p.Publish(fmt.Sprintf("%s/S%03d/up", prefix, i), 1, false, fmt.Sprint(i)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	waitFor(t, 10*time.Second, "every message", func() bool { return a.count()+b.count() >= before+n })
	time.Sleep(200 * time.Millisecond) // a second copy would arrive by now
	if got := a.count() + b.count() - before; got != n {
		t.Fatalf("%d messages received for %d published: each must reach one client of the group", got, n)
	}

	// Publish reaches subscribers of the broker.
	down := make(chan string, 1)
	topic := prefix + "/S001/down"
	if tok := p.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { down <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("peer subscribe: %v", tok.Error())
	}
	if err := ca.Publish(topic, []byte("ack")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-down:
		if got != "ack" {
			t.Fatalf("peer got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("published message not received")
	}
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// forward listens on addr and relays each connection to target, standing in for a broker that
// comes up late.
func forward(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
}

// TestBrokerDownAtStart: the client keeps trying while no broker listens, connects and
// subscribes once one does, and returns on cancel.
func TestBrokerDownAtStart(t *testing.T) {
	target := brokerAddr(t)
	addr := freePort(t)
	prefix := fmt.Sprintf("lbtest-%08x", rand.Uint32())
	var b inbox
	c := newClient(t, "tcp://"+addr, "g"+prefix, prefix, &b)
	stop := running(t, c)
	time.Sleep(500 * time.Millisecond)
	if c.Healthy() == nil {
		t.Fatal("healthy with no broker listening")
	}
	if err := c.Publish(prefix+"/x/down", []byte("x")); err == nil {
		t.Fatal("Publish succeeded with no broker")
	}
	forward(t, addr, target)
	waitFor(t, 10*time.Second, "connected after the broker came up", func() bool { return c.Healthy() == nil })
	p := peer(t, target)
	waitFor(t, 10*time.Second, "message received", func() bool {
		p.Publish(prefix+"/S001/up", 1, false, "late").WaitTimeout(time.Second)
		time.Sleep(50 * time.Millisecond)
		return b.count() > 0
	})
	stop()
	if c.Healthy() == nil {
		t.Fatal("still connected after Run returned")
	}
}

// TestCancelWhileBrokerDown: Run returns promptly on cancel while it is still trying to connect.
func TestCancelWhileBrokerDown(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for connection retries")
	}
	var b inbox
	c := newClient(t, "tcp://"+freePort(t), "g", "lbtest", &b)
	stop := running(t, c)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Run took %v to return after cancel", d)
	}
}

func TestNewRequires(t *testing.T) {
	h := func(string, []byte) {}
	f := map[string]byte{"a/#": 1}
	for name, cfg := range map[string]Config{
		"url":     {SharedGroup: "g", Filters: f, Handler: h},
		"group":   {URL: "tcp://x:1", Filters: f, Handler: h},
		"filters": {URL: "tcp://x:1", SharedGroup: "g", Handler: h},
		"handler": {URL: "tcp://x:1", SharedGroup: "g", Filters: f},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New without %s succeeded", name)
		}
	}
}

// logBuffer is an slog handler's output, safe to read while the client writes.
type logBuffer struct{ syncbuf.Buffer }

// lines returns the log lines containing s.
func (b *logBuffer) lines(s string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// mosquitto runs a private Mosquitto on addr until stop is called or the test ends. With
// allowSubscribe false its dynamic-security plugin refuses every SUBSCRIBE (SUBACK 0x80);
// Mosquitto's acl_file cannot do that: it checks subscriptions only when delivering.
func mosquitto(t *testing.T, addr string, allowSubscribe bool) (stop func()) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a private Mosquitto")
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("mosquitto not installed")
	}
	const plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
	if _, err := os.Stat(plugin); err != nil {
		t.Skipf("mosquitto dynamic-security plugin missing: %v", err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	// Mosquitto started as root drops to the mosquitto user: it must be able to read its files.
	// (t.TempDir's parent is private to the test user).
	dir, err := os.MkdirTemp("", "extbroker-mosquitto-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dynsec := filepath.Join(dir, "dynsec.json")
	acl := fmt.Sprintf(`{"defaultACLAccess":{"publishClientSend":true,"publishClientReceive":true,"subscribe":%t,"unsubscribe":true},"clients":[],"groups":[],"roles":[]}`, allowSubscribe)
	conf := filepath.Join(dir, "mosquitto.conf")
	for name, text := range map[string]string{
		dynsec: acl,
		conf: fmt.Sprintf("listener %s %s\nallow_anonymous true\npersistence false\nlog_dest stderr\nplugin %s\nplugin_opt_config_file %s\n",
			port, host, plugin, dynsec),
	} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out logBuffer
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("mosquitto on %s:\n%s", addr, out.String())
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return stop
		}
		select {
		case <-exited:
			t.Fatalf("mosquitto exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSubscriptionRefused: a broker that refuses the shared subscription (SUBACK 0x80) leaves
// the client unhealthy, naming the refused filter, and logs it; once a broker grants it (here
// after a restart with an allowing ACL) the client recovers and receives messages.
func TestSubscriptionRefused(t *testing.T) {
	addr := freePort(t)
	stopBroker := mosquitto(t, addr, false)
	prefix := fmt.Sprintf("lbtest-%08x", rand.Uint32())
	var b inbox
	var logs logBuffer
	c, err := New(Config{URL: "tcp://" + addr, SharedGroup: "g" + prefix, Filters: map[string]byte{prefix + "/+/up": 1},
		Handler: b.handle, RetryInterval: 50 * time.Millisecond, MaxReconnectInterval: 200 * time.Millisecond, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	running(t, c)
	filter := "$share/g" + prefix + "/" + prefix + "/+/up"
	waitFor(t, 10*time.Second, "a refusal", func() bool { return len(logs.lines("refused")) > 0 })
	time.Sleep(500 * time.Millisecond) // several retries, all refused
	err = c.Healthy()
	if err == nil || !strings.Contains(err.Error(), "not subscribed: broker refused "+filter) {
		t.Fatalf("Healthy() = %v, want the refusal of %s", err, filter)
	}
	if l := logs.lines("external broker refused subscription"); len(l) != 1 || !strings.Contains(l[0], filter) || !strings.Contains(l[0], "ACL") {
		t.Fatalf("want one log line naming %s and the cause, got %q", filter, l)
	}

	stopBroker()
	waitFor(t, 10*time.Second, "unhealthy while the broker is down", func() bool {
		err := c.Healthy()
		return err != nil && strings.Contains(err.Error(), "not connected")
	})
	mosquitto(t, addr, true)
	waitFor(t, 10*time.Second, "healthy with the subscription granted", func() bool { return c.Healthy() == nil })
	p := peer(t, addr)
	waitFor(t, 10*time.Second, "message received", func() bool {
		p.Publish(prefix+"/S001/up", 1, false, "x").WaitTimeout(time.Second)
		time.Sleep(50 * time.Millisecond)
		return b.count() > 0
	})
}

// TestConnectFailureLogged: refused connections are logged (the first, then rate-limited),
// with the password redacted, and Healthy gives the error.
func TestConnectFailureLogged(t *testing.T) {
	addr := freePort(t)
	var logs logBuffer
	var b inbox
	c, err := New(Config{URL: "tcp://hub:s3cret@" + addr, SharedGroup: "g", Filters: map[string]byte{"lbtest/+/up": 1},
		Handler: b.handle, RetryInterval: 20 * time.Millisecond, MaxReconnectInterval: 50 * time.Millisecond, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	running(t, c)
	waitFor(t, 5*time.Second, "a logged connect failure", func() bool { return len(logs.lines("cannot connect")) > 0 })
	time.Sleep(500 * time.Millisecond) // about ten more attempts, within LogInterval
	l := logs.lines("cannot connect")
	if len(l) != 1 || !strings.Contains(l[0], "connection refused") || !strings.Contains(l[0], addr) {
		t.Fatalf("want one log line naming %s and the error, got %q", addr, l)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Fatalf("password in the log:\n%s", logs.String())
	}
	err = c.Healthy()
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Healthy() = %v, want the connect error without the password", err)
	}
}
