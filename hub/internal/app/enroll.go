package app

import (
	"context"
	"flag"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// EnrollTokenPrefix starts every enrolment token, so a leaked one is recognisable.
const EnrollTokenPrefix = "lbe_"

// maxEnrollLife caps an enrolment token's lifetime.
const maxEnrollLife = 30 * 24 * time.Hour

// parseEnrollLife reads --enroll-expires / --expires: 24h, 7d, … (never is refused: a token
// that never expires is a password left lying around).
func parseEnrollLife(flagName, s string) (time.Duration, error) {
	d, err := parseLifetime(s)
	if dd, e := time.ParseDuration(s); err != nil && e == nil && dd >= time.Second {
		d, err = dd, nil // seconds too: a lab or test token
	}
	if err != nil || d == 0 || d > maxEnrollLife {
		return 0, fmt.Errorf("%s: %q: use a lifetime such as 24h, 7d or 30m (at least 1s, at most 30d)", flagName, s)
	}
	return d, nil
}

// issueEnrollToken mints a token for store, keeps its hash and writes the token alone on a
// line to out.
func issueEnrollToken(ctx context.Context, st *store.DB, id string, life time.Duration, out io.Writer) (time.Time, error) {
	tok := EnrollTokenPrefix + creds.NewPassword()
	until := clock.Now().Add(life)
	if err := st.AddEnrollToken(ctx, id, auth.HashSecret(tok), until); err != nil {
		return until, storeNotFound(id, err)
	}
	if _, err := fmt.Fprintln(out, tok); err != nil {
		return until, fmt.Errorf("write token: %w", err)
	}
	return until, nil
}

func enrollHint(w io.Writer, cfg *Config, id string, until time.Time) {
	u := hubPublicURL(cfg)
	insecure := ""
	if strings.HasPrefix(u, "http://") {
		// The agent refuses to fetch a password over plain http without being told.
		insecure = " --insecure-http"
	}
	fmt.Fprintf(w, "store %s: one-time enrolment token printed (valid until %s, once); on the store PC run:\n"+
		"  lanebridge-agent enroll --hub %s --token TOKEN --config /etc/lanebridge/agent.yaml [--ca hub-ca.pem]%s\n",
		id, until.Format(time.RFC3339), u, insecure)
	if insecure != "" {
		fmt.Fprintln(w, "  (this hub serves plain http: the password crosses the network in clear; set http.cert_file/key_file and http.public_url to https://… for real stores)")
	}
}

// storesEnrollToken is `stores enroll-token STORE [--expires 24h] [--out FILE]`.
func storesEnrollToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stores enroll-token", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	expires := fs.String("expires", "24h", "how long the token may be used (once): 24h, 7d, …")
	outPath := fs.String("out", "", "write the token to this file (mode 0600) instead of stdout")
	id, err := parseStoreArgs(fs, args)
	if err != nil {
		return err
	}
	life, err := parseEnrollLife("--expires", *expires)
	if err != nil {
		return err
	}
	cfg, st, err := cf.open(false)
	if err != nil {
		return err
	}
	defer st.Close()
	out, closeOut, err := secretOut(*outPath, stdout)
	if err != nil {
		return err
	}
	defer closeOut()
	until, err := issueEnrollToken(context.Background(), st, id, life, out)
	if err != nil {
		return err
	}
	if err := closeOut(); err != nil {
		return fmt.Errorf("write token: %w", err)
	}
	enrollHint(stderr, cfg, id, until)
	fmt.Fprintln(stderr, "using it gives the store a new password: an agent still running with the old one is cut off")
	return nil
}

// agentBrokerURL is the broker URL written into agent.yaml and given to enrolled agents:
// broker.agent_url, else broker.url, else the embedded broker's listen address (this host's
// name for a wildcard address).
func agentBrokerURL(cfg *Config) string {
	if u := cfg.Broker.AgentURL; u != "" {
		return u
	}
	if cfg.Broker.URL != "" {
		return cfg.Broker.URL
	}
	host, port, _ := net.SplitHostPort(cfg.MQTT.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host, _ = os.Hostname()
	}
	scheme := "tcp://"
	if cfg.MQTT.CertFile != "" {
		scheme = "ssl://"
	}
	return scheme + net.JoinHostPort(host, port)
}

// hubPublicURL is the hub's HTTP URL as agents reach it: http.public_url, else derived from
// http.listen (this host's name for a wildcard address).
func hubPublicURL(cfg *Config) string {
	if u := cfg.HTTP.PublicURL; u != "" {
		return strings.TrimSuffix(u, "/")
	}
	host, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host, _ = os.Hostname()
	}
	scheme := "http://"
	if cfg.HTTP.CertFile != "" {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}
