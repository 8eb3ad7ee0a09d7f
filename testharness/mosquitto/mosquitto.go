// Package mosquitto runs a private Mosquitto broker (Debian's /usr/sbin/mosquitto) on a free
// loopback port for tests: anonymous, or locked down with the files `lanebridge-hub export
// mosquitto` writes. It can be stopped, started again and reloaded (SIGHUP) mid-test.
package mosquitto

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Broker is a running (or stopped) private Mosquitto.
type Broker struct {
	Addr string // 127.0.0.1:port
	URL  string // tcp://127.0.0.1:port
	Log  string // its stdout and stderr

	bin, conf string
	cmd       *exec.Cmd
	done      chan struct{}
}

// Start starts Mosquitto with its config, log and state in dir. With exportDir "" it allows
// anonymous clients (the open broker an attack test compares against); otherwise it uses
// exportDir's lanebridge.conf (allow_anonymous false, password_file, acl_file). A missing
// mosquitto binary fails the test; callers skip under -short themselves.
func Start(t testing.TB, dir, exportDir string) *Broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal("mosquitto is not installed (apt-get install mosquitto); this test needs a real broker")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	b := &Broker{Addr: addr, URL: "tcp://" + addr, Log: filepath.Join(dir, "mosquitto.out"), bin: bin, conf: filepath.Join(dir, "mosquitto.conf")}
	conf := fmt.Sprintf("listener %s 127.0.0.1\npersistence false\nmax_queued_messages 100000\n", port)
	if os.Geteuid() == 0 {
		// Mosquitto started as root drops to user mosquitto, which cannot read a test's
		// temporary directory; stay root (a real install gives the files to its group).
		conf += "user root\n"
	}
	if exportDir == "" {
		conf += "allow_anonymous true\n"
	} else {
		snippet, err := os.ReadFile(filepath.Join(exportDir, "lanebridge.conf"))
		if err != nil {
			t.Fatalf("exported Mosquitto config: %v", err)
		}
		conf += string(snippet)
	}
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Start(t)
	t.Cleanup(b.Kill)
	return b
}

// Start starts the broker again after Stop and waits until it listens.
func (b *Broker) Start(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(b.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	b.cmd, b.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", b.Addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(b.Log)
			t.Fatalf("mosquitto exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s after 10s: %v", b.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the broker (SIGINT) and waits for it to exit.
func (b *Broker) Stop() {
	b.cmd.Process.Signal(os.Interrupt)
	<-b.done
}

// Reload makes Mosquitto re-read its password file and ACL (SIGHUP), as `systemctl reload
// mosquitto` does. Mosquitto logs nothing reliable to wait on, so callers poll for the effect.
func (b *Broker) Reload(t testing.TB) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("reload mosquitto: %v", err)
	}
}

// Kill SIGKILLs the broker (a crash: with persistence off, whatever it had queued is gone)
// and waits for it to exit; Start brings it back.
func (b *Broker) Kill() {
	select {
	case <-b.done:
	default:
		b.cmd.Process.Kill()
		<-b.done
	}
}
