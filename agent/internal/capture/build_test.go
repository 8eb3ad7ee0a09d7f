package capture

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
	firmwareprofiles "github.com/lanebridge/lanebridge/firmware-profiles"
	"github.com/lanebridge/lanebridge/protocol"
)

type nopCommitter struct{}

func (nopCommitter) Commit(context.Context, spool.Capture) ([]protocol.Record, error) {
	return nil, nil
}
func (nopCommitter) Offset(string) ([]byte, error) { return nil, nil }

// TestBuild: each source scheme is built from a terminal's configuration with its profile's
// settings; each mistake is refused with the config key at fault and what to write instead.
func TestBuild(t *testing.T) {
	ps, err := profile.LoadFS(firmwareprofiles.FS)
	if err != nil {
		t.Fatal(err)
	}
	y, err := firmwareprofiles.FS.ReadFile("star-line.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y = bytes.Replace(append(y, "card:\n  last_four_only: true\n"...), []byte("name: star-line"), []byte("name: star-last4"), 1)
	if ps["star-last4"], err = profile.Load(bytes.NewReader(y)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		source  string
		profile string
		check   func(t *testing.T, s Source)
		key     string // error: the config key named
		hint    string // error: the fix it suggests
	}{
		{name: "file", source: "file:///var/pos/T1.jsonl", profile: "canonical-jsonl", check: func(t *testing.T, s Source) {
			tl := s.(*Tail)
			if tl.Path != filepath.FromSlash("/var/pos/T1.jsonl") || tl.Profile.Name != "canonical-jsonl" || tl.ID != "T1" || tl.Terminal != "T1" || tl.Log == nil {
				t.Errorf("tail %+v", tl)
			}
		}},
		{name: "file windows drive", source: "file://C:/pos/T1.jsonl", profile: "canonical-jsonl", check: func(t *testing.T, s Source) {
			if p := s.(*Tail).Path; p != filepath.FromSlash("C:/pos/T1.jsonl") {
				t.Errorf("path %q", p)
			}
		}},
		{name: "file text profile", source: "file:///var/pos/T1.jsonl", profile: "epson-tm-escpos", key: "terminals[0].profile", hint: "file:// sources take a canonical-jsonl profile"},
		{name: "file no path", source: "file://", profile: "canonical-jsonl", key: "terminals[0].source", hint: "e.g. file:///var/pos/journal.jsonl"},
		{name: "dir jsonl", source: "dir:///var/pos/export", profile: "canonical-jsonl", check: func(t *testing.T, s Source) {
			d := s.(*Dir)
			if d.Path != filepath.FromSlash("/var/pos/export") || d.Pattern != "*.jsonl" || d.Pipeline.Profile.Name != "canonical-jsonl" || d.Pipeline.Journal == nil {
				t.Errorf("dir %+v", d)
			}
		}},
		{name: "dir csv", source: "dir:///var/pos/export", profile: "csv-export", check: func(t *testing.T, s Source) {
			if p := s.(*Dir).Pattern; p != "*.csv" {
				t.Errorf("pattern %q", p)
			}
		}},
		{name: "dir text profile", source: "dir:///var/pos/export", profile: "epson-tm-escpos", key: "terminals[0].profile", hint: "csv or canonical-jsonl"},
		{name: "dir no folder", source: "dir://", profile: "canonical-jsonl", key: "terminals[0].source", hint: "e.g. dir:///var/pos/export"},
		{name: "serial", source: "serial:///dev/ttyS0", profile: "epson-tm-escpos", check: func(t *testing.T, s Source) {
			sr := s.(*Serial)
			if sr.Config.Name != "/dev/ttyS0" || sr.Config.Baud != 38400 || sr.Pipeline.ID != "T1" || sr.Masker == nil {
				t.Errorf("serial %+v", sr.Config)
			}
		}},
		{name: "serial baud in url", source: "serial://COM3?baud=9600", profile: "epson-tm-escpos", check: func(t *testing.T, s Source) {
			if c := s.(*Serial).Config; c.Name != "COM3" || c.Baud != 9600 {
				t.Errorf("serial %+v", c)
			}
		}},
		{name: "serial masks per profile", source: "serial:///dev/ttyS0", profile: "star-last4", check: func(t *testing.T, s Source) {
			if out, _ := s.(*Serial).Masker.Mask([]byte("4111111111111111")); string(out) != "************1111" {
				t.Errorf("last_four_only profile masks to %q", out)
			}
		}},
		{name: "serial no port", source: "serial://", profile: "epson-tm-escpos", key: "terminals[0].source", hint: "serial:///dev/ttyS0"},
		{name: "tcp-listen", source: "tcp-listen://0.0.0.0?forward=printer:9100", profile: "epson-tm-escpos", check: func(t *testing.T, s Source) {
			tl := s.(*TCPListen)
			if tl.Addr != "0.0.0.0:9100" || tl.Forward != "printer:9100" {
				t.Errorf("tcp-listen %q forward %q", tl.Addr, tl.Forward)
			}
			if out, _ := tl.Masker.Mask([]byte("4111111111111111")); string(out) != "411111******1111" {
				t.Errorf("default profile masks to %q", out)
			}
		}},
		{name: "tcp-listen bad forward", source: "tcp-listen://0.0.0.0:9100?forward=printer", profile: "epson-tm-escpos", key: "terminals[0].source", hint: "not host:port"},
		{name: "unknown scheme", source: "ftp://pos/journal", profile: "canonical-jsonl", key: "terminals[0].source", hint: `scheme "ftp" is not supported; use file:///path/journal.jsonl, dir:///path/export`},
		{name: "not a url", source: "file://%zz", profile: "canonical-jsonl", key: "terminals[0].source", hint: "is not a URL"},
		{name: "unknown profile", source: "file:///var/pos/T1.jsonl", profile: "nope", key: "terminals[0].profile", hint: "`lanebridge-agent profile list`, or add it to profiles_dir"},
	}
	env := Env{Profiles: ps, Spool: nopCommitter{}, Journal: &Journal{}, Log: slog.New(slog.DiscardHandler)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms := []config.Terminal{{ID: "T1", Source: tt.source, Profile: tt.profile}}
			srcs, err := Build(terms, env)
			cerr := Check(terms, ps)
			if tt.key == "" {
				if err != nil || cerr != nil {
					t.Fatalf("Build: %v; Check: %v", err, cerr)
				}
				if len(srcs) != 1 {
					t.Fatalf("%d sources", len(srcs))
				}
				tt.check(t, srcs[0])
				return
			}
			for _, err := range []error{err, cerr} {
				var ce *config.Error
				if !errors.As(err, &ce) || ce.Key != tt.key || !strings.Contains(err.Error(), tt.hint) {
					t.Fatalf("error %v: want config key %s and %q", err, tt.key, tt.hint)
				}
			}
		})
	}
}

// TestBuildOrderAndNeeds: sources come back in the order of the terminals, an error names the
// terminal's index, and Build refuses to make sources that could not run.
func TestBuildOrderAndNeeds(t *testing.T) {
	ps, err := profile.LoadFS(firmwareprofiles.FS)
	if err != nil {
		t.Fatal(err)
	}
	terms := []config.Terminal{
		{ID: "T1", Source: "file:///var/pos/T1.jsonl", Profile: "canonical-jsonl"},
		{ID: "T2", Source: "serial:///dev/ttyS1", Profile: "star-line"},
	}
	log := slog.New(slog.DiscardHandler)
	srcs, err := Build(terms, Env{Profiles: ps, Spool: nopCommitter{}, Journal: &Journal{}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if srcs[0].(*Tail).ID != "T1" || srcs[1].(*Serial).Pipeline.ID != "T2" {
		t.Errorf("sources out of order: %T %T", srcs[0], srcs[1])
	}
	bad := append(terms, config.Terminal{ID: "T3", Source: "gopher://x", Profile: "star-line"})
	if err := Check(bad, ps); err == nil || !strings.Contains(err.Error(), "config key terminals[2].source") {
		t.Errorf("Check: %v, want terminals[2].source named", err)
	}
	for name, env := range map[string]Env{
		"no spool":   {Profiles: ps, Journal: &Journal{}, Log: log},
		"no logger":  {Profiles: ps, Spool: nopCommitter{}, Journal: &Journal{}},
		"no journal": {Profiles: ps, Spool: nopCommitter{}, Log: log},
	} {
		if _, err := Build(terms, env); err == nil {
			t.Errorf("%s: Build succeeded", name)
		}
	}
}
