package app

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kardianos/service"
)

// fakeService records what serviceControl asks of the service system; nothing is installed.
type fakeService struct {
	service.Service
	calls  []string
	status service.Status
	err    error
}

func (f *fakeService) Install() error { f.calls = append(f.calls, "install"); return nil }
func (f *fakeService) Status() (service.Status, error) {
	f.calls = append(f.calls, "status")
	return f.status, f.err
}

// TestServiceInstallSupervision: on systemd install prepares the user and installs; elsewhere it
// refuses, naming what it would write and what the agent would lack, unless --force.
func TestServiceInstallSupervision(t *testing.T) {
	for _, tc := range []struct {
		system    string
		force     bool
		installed bool
		want      []string // in the error (refused) or the output
	}{
		{"linux-systemd", false, true, []string{"service install: done (linux-systemd)"}},
		{"unix-systemv", false, false, []string{"refused", "/etc/init.d/lanebridge-agent (unix-systemv)", "no automatic restart after a crash", "no start-limit handling", "no sandboxing", "--force"}},
		{"linux-upstart", false, false, []string{"refused", "/etc/init/lanebridge-agent.conf", "no automatic restart"}},
		{"linux-openrc", true, true, []string{"warning: ", "/etc/init.d/lanebridge-agent (linux-openrc)", "no automatic restart after a crash", "service install: done (linux-openrc)"}},
		{"windows-service", false, true, []string{"done (windows-service)"}},
	} {
		t.Run(fmt.Sprintf("%s force %v", tc.system, tc.force), func(t *testing.T) {
			f := &fakeService{}
			prepared := false
			var out bytes.Buffer
			err := serviceControl(serviceCtl{Service: f, system: tc.system, prepare: func() error { prepared = true; return nil }}, "install", tc.force, &out)
			got := out.String()
			if err != nil {
				got += err.Error()
			}
			if (err == nil) != tc.installed || (len(f.calls) == 1) != tc.installed {
				t.Fatalf("err %v, calls %v; want installed %v", err, f.calls, tc.installed)
			}
			if prepared != (tc.system == "linux-systemd") {
				t.Errorf("service user prepared %v on %s", prepared, tc.system)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestServiceStatus prints the state in words and fails when the service is not installed.
func TestServiceStatus(t *testing.T) {
	for _, tc := range []struct {
		st   service.Status
		err  error
		want string
	}{
		{service.StatusRunning, nil, "lanebridge-agent: running (linux-systemd)\n"},
		{service.StatusStopped, nil, "lanebridge-agent: stopped (linux-systemd)\n"},
		{service.StatusUnknown, nil, "lanebridge-agent: unknown (linux-systemd)\n"},
		{service.StatusUnknown, service.ErrNotInstalled, "lanebridge-agent: not installed (linux-systemd)\n"},
		{service.StatusUnknown, os.ErrPermission, "lanebridge-agent: unknown, not installed or not answering (linux-systemd)\n"},
	} {
		var out bytes.Buffer
		err := serviceControl(serviceCtl{Service: &fakeService{status: tc.st, err: tc.err}, system: "linux-systemd"}, "status", false, &out)
		if !errors.Is(err, tc.err) || out.String() != tc.want {
			t.Errorf("status %v/%v: printed %q err %v, want %q", tc.st, tc.err, out.String(), err, tc.want)
		}
	}
	if err := cmdService([]string{"enable"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "install, uninstall, start, stop, restart, status") {
		t.Errorf("unknown action: %v", err)
	}
}

// TestRotatingFile: the log never exceeds its cap, keeps exactly keep old files, and loses no line.
func TestRotatingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "agent.log")
	r, err := openRotating(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := range 30 {
		l := fmt.Sprintf("line %02d of the agent log\n", i) // 25 bytes: 4 per file
		lines = append(lines, l)
		if _, err := r.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	var got string
	for _, p := range []string{path + ".2", path + ".1", path} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 100 {
			t.Errorf("%s is %d bytes, cap 100", p, len(b))
		}
		got += string(b)
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("a third old file exists: %v", err)
	}
	if want := strings.Join(lines[len(lines)-10:], ""); got != want {
		t.Errorf("kept\n%s\nwant the last 10 lines\n%s", got, want)
	}
	// Reopening appends to the current file rather than truncating it.
	r, err = openRotating(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.size != 50 {
		t.Errorf("reopened size %d, want 50", r.size)
	}
	r.Close()
}

// fakeEvents records what would go to the Windows Event Log.
type fakeEvents struct {
	service.Logger
	got []string
}

func (f *fakeEvents) Error(v ...any) error { f.got = append(f.got, "E "+fmt.Sprint(v...)); return nil }
func (f *fakeEvents) Warning(v ...any) error {
	f.got = append(f.got, "W "+fmt.Sprint(v...))
	return nil
}

// TestEventHandler: warnings and errors reach the Event Log (with their attributes), info does
// not; everything still reaches the file.
func TestEventHandler(t *testing.T) {
	ev := &fakeEvents{}
	var file bytes.Buffer
	log := slog.New(eventHandler{slog.NewTextHandler(&file, nil), ev}).With("store", "s1")
	log.Info("started")
	log.Warn("hub unreachable", "attempt", 3)
	log.Error("spool failed", "err", "disk full")
	want := []string{"W hub unreachable attempt=3", "E spool failed err=disk full"}
	if fmt.Sprint(ev.got) != fmt.Sprint(want) {
		t.Errorf("event log got %q, want %q", ev.got, want)
	}
	if n := strings.Count(file.String(), "store=s1"); n != 3 {
		t.Errorf("file has %d lines with store=s1, want 3:\n%s", n, file.String())
	}
}
