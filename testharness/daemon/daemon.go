// Package daemon runs a server binary (mosquitto, nats-server, ...) as a private child process
// for tests: started on a loopback port chosen with [FreeAddr], ready once it accepts TCP
// connections there, stopped cleanly or killed, and started again on the same files.
package daemon

import (
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Process is one server process; Start may be called again after Stop or Kill. Its methods
// are not safe for concurrent use.
type Process struct {
	Name string   // for messages: "mosquitto"
	Bin  string   // the executable
	Args []string // its arguments
	Addr string   // host:port it listens on once ready
	Log  string   // file its stdout and stderr are appended to

	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts the process and waits up to 20 s until Addr accepts connections; it fails the
// test, with the log, if the process exits first. The first Start registers a cleanup that
// kills the process.
func (p *Process) Start(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.Name, err)
	}
	if p.cmd == nil {
		t.Cleanup(p.Kill)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", p.Addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(p.Log)
			t.Fatalf("%s exited at start:\n%s", p.Name, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after 20s: %v", p.Name, p.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop asks the process to shut down cleanly (SIGINT) and waits for it to exit.
func (p *Process) Stop() {
	if p.Running() {
		p.cmd.Process.Signal(os.Interrupt)
		<-p.done
	}
}

// Kill kills the process (SIGKILL: no shutdown work) and waits for it to exit. Killing a
// stopped process does nothing.
func (p *Process) Kill() {
	if p.Running() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Signal sends sig to the running process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Running reports whether the process has been started and has not exited.
func (p *Process) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
