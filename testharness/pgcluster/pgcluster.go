// Package pgcluster runs a private PostgreSQL 15 cluster for tests that stop, crash or
// reconfigure the server: initdb into a temporary directory, its own port on 127.0.0.1, trust
// authentication, never the shared server on 5432. As root, the server runs as the postgres
// user (PostgreSQL refuses to run as root).
package pgcluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BinDir is where Debian installs PostgreSQL 15's server programs.
const BinDir = "/usr/lib/postgresql/15/bin"

// Cluster is a private PostgreSQL cluster.
type Cluster struct {
	Port int
	URL  string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	Log  string // the server's log file

	dir, data string
	settings  []string // -c name=value for every start
	cred      *syscall.Credential
}

// Available reports whether PostgreSQL 15's server programs are installed.
func Available() bool {
	_, err := os.Stat(filepath.Join(BinDir, "initdb"))
	return err == nil
}

// Start initialises a cluster in a new temporary directory (removed by the test's cleanup)
// and starts it with settings ("fsync=off", …) as -c options.
func Start(t testing.TB, settings ...string) *Cluster {
	t.Helper()
	if !Available() {
		msg := fmt.Sprintf("PostgreSQL 15 server programs not found in %s (apt-get install postgresql-15)", BinDir)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "lanebridge-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: dir, data: filepath.Join(dir, "data"), Log: filepath.Join(dir, "server.log"), settings: settings}
	t.Cleanup(func() {
		c.run("pg_ctl", "-D", c.data, "stop", "-m", "immediate", "-w")
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user to own the cluster: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := c.run("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
	c.Start(t)
	return c
}

func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(BinDir, prog), args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// Start starts the (stopped) server and waits until it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	opts := []string{"-p", strconv.Itoa(c.Port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + c.dir, "-c", "max_connections=200"}
	for _, s := range c.settings {
		opts = append(opts, "-c", s)
	}
	if out, err := c.run("pg_ctl", "-D", c.data, "-l", c.Log, "-o", strings.Join(opts, " "), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(c.Log)
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if out, err := c.run("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port)); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("private PostgreSQL not ready: %v: %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stopped reports whether the server is not running (pg_ctl status).
func (c *Cluster) Stopped() bool {
	_, err := c.run("pg_ctl", "-D", c.data, "status")
	return err != nil
}

// Crash stops the server the way a crash does: immediate shutdown, no checkpoint; the next
// Start runs crash recovery from the WAL.
func (c *Cluster) Crash(t testing.TB) {
	t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data, "stop", "-m", "immediate", "-w"); err != nil {
		t.Fatalf("pg_ctl stop -m immediate: %v\n%s", err, out)
	}
}

// Restart stops the server cleanly (fast shutdown) and starts it with settings instead of
// the ones it ran with.
func (c *Cluster) Restart(t testing.TB, settings ...string) {
	t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data, "stop", "-m", "fast", "-w"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
	c.settings = settings
	c.Start(t)
}
