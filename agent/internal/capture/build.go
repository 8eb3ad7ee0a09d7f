package capture

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

// Env is what the capture sources of a running agent share.
type Env struct {
	// Profiles by name: the shipped ones, overridden by those in profiles_dir.
	Profiles map[string]*profile.Profile
	Spool    Committer
	// Journal is the raw journal of the byte-stream sources (serial, tcp-listen, dir); only
	// needed when a terminal has one.
	Journal *Journal
	// Retention is how long raw journal entries already parsed are kept (0: the pipeline's
	// default).
	Retention time.Duration
	// Masked, if set, counts card-data maskings of every source (the card masks metric).
	Masked *atomic.Uint64
	Log    *slog.Logger
}

// sourceForms lists the source URLs an agent reads, for error messages.
const sourceForms = "file:///path/journal.jsonl, dir:///path/export, serial:///dev/ttyS0 (serial://COM3) or tcp-listen://0.0.0.0:9100"

// Build returns the capture source of each terminal, in the order of terms. An error names the
// config key at fault (terminals[i].source or terminals[i].profile) and says what it takes.
// Card data is masked per the terminal's profile (card.last_four_only) before anything is
// journaled, committed or logged.
func Build(terms []config.Terminal, env Env) ([]Source, error) {
	if env.Spool == nil || env.Log == nil {
		return nil, errors.New("capture: Build needs a spool and a logger")
	}
	out := make([]Source, 0, len(terms))
	for i, t := range terms {
		src, err := build(i, t, env)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, nil
}

// Check reports, as Build would, the first terminal whose source or profile is wrong, without
// opening anything.
func Check(terms []config.Terminal, profiles map[string]*profile.Profile) error {
	for i, t := range terms {
		if _, err := build(i, t, Env{Profiles: profiles}); err != nil {
			return err
		}
	}
	return nil
}

// build builds the source of terms[i]; with a nil env.Spool it only checks it.
func build(i int, t config.Terminal, env Env) (Source, error) {
	key := fmt.Sprintf("terminals[%d]", i)
	bad := func(field, format string, args ...any) error {
		return &config.Error{Key: key + "." + field, Msg: fmt.Sprintf(format, args...)}
	}
	u, err := url.Parse(t.Source)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, bad("source", "%q is not a URL (%v); use %s", t.Source, err, sourceForms)
	}
	switch u.Scheme {
	case "file", "dir", "serial", "tcp-listen":
	default:
		return nil, bad("source", "scheme %q is not supported; use %s", u.Scheme, sourceForms)
	}
	p := env.Profiles[t.Profile]
	if p == nil {
		return nil, bad("profile", "%q not found; see `lanebridge-agent profile list`, or add it to profiles_dir", t.Profile)
	}
	masker := pan.New(pan.Options{LastFourOnly: p.Card.LastFourOnly})
	pipeline := func() (*Pipeline, error) {
		if env.Spool != nil && env.Journal == nil {
			return nil, errors.New("capture: Build needs the raw journal for a " + u.Scheme + ":// source")
		}
		pl := NewPipeline()
		pl.ID, pl.Terminal, pl.Profile, pl.Spool, pl.Journal, pl.Log = t.ID, t.ID, p, env.Spool, env.Journal, env.Log
		pl.Retention = env.Retention
		return pl, nil
	}
	switch u.Scheme {
	case "file":
		if f := p.Format(); f != "canonical-jsonl" {
			return nil, bad("profile", "%q reads %s; file:// sources take a canonical-jsonl profile", t.Profile, f)
		}
		path := localPath(u)
		if path == "" {
			return nil, bad("source", "%q has no path; e.g. file:///var/pos/journal.jsonl", t.Source)
		}
		return &Tail{ID: t.ID, Terminal: t.ID, Path: path, Profile: p, Spool: env.Spool, Log: env.Log, Masked: env.Masked}, nil
	case "dir":
		if f := p.Format(); f != "csv" && f != "canonical-jsonl" {
			return nil, bad("profile", "%q reads %s; dir:// sources take a csv or canonical-jsonl profile", t.Profile, f)
		}
		path := localPath(u)
		if path == "" {
			return nil, bad("source", "%q has no folder; e.g. dir:///var/pos/export", t.Source)
		}
		done := DoneMasked
		for k, v := range u.Query() {
			if k != "done" || len(v) != 1 || (v[0] != DoneMasked && v[0] != DoneDelete) {
				return nil, bad("source", "query %s=%s: a dir:// source takes only done=%s (processed files kept masked in done/, the default) or done=%s", k, strings.Join(v, ","), DoneMasked, DoneDelete)
			}
			done = v[0]
		}
		pl, err := pipeline()
		if err != nil {
			return nil, err
		}
		return &Dir{Path: path, Pattern: p.Transport.FilePattern, Masker: masker, Masked: env.Masked, Pipeline: pl, Log: env.Log, Done: done}, nil
	case "serial":
		c, err := ParseSerialURL(u, p.Transport)
		if err != nil {
			return nil, bad("source", "%v", err)
		}
		pl, err := pipeline()
		if err != nil {
			return nil, err
		}
		return &Serial{Config: c, Masker: masker, Masked: env.Masked, Pipeline: pl, Log: env.Log}, nil
	default: // tcp-listen
		addr, fwd, err := ParseTCPListenURL(u, p.Transport.TCPPort)
		if err != nil {
			return nil, bad("source", "%v", err)
		}
		pl, err := pipeline()
		if err != nil {
			return nil, err
		}
		return &TCPListen{Addr: addr, Forward: fwd, Masker: masker, Masked: env.Masked, Pipeline: pl, Log: env.Log}, nil
	}
}

// localPath is the file or folder of a file:// or dir:// URL; file://C:/pos/journal.jsonl
// names a Windows drive in the host part.
func localPath(u *url.URL) string {
	p := u.Path
	if u.Host != "" && u.Host != "localhost" {
		p = u.Host + p
	}
	return filepath.FromSlash(p)
}
