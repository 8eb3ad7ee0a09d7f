package uplink_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/agent/internal/uplink"
	"github.com/lanebridge/lanebridge/testharness/syncbuf"
)

// rejectAll is a broker auth hook that refuses every password, as the hub does a wrong one.
type rejectAll struct{ mochi.HookBase }

func (rejectAll) ID() string                                               { return "reject-all" }
func (rejectAll) Provides(b byte) bool                                     { return b == mochi.OnConnectAuthenticate }
func (rejectAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return false }

type lockedBuf = syncbuf.Buffer

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A hub the agent cannot reach is logged at warn level once, naming the reason, while the
// failures go on (counted), and the last one is there for status.
func TestConnectFailureReported(t *testing.T) {
	badPW := freePort(t)
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(rejectAll), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: badPW})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	tests := []struct{ name, addr, reason string }{
		{"wrong password", badPW, "not authorized"}, // what mochi (the hub's embedded broker) answers,
		{"refused port", freePort(t), "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{Store: "S1"})
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			var logs lockedBuf
			fwd, err := uplink.New(uplink.Config{
				Store: "S1", Broker: "tcp://" + tt.addr, Username: "S1", Password: "wrong",
				ConnectRetry: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			}, sp)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- fwd.Run(ctx) }()
			deadline := time.Now().Add(10 * time.Second)
			for fwd.C.ConnectFailures.Load() < 4 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := fwd.C.ConnectFailures.Load(); n < 4 {
				t.Fatalf("%d connect failures, want several", n)
			}
			var warns []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "level=WARN") {
					warns = append(warns, l)
				}
			}
			if len(warns) != 1 || !strings.Contains(warns[0], `reason="`+tt.reason+`"`) || !strings.Contains(warns[0], "failures=1") {
				t.Fatalf("want one warning naming %q, got:\n%s", tt.reason, strings.Join(warns, "\n"))
			}
			ce := fwd.C.LastConnectError()
			if ce == nil || ce.Reason != tt.reason || ce.Err == "" || ce.At.IsZero() {
				t.Fatalf("LastConnectError = %+v, want reason %q", ce, tt.reason)
			}
		})
	}
}
