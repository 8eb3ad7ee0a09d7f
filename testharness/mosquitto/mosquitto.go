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

	"github.com/lanebridge/lanebridge/testharness/daemon"
)

// Broker is a running (or stopped) private Mosquitto.
type Broker struct {
	Addr string // 127.0.0.1:port
	URL  string // tcp://127.0.0.1:port
	Log  string // its stdout and stderr

	p *daemon.Process
}

// Start starts Mosquitto with its config, log and state in dir. With exportDir "" it allows
// anonymous clients (the open broker an attack test compares against); otherwise it uses
// exportDir's lanebridge.conf (allow_anonymous false, password_file, acl_file). A missing
// mosquitto binary fails the test; callers skip under -short themselves.
func Start(t testing.TB, dir, exportDir string) *Broker {
	t.Helper()
	conf := "persistence false\nmax_queued_messages 100000\n"
	if exportDir == "" {
		conf += "allow_anonymous true\n"
	} else {
		snippet, err := os.ReadFile(filepath.Join(exportDir, "lanebridge.conf"))
		if err != nil {
			t.Fatalf("exported Mosquitto config: %v", err)
		}
		conf += string(snippet)
	}
	return StartConf(t, dir, "", conf)
}

// StartConf starts Mosquitto listening on addr (127.0.0.1:port; "" picks a free port) with
// conf as the rest of its configuration (persistence, bridges, ...), its files in dir.
func StartConf(t testing.TB, dir, addr, conf string) *Broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal("mosquitto is not installed (apt-get install mosquitto); this test needs a real broker")
	}
	if addr == "" {
		addr = daemon.FreeAddr(t)
	}
	_, port, _ := net.SplitHostPort(addr)
	confPath := filepath.Join(dir, "mosquitto.conf")
	b := &Broker{Addr: addr, URL: "tcp://" + addr, Log: filepath.Join(dir, "mosquitto.out")}
	b.p = &daemon.Process{Name: "mosquitto", Bin: bin, Args: []string{"-c", confPath}, Addr: addr, Log: b.Log}
	head := fmt.Sprintf("listener %s 127.0.0.1\n", port)
	if os.Geteuid() == 0 {
		// Mosquitto started as root drops to user mosquitto, which cannot read a test's
		// temporary directory; stay root (a real install gives the files to its group).
		head += "user root\n"
	}
	if err := os.WriteFile(confPath, []byte(head+conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Start(t)
	return b
}

// Start starts the broker again after Stop or Kill and waits until it listens.
func (b *Broker) Start(t testing.TB) { t.Helper(); b.p.Start(t) }

// Stop stops the broker (SIGINT) and waits for it to exit.
func (b *Broker) Stop() { b.p.Stop() }

// Reload makes Mosquitto re-read its password file and ACL (SIGHUP), as `systemctl reload
// mosquitto` does. Mosquitto logs nothing reliable to wait on, so callers poll for the effect.
func (b *Broker) Reload(t testing.TB) {
	t.Helper()
	if err := b.p.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("reload mosquitto: %v", err)
	}
}

// Kill kills the broker (SIGKILL: no shutdown save) and waits for it to exit; Start runs it
// again. Killing a stopped broker does nothing.
func (b *Broker) Kill() { b.p.Kill() }
