package broker

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
)

// countingAuth counts the Authenticator calls.
type countingAuth struct {
	fakeAuth
	calls atomic.Int64
}

func (a *countingAuth) CheckStore(ctx context.Context, store, password string) (bool, error) {
	a.calls.Add(1)
	return a.fakeAuth.CheckStore(ctx, store, password)
}

// fromAddr makes the client connect from another loopback address.
func fromAddr(ip string) clientOpt {
	return func(o *paho.ClientOptions) {
		o.SetDialer(&net.Dialer{Timeout: waitFor, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}})
	}
}

// TestLoginThrottle: after the free failures from one address, its further CONNECTs are
// refused without calling the Authenticator, even with the right password, and logged once;
// other addresses are not affected.
func TestLoginThrottle(t *testing.T) {
	logs := &syncBuffer{}
	auth := &countingAuth{fakeAuth: fakeAuth{passwords: testStores}}
	b := startBrokerCfg(t, Config{Auth: auth, LoginFreeFailures: 3, LoginBackoff: time.Minute}, logs)
	try := func(pw string, opts ...clientOpt) error {
		c, err := connectErr(b.Addr(), "S1", "S1", pw, opts...)
		c.Disconnect(10)
		return err
	}
	if err := try("pw1"); err != nil {
		t.Fatalf("right password before any failure: %v", err)
	}
	for i := range 4 {
		if err := try("wrong"); err == nil {
			t.Fatalf("wrong password %d accepted", i)
		}
	}
	calls := auth.calls.Load()
	if calls != 5 {
		t.Fatalf("authenticator called %d times, want 5 (1 right + 4 wrong)", calls)
	}
	for range 3 {
		if err := try("pw1"); err == nil {
			t.Fatal("right password accepted from a throttled address")
		}
	}
	if got := auth.calls.Load(); got != calls {
		t.Fatalf("authenticator called %d more times while the address was throttled", got-calls)
	}
	if n := strings.Count(logs.String(), "mqtt logins from this address throttled"); n != 1 {
		t.Fatalf("throttle logged %d times, want once per window:\n%s", n, logs)
	}
	if err := try("pw1", fromAddr("127.0.0.2")); err != nil {
		t.Fatalf("another address is throttled too: %v", err)
	}
}

// TestThrottleWindows: the window doubles per further failure up to the cap, ends on time, and
// a success forgets the address.
func TestThrottleWindows(t *testing.T) {
	th := newThrottle(2, time.Second)
	t0 := time.Unix(1000, 0)
	for range 2 {
		th.fail("a", t0)
	}
	if c, _, _ := th.closed("a", t0); c {
		t.Fatal("closed within the free failures")
	}
	th.fail("a", t0)
	if c, first, _ := th.closed("a", t0.Add(999*time.Millisecond)); !c || !first {
		t.Fatalf("closed = %v, first = %v; want closed, first refusal", c, first)
	}
	if _, first, _ := th.closed("a", t0.Add(999*time.Millisecond)); first {
		t.Fatal("second refusal in a window is reported as first")
	}
	t1 := t0.Add(time.Second)
	if c, _, _ := th.closed("a", t1); c {
		t.Fatal("still closed after the 1s window")
	}
	th.fail("a", t1)
	if c, _, _ := th.closed("a", t1.Add(1999*time.Millisecond)); !c {
		t.Fatal("second window did not double")
	}
	for range 30 {
		th.fail("a", t1)
	}
	if _, _, f := th.closed("a", t1); f.until.Sub(t1) != maxLoginBackoff {
		t.Fatalf("window %v, want the cap %v", f.until.Sub(t1), maxLoginBackoff)
	}
	th.ok("a")
	if c, _, _ := th.closed("a", t1); c {
		t.Fatal("closed after a success")
	}
}

// TestLogsCapClientStrings: a 60 KiB topic name from a client appears cut in the broker's log.
func TestLogsCapClientStrings(t *testing.T) {
	logs := &syncBuffer{}
	b := startBroker(t, fakeAuth{passwords: testStores}, logs)
	c := connect(t, b, "S1")
	long := protocol.TopicRoot + "/S2/" + strings.Repeat("x", 60<<10)
	c.Publish(long, 0, false, []byte("p")).WaitTimeout(waitFor)
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(logs.String(), "mqtt topic denied") {
		if time.Now().After(deadline) {
			t.Fatalf("no denial logged:\n%.2000s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = b.Close()
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 4096 { // the topic alone is 60 KiB
			t.Fatalf("log line of %d bytes: %.300s…", len(line), line)
		}
	}
	if !strings.Contains(logs.String(), "bytes cut]") {
		t.Fatalf("no cut marker in logs:\n%.3000s", logs)
	}
}
