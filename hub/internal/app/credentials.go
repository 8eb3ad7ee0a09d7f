package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/extbroker"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// ProbeUser is the Mosquitto account `export mosquitto` creates for the hub's broker_insecure
// probe: it is in the password file and has no rights in the ACL, so it must not be able to
// subscribe to '#'. Its password is a hub secret (probeSecret) in the store.
const ProbeUser = "lanebridge-probe"

const probeSecret = "mqtt_probe_password"

// parseStoreArgs parses "STORE [flags]" or "[flags] STORE" and checks the store id.
func parseStoreArgs(fs *flag.FlagSet, args []string) (string, error) {
	id, err := parseWithName(fs, args)
	if err != nil {
		return "", err
	}
	if err := protocol.ValidateStoreID(id); err != nil {
		return "", fmt.Errorf("store id: %w", err)
	}
	return id, nil
}

// open loads the config and opens the store, refusing a data directory without a hub
// database unless create; the caller closes the store.
func (c *commonFlags) open(create bool) (*Config, *store.DB, error) {
	cfg, err := c.load()
	if err == nil && !create {
		err = requireDB(cfg)
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(context.Background(), cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	return cfg, st, nil
}

// storeCmd parses a store command's arguments and opens the store; the caller closes it.
func storeCmd(fs *flag.FlagSet, args []string) (string, *store.DB, error) {
	var cf commonFlags
	cf.register(fs)
	id, err := parseStoreArgs(fs, args)
	if err != nil {
		return "", nil, err
	}
	_, st, err := cf.open(false)
	return id, st, err
}

// notFound turns store.ErrNotFound into a message with the fix.
func storeNotFound(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store %s is not enrolled, or was removed (enrol it with `lanebridge-hub stores add %s`)", id, id)
	}
	return err
}

// storesSetState is `stores disable|enable|remove STORE`.
func storesSetState(state string, args []string, stderr io.Writer) error {
	id, st, err := storeCmd(flag.NewFlagSet("stores "+state, flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SetStoreState(context.Background(), id, state); err != nil {
		return storeNotFound(id, err)
	}
	msg := map[string]string{
		store.StoreDisabled: "disabled: its agent is refused (a running hub disconnects it within seconds); `stores enable %s` undoes it",
		store.StoreActive:   "enabled: its agent may connect again",
		store.StoreRemoved:  "removed: its credentials are gone, its records are kept; `stores add %s` enrols it again",
	}[state]
	fmt.Fprintf(stderr, "store %s "+msg+"\n", id, id)
	externalReminder(stderr)
	return nil
}

func externalReminder(w io.Writer) {
	fmt.Fprintln(w, "with an external broker: run `lanebridge-hub export mosquitto --out DIR` and reload Mosquitto (kill -HUP, systemctl reload mosquitto)")
}

// storesRotate is `stores rotate-credentials STORE [--grace D] [--revoke-old] [--out FILE]`.
func storesRotate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stores rotate-credentials", flag.ContinueOnError)
	grace := fs.Duration("grace", 24*time.Hour, "how long the old password keeps working (0: not at all)")
	revoke := fs.Bool("revoke-old", false, "end the old password's grace now, minting nothing")
	outPath := fs.String("out", "", "write the new password to this file (mode 0600) instead of stdout")
	id, st, err := storeCmd(fs, args)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	if *revoke {
		if err := st.RevokePreviousCredentials(ctx, id); err != nil {
			return storeNotFound(id, err)
		}
		fmt.Fprintf(stderr, "store %s: the previous password no longer works\n", id)
		return nil
	}
	out, closeOut, err := secretOut(*outPath, stdout)
	if err != nil {
		return err
	}
	defer closeOut() // on early returns; the explicit close below reports write errors
	pw := creds.NewPassword()
	if err := st.RotateCredentials(ctx, id, creds.Hash(pw), creds.MosquittoHash(pw), *grace); err != nil {
		return storeNotFound(id, err)
	}
	if _, err := fmt.Fprintln(out, pw); err != nil {
		return fmt.Errorf("write password: %w", err)
	}
	if err := closeOut(); err != nil {
		return fmt.Errorf("write password: %w", err)
	}
	fmt.Fprintf(stderr, "store %s has a new password (set it as hub.password in its agent.yaml); the old one works for %v more on the embedded broker (`--revoke-old` ends that)\n", id, *grace)
	externalReminder(stderr)
	return nil
}

// secretOut opens path (mode 0600, also over a wider existing file) or returns stdout. The
// returned close must be called after writing.
func secretOut(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("--out: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("--out: %w", err)
	}
	return f, f.Close, nil
}

// exportMosquitto is `export mosquitto --out DIR`: the embedded broker's rules for an external
// Mosquitto. It writes DIR/passwd (password_file), DIR/acl (acl_file) and DIR/lanebridge.conf
// (the three settings that use them, for an include). Active stores without a Mosquitto hash
// (enrolled before it existed) are listed with the fix; they make it fail unless --skip-missing.
func exportMosquitto(args []string, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "mosquitto" {
		return errors.New("export: only `export mosquitto --out DIR` is supported")
	}
	fs := flag.NewFlagSet("export mosquitto", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	dir := fs.String("out", "", "directory to write passwd, acl and lanebridge.conf to (required)")
	skip := fs.Bool("skip-missing", false, "leave out stores that have no Mosquitto hash yet instead of failing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("export mosquitto: --out DIR is required")
	}
	cfg, st, err := cf.open(false)
	if err != nil {
		return err
	}
	defer st.Close()
	hubUser := cfg.Broker.Username
	if hubUser == "" {
		return errors.New("config key broker.username: export mosquitto needs the hub's own broker account; set broker.username and broker.password_file")
	}
	hubPw, err := cfg.brokerPassword()
	if err == nil && hubPw == "" {
		err = errors.New("config key broker.password_file: export mosquitto needs the hub's broker password; write it to a file and set broker.password_file")
	}
	if err != nil {
		return err
	}
	ctx := context.Background()
	all, err := st.AllCredentials(ctx)
	if err != nil {
		return err
	}
	probePw, err := st.EnsureSecret(ctx, probeSecret, creds.NewPassword())
	if err != nil {
		return err
	}
	passwd, acl, missing, err := mosquittoFiles(hubUser, hubPw, probePw, all)
	if err != nil {
		return err
	}
	for _, id := range missing {
		fmt.Fprintf(stderr, "store %s has no Mosquitto password hash (enrolled before export existed): run `lanebridge-hub stores rotate-credentials %s` and give its agent the new password\n", id, id)
	}
	if len(missing) > 0 && !*skip {
		return fmt.Errorf("export mosquitto: %d store(s) without a Mosquitto hash; nothing written (rotate their credentials, or pass --skip-missing to leave them out)", len(missing))
	}
	abs, err := filepath.Abs(*dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o750)
	}
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	conf := fmt.Sprintf("# Written by lanebridge-hub export mosquitto.\nallow_anonymous false\npassword_file %s\nacl_file %s\n",
		filepath.Join(abs, "passwd"), filepath.Join(abs, "acl"))
	for name, body := range map[string]string{"passwd": passwd, "acl": acl, "lanebridge.conf": conf} {
		if err := writeAtomic(filepath.Join(abs, name), []byte(body)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "wrote %s/{passwd,acl,lanebridge.conf} (%d stores); reload Mosquitto to apply: kill -HUP $(pidof mosquitto) or systemctl reload mosquitto\n",
		abs, strings.Count(passwd, "\n")-2)
	return nil
}

// mosquittoFiles renders the password file and ACL for the hub's account, the probe account
// and every active store that has a Mosquitto hash; it returns the active stores without one.
func mosquittoFiles(hubUser, hubPw, probePw string, all []store.Credential) (passwd, acl string, missing []string, err error) {
	if strings.ContainsAny(hubUser, ": \t\r\n#") || hubUser == ProbeUser {
		return "", "", nil, fmt.Errorf("config key broker.username: %q cannot be a Mosquitto user here (no ':', '#', whitespace, not %s)", hubUser, ProbeUser)
	}
	var pw, a strings.Builder
	fmt.Fprintf(&pw, "%s:%s\n%s:%s\n", hubUser, creds.MosquittoHash(hubPw), ProbeUser, creds.MosquittoHash(probePw))
	root := protocol.TopicRoot
	fmt.Fprintf(&a, "# Written by lanebridge-hub export mosquitto; re-run it after any store change and reload Mosquitto.\n"+
		"# Anonymous clients and %s have no rights. The hub's account:\nuser %s\ntopic read %s/+/up/#\ntopic write %s/+/down/#\n",
		ProbeUser, hubUser, root, root)
	for _, c := range all {
		if c.State != store.StoreActive {
			continue
		}
		if c.Store == hubUser || c.Store == ProbeUser || strings.Contains(c.Store, ":") {
			return "", "", nil, fmt.Errorf("store id %q cannot be a Mosquitto account (it is the hub's or the probe's name, or has a ':'); remove the store or change broker.username", c.Store)
		}
		if c.MosquittoHash == "" {
			missing = append(missing, c.Store)
			continue
		}
		fmt.Fprintf(&pw, "%s:%s\n", c.Store, c.MosquittoHash)
		fmt.Fprintf(&a, "\nuser %[1]s\ntopic write %[2]s\ntopic write %[3]s\ntopic read %[4]s/%[1]s/down/#\n",
			c.Store, protocol.RecordsTopic(c.Store), protocol.StatusTopic(c.Store), root)
	}
	return pw.String(), a.String(), missing, nil
}

// writeAtomic replaces path with b (mode 0640: Mosquitto's group may read it).
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, b, 0o640)
	if err == nil {
		err = os.Chmod(tmp, 0o640)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReasonBrokerInsecure is the exception the hub raises when its external broker accepts an
// anonymous client or grants a store-like account '#'.
const ReasonBrokerInsecure = "broker_insecure"

// probeInterval is how often the hub probes an external broker (and once at start).
var probeInterval = time.Hour

// exceptionRaiser is what the broker probe needs of the store.
type exceptionRaiser interface {
	EnsureSecret(ctx context.Context, name, value string) (string, error)
	RaiseException(ctx context.Context, e store.Exception) (bool, error)
}

// probeBroker checks the external broker's lockdown at start and every probeInterval until ctx
// ends: an anonymous connection, and the probe account (ProbeUser) subscribing to '#' and
// receiving a canary the hub publishes to another account's topic (extbroker.Probe). Either
// working is logged at error level and raised as a broker_insecure exception. A probe that
// cannot run (no probe account on the broker yet) is a warning: it says to export and reload.
func probeBroker(ctx context.Context, st exceptionRaiser, cfg *Config, log *slog.Logger) error {
	url := cfg.Broker.URL
	log = log.With("component", "brokerprobe", "url", url)
	hubPw, err := cfg.brokerPassword()
	if err != nil {
		return err
	}
	pw, err := st.EnsureSecret(ctx, probeSecret, creds.NewPassword())
	if err != nil {
		return err
	}
	for {
		res, err := extbroker.Probe(ctx, url, ProbeUser, pw, cfg.Broker.Username, hubPw)
		wait := probeInterval
		switch {
		case err == nil && res == (extbroker.ProbeResult{}):
			log.Info("external broker is locked down: anonymous clients refused, a store account's '#' gets no other account's messages")
		case err != nil && ctx.Err() == nil:
			wait = min(wait, time.Minute)
			log.Warn("broker lockdown probe could not run; if the probe account is missing, run `lanebridge-hub export mosquitto` and reload the broker", "err", err)
		}
		for _, f := range []struct {
			open      bool
			key, what string
		}{{res.Anonymous, "anonymous", "accepts anonymous clients"}, {res.Wildcard, "wildcard", "delivers other accounts' messages to a store account subscribed to '#'"}} {
			if !f.open {
				continue
			}
			detail := "external broker " + url + " " + f.what + ": any client can read or inject other stores' records and acks; lock it down with `lanebridge-hub export mosquitto` (allow_anonymous false) and reload it"
			log.Error("external broker is not locked down", "finding", f.key, "detail", detail)
			if _, err := st.RaiseException(ctx, store.Exception{Reason: ReasonBrokerInsecure, Key: f.key, Detail: detail}); err != nil && ctx.Err() == nil {
				log.Error("raise broker_insecure", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
