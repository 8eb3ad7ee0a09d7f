package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer echoes every connection and returns its address.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// sinkServer counts the bytes each connection delivers before EOF and reports them on the channel.
func sinkServer(t *testing.T) (string, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { b, _ := io.ReadAll(c); c.Close(); got <- b }()
		}
	}()
	return ln.Addr().String(), got
}

func newProxy(t *testing.T, o Options) *Proxy {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg and reads the echo, failing after d.
func roundTrip(c net.Conn, msg []byte, d time.Duration) ([]byte, error) {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	return got, err
}

func TestNewRefusesNonLoopback(t *testing.T) {
	for _, o := range []Options{
		{Listen: "0.0.0.0:0", Target: "127.0.0.1:1"},
		{Listen: "127.0.0.1:0", Target: "192.0.2.1:1883"},
		{Listen: ":0", Target: "127.0.0.1:1"},
	} {
		if p, err := New(o); !errors.Is(err, ErrNotLoopback) {
			if p != nil {
				p.Close()
			}
			t.Errorf("New(%+v) = %v, want ErrNotLoopback", o, err)
		}
	}
}

func TestPassThrough(t *testing.T) {
	p := newProxy(t, Options{Target: echoServer(t)})
	c := dial(t, p)
	msg := bytes.Repeat([]byte("lanebridge "), 10000)
	got, err := roundTrip(c, msg, 5*time.Second)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through proxy: err %v, equal %v", err, bytes.Equal(got, msg))
	}
	// The counters move just after each forwarded write: the echo can arrive before the last
	// upstream chunk is counted, so wait for them briefly.
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := p.Stats()
		if st.BytesUp == int64(len(msg)) && st.BytesDown == int64(len(msg)) && st.Accepted == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %d bytes each way and 1 connection", st, len(msg))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLatencyAndJitter(t *testing.T) {
	p := newProxy(t, Options{Target: echoServer(t)})
	c := dial(t, p)
	if _, err := roundTrip(c, []byte("x"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetLatency(400*time.Millisecond, 50*time.Millisecond)
	start := time.Now()
	if _, err := roundTrip(c, []byte("y"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Both directions are delayed: at least 2×400 ms, at most 2×450 ms plus scheduling.
	if rtt := time.Since(start); rtt < 800*time.Millisecond || rtt > 4*time.Second {
		t.Fatalf("round trip %v with 400ms±50ms latency each way", rtt)
	}
	p.Clear()
	start = time.Now()
	roundTrip(c, []byte("z"), 5*time.Second)
	// Far below one delayed direction (400 ms), with room for a loaded machine.
	if rtt := time.Since(start); rtt > 400*time.Millisecond {
		t.Fatalf("round trip %v after Clear", rtt)
	}
}

func TestBandwidth(t *testing.T) {
	addr, got := sinkServer(t)
	p := newProxy(t, Options{Target: addr})
	p.SetBandwidth(100 << 10) // 100 KiB/s
	c := dial(t, p)
	start := time.Now()
	c.Write(make([]byte, 50<<10))
	c.(*net.TCPConn).CloseWrite()
	b := <-got
	if len(b) != 50<<10 {
		t.Fatalf("sink got %d bytes", len(b))
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 6*time.Second {
		t.Fatalf("50 KiB at 100 KiB/s took %v, want about 500ms", d)
	}
}

func TestCutAll(t *testing.T) {
	p := newProxy(t, Options{Target: echoServer(t)})
	c1, c2 := dial(t, p), dial(t, p)
	for _, c := range []net.Conn{c1, c2} {
		if _, err := roundTrip(c, []byte("hi"), 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.CutAll(); n != 2 {
		t.Fatalf("CutAll = %d, want 2", n)
	}
	for _, c := range []net.Conn{c1, c2} {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("read after cut: %v, want EOF", err)
		}
	}
	// The proxy still accepts new connections.
	if _, err := roundTrip(dial(t, p), []byte("again"), 2*time.Second); err != nil {
		t.Fatalf("after cut: %v", err)
	}
}

func TestCutAfterBytesMidStream(t *testing.T) {
	addr, got := sinkServer(t)
	p := newProxy(t, Options{Target: addr})
	p.CutAfter(Up, 1000)
	c := dial(t, p)
	for range 10 {
		c.Write(make([]byte, 333)) // the cut falls inside the fourth write
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case b := <-got:
		if len(b) != 1000 {
			t.Fatalf("target got %d bytes before the cut, want exactly 1000", len(b))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("target connection not closed by the cut")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("client side still open after the cut")
	}
	if p.CutArmed() || p.Stats().Cut != 1 {
		t.Fatalf("cut still armed or not counted: %+v", p.Stats())
	}
}

func TestBlackholeKeepsConnectionsOpen(t *testing.T) {
	p := newProxy(t, Options{Target: echoServer(t)})
	c := dial(t, p)
	if _, err := roundTrip(c, []byte("before"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetBlackhole(true)
	c.Write([]byte("during"))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 16)); n != 0 || !isTimeout(err) {
		t.Fatalf("read during blackhole: n=%d err=%v, want a timeout", n, err)
	}
	if st := p.Stats(); st.ActiveLinks != 1 {
		t.Fatalf("blackhole closed the connection: %+v", st)
	}
	p.SetBlackhole(false)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, 6)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "during" {
		t.Fatalf("after the blackhole lifted: %q %v, want the held bytes", got, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestDropMQTTPublishDown: whole PUBLISH packets vanish in one direction; the others arrive
// intact and the stream stays aligned.
func TestDropMQTTPublishDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	big := make([]byte, 200)
	for i := range big {
		big[i] = byte(i)
	}
	// PUBLISH with a two-byte remaining length, PUBACK, PINGRESP, PUBLISH, PUBACK.
	publish := append([]byte{0x32, 0xc8, 0x01}, big...)
	puback := []byte{0x40, 0x02, 0x00, 0x07}
	pingresp := []byte{0xd0, 0x00}
	stream := bytes.Join([][]byte{publish, puback, pingresp, publish, puback}, nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		// Write in awkward pieces so packets straddle reads.
		for i := 0; i < len(stream); i += 7 {
			c.Write(stream[i:min(i+7, len(stream))])
			time.Sleep(time.Millisecond)
		}
		c.Close()
	}()
	p := newProxy(t, Options{Target: ln.Addr().String(), MQTT: true})
	if err := p.SetDrop(Down, DropMQTTPublish); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	want := bytes.Join([][]byte{puback, pingresp, puback}, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("client got % x, want % x", got, want)
	}
	if st := p.Stats(); st.DroppedDown != 2 {
		t.Fatalf("DroppedDown = %d, want 2", st.DroppedDown)
	}
	wg.Wait()
}

func TestSetDropNeedsMQTT(t *testing.T) {
	p := newProxy(t, Options{Target: echoServer(t)})
	if err := p.SetDrop(Down, DropMQTTPublish); err == nil {
		t.Fatal("SetDrop on a raw TCP proxy succeeded")
	}
}

func TestMQTTReader(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want [][]byte
		err  error
	}{
		{"empty", nil, nil, io.EOF},
		{"pingreq", []byte{0xc0, 0x00}, [][]byte{{0xc0, 0x00}}, io.EOF},
		{"two", []byte{0x40, 0x02, 1, 2, 0xd0, 0x00}, [][]byte{{0x40, 0x02, 1, 2}, {0xd0, 0x00}}, io.EOF},
		{"truncated body", []byte{0x30, 0x05, 1, 2}, nil, io.ErrUnexpectedEOF},
		{"truncated length", []byte{0x30, 0x80}, nil, io.ErrUnexpectedEOF},
		{"five length bytes", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, nil, ErrBadPacket},
	} {
		r := &mqttReader{r: bytes.NewReader(tc.in)}
		var got [][]byte
		var err error
		for {
			var pk []byte
			if pk, err = r.next(); err != nil {
				break
			}
			got = append(got, pk)
		}
		if !errors.Is(err, tc.err) || len(got) != len(tc.want) {
			t.Errorf("%s: got %d packets, err %v; want %d, %v", tc.name, len(got), err, len(tc.want), tc.err)
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], tc.want[i]) {
				t.Errorf("%s: packet %d = % x, want % x", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}
