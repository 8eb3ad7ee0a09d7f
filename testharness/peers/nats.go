package peers

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lanebridge/lanebridge/testharness/daemon"
)

// NATSLeaf is a store-side nats-server leaf node with JetStream (domain "store", file stream
// STORE on records.>) connected to a central nats-server with JetStream (domain "hub") whose
// file stream CENTRAL sources STORE across the leaf connection: the pattern NATS documents for
// store-and-forward at the edge. Records are published with JetStream publish acks
// (PublishAsync, acks awaited); the central count is CENTRAL's message count. Both servers use
// the server defaults for sync (JetStream writes each message to its block file; it fsyncs on
// its sync_interval).
type NATSLeaf struct {
	Dir string

	store, central *server
	nc             *nats.Conn // to central, reconnecting
}

// Name implements Peer.
func (n *NATSLeaf) Name() string { return "nats" }

// Start implements Peer.
func (n *NATSLeaf) Start(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("nats-server is not installed (apt-get install nats-server); this peer needs the real server")
	}
	leafAddr := daemon.FreeAddr(t)
	n.central = newServer(t, bin, filepath.Join(n.Dir, "central"), fmt.Sprintf(
		"server_name: central\njetstream { store_dir: %q, domain: hub }\nleafnodes { listen: %q }\n",
		filepath.Join(n.Dir, "central", "js"), leafAddr))
	n.store = newServer(t, bin, filepath.Join(n.Dir, "store"), fmt.Sprintf(
		"server_name: store\njetstream { store_dir: %q, domain: store }\nleafnodes { reconnect: 1, remotes: [ { url: \"nats-leaf://%s\" } ] }\n",
		filepath.Join(n.Dir, "store", "js"), leafAddr))
	n.central.Start(t)
	n.store.Start(t)

	sc := connect(t, n.store.Addr)
	defer sc.Close()
	sjs, _ := sc.JetStream()
	if _, err := sjs.AddStream(&nats.StreamConfig{Name: "STORE", Subjects: []string{"records.>"}, Storage: nats.FileStorage}); err != nil {
		t.Fatalf("create stream STORE on the leaf: %v", err)
	}
	n.nc = connect(t, n.central.Addr)
	t.Cleanup(n.nc.Close)
	cjs, _ := n.nc.JetStream()
	if _, err := cjs.AddStream(&nats.StreamConfig{Name: "CENTRAL", Storage: nats.FileStorage,
		Sources: []*nats.StreamSource{{Name: "STORE", Domain: "store"}}}); err != nil {
		t.Fatalf("create stream CENTRAL sourcing STORE: %v", err)
	}
	// Prove the path before the outage: one probe record (seq 0, not counted) goes through.
	if _, err := sjs.Publish("records.probe", []byte(`{"seq":0}`)); err != nil {
		t.Fatalf("probe publish: %v", err)
	}
	waitFor(t, 30*time.Second, "the probe sourced into CENTRAL", func() error {
		m, err := n.msgs()
		if err == nil && m != 1 {
			err = fmt.Errorf("CENTRAL holds %d", m)
		}
		return err
	})
	n.central.Stop()
}

// Publish implements Peer.
func (n *NATSLeaf) Publish(t testing.TB, records [][]byte) {
	t.Helper()
	sc := connect(t, n.store.Addr)
	defer sc.Close()
	js, _ := sc.JetStream(nats.PublishAsyncMaxPending(4096))
	futs := make([]nats.PubAckFuture, len(records))
	for i, r := range records {
		f, err := js.PublishAsync("records.S901", r)
		if err != nil {
			t.Fatalf("publish record %d to the leaf: %v", i+1, err)
		}
		futs[i] = f
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		t.Fatalf("leaf: %d publish acks pending after 5 min", js.PublishAsyncPending())
	}
	for i, f := range futs {
		select {
		case err := <-f.Err():
			t.Fatalf("publish record %d to the leaf: %v", i+1, err)
		case <-f.Ok():
		}
	}
}

// KillStore implements Peer.
func (n *NATSLeaf) KillStore(t testing.TB) { n.store.Kill() }

// RestartStore implements Peer.
func (n *NATSLeaf) RestartStore(t testing.TB) { n.store.Start(t) }

// LinkUp implements Peer.
func (n *NATSLeaf) LinkUp(t testing.TB) { n.central.Start(t) }

// Count implements Peer: CENTRAL's message count less the probe (0 while it cannot be read).
func (n *NATSLeaf) Count(t testing.TB) int {
	m, err := n.msgs()
	if err != nil || m == 0 {
		return 0
	}
	return m - 1
}

// msgs is CENTRAL's message count, the probe included.
func (n *NATSLeaf) msgs() (int, error) {
	js, _ := n.nc.JetStream(nats.MaxWait(2 * time.Second))
	si, err := js.StreamInfo("CENTRAL")
	if err != nil {
		return 0, err
	}
	return int(si.State.Msgs), nil
}

// Distinct implements Peer: it reads CENTRAL from the start with an ordered consumer.
func (n *NATSLeaf) Distinct(t testing.TB) int {
	t.Helper()
	total, err := n.msgs()
	if err != nil {
		t.Fatalf("read CENTRAL: %v", err)
	}
	js, _ := n.nc.JetStream()
	sub, err := js.SubscribeSync("", nats.BindStream("CENTRAL"), nats.OrderedConsumer(), nats.DeliverAll())
	if err != nil {
		t.Fatalf("read CENTRAL: %v", err)
	}
	defer sub.Unsubscribe()
	c := newTally()
	for i := 0; i < total; i++ {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("read CENTRAL message %d of %d: %v", i+1, total, err)
		}
		if s, _ := seqOf(m.Data); s > 0 {
			c.add(m.Data)
		}
	}
	_, d := c.counts()
	return d
}

// Stop implements Peer.
func (n *NATSLeaf) Stop(testing.TB) {
	n.nc.Close()
	n.store.Stop()
	n.central.Stop()
}

func connect(t testing.TB, addr string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("nats://"+addr, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("connect to nats %s: %v", addr, err)
	}
	waitFor(t, 10*time.Second, "nats connected to "+addr, func() error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})
	return nc
}

// server is a private nats-server with its config and log in dir.
type server struct {
	*daemon.Process
}

func newServer(t testing.TB, bin, dir, conf string) *server {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr, path := daemon.FreeAddr(t), filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("listen: %q\n%s", addr, conf)), 0o644); err != nil {
		t.Fatal(err)
	}
	return &server{&daemon.Process{Name: "nats-server", Bin: bin, Args: []string{"-c", path}, Addr: addr, Log: filepath.Join(dir, "nats.out")}}
}
