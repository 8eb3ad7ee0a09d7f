package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lanebridge/lanebridge/agent/internal/boltfile"
	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/protocol"
)

// enrollResponse is the hub's answer to POST /api/v1/enroll (hub/internal/web.EnrollResponse).
type enrollResponse struct {
	Store        string `json:"store"`
	Broker       string `json:"broker"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	HubURL       string `json:"hub_url"`
	ActionNeeded string `json:"action_needed"`
}

// cmdEnroll is `enroll --hub URL --token T --config PATH [--ca FILE] [--data-dir DIR]
// [--insecure-http]`: it redeems a one-time enrolment token at the hub over HTTPS and writes
// (or merges into) the agent's config, the password in a 0600 file beside it.
func cmdEnroll(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	hubURL := fs.String("hub", "", "the hub's URL, https://hub.example:8443 (required)")
	token := fs.String("token", "", "the one-time enrolment token from `lanebridge-hub stores add --enroll-token` (required; - reads it from stdin)")
	path := fs.String("config", "agent.yaml", "agent configuration file to write or merge into")
	caFile := fs.String("ca", "", "PEM file of the CA that signed the hub's certificate (default: the system's CAs); also used for an ssl:// broker")
	dataDir := fs.String("data-dir", "", "data_dir for a new configuration (default /var/lib/lanebridge-agent)")
	insecure := fs.Bool("insecure-http", false, "allow a plain http:// hub URL (tests and labs only: the password crosses the network in clear)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *hubURL == "" || *token == "" {
		return errors.New("enroll: --hub URL and --token TOKEN are required")
	}
	tok := *token
	if tok == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1024))
		if err != nil {
			return fmt.Errorf("read token from stdin: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	u, err := url.Parse(*hubURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("--hub: %q is not https://host:port", *hubURL)
	}
	if u.Scheme == "http" {
		if !*insecure {
			return fmt.Errorf("--hub: %s is plain http: the store's password would cross the network in clear; use the hub's https:// URL (or --insecure-http in a lab)", *hubURL)
		}
		fmt.Fprintln(stderr, "lanebridge-agent: warning: --insecure-http: fetching the store's password over plain http")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca: %s holds no PEM certificate", *caFile)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	resp, err := redeem(context.Background(), client, strings.TrimSuffix(u.String(), "/"), tok)
	if err != nil {
		return err
	}
	if err := protocol.ValidateStoreID(resp.Store); err != nil || resp.Broker == "" || resp.Password == "" {
		return fmt.Errorf("enroll: the hub's answer is incomplete (store %q, broker %q)", resp.Store, resp.Broker)
	}
	ca := ""
	if *caFile != "" && (strings.HasPrefix(resp.Broker, "ssl://") || strings.HasPrefix(resp.Broker, "tls://") || strings.HasPrefix(resp.Broker, "mqtts://")) {
		if ca, err = filepath.Abs(*caFile); err != nil {
			return err
		}
	}
	pwFile, err := writeEnrolled(*path, *dataDir, resp, ca)
	if err != nil {
		return fmt.Errorf("enrolled at the hub, but writing the configuration failed (the token is used up: ask for a new one): %w", err)
	}
	fmt.Fprintf(stdout, "enrolled store %s: wrote %s (mode 0600) and its password to %s (mode 0600)\n  hub.broker: %s\n  hub.username: %s\n  hub.password_file: %s\n",
		resp.Store, *path, pwFile, resp.Broker, resp.Username, pwFile)
	if ca != "" {
		fmt.Fprintf(stdout, "  hub.tls.ca_file: %s\n", ca)
	}
	if resp.HubURL != "" {
		fmt.Fprintf(stdout, "  update.hub_url: %s (unless the file already named one)\n", resp.HubURL)
	}
	if resp.ActionNeeded != "" {
		fmt.Fprintf(stderr, "lanebridge-agent: note: %s\n", resp.ActionNeeded)
	}
	err = cmdValidate([]string{"--config", *path}, stdout, stderr)
	if config.IsNoTerminals(err) {
		// A fresh file has no terminals yet: check what enrolment wrote (credentials, data_dir)
		// and say what is left; `validate` and `run` refuse the file until terminals are added.
		err = checkEnrolled(*path, stdout, stderr)
	}
	if err != nil {
		return fmt.Errorf("the written configuration does not validate yet (add the store's terminals, then `lanebridge-agent validate`): %w", err)
	}
	return nil
}

// checkEnrolled checks an enrolled file that lists no terminals yet as validate would, except
// for the terminals, and prints the step left.
func checkEnrolled(path string, stdout, stderr io.Writer) error {
	cfg, err := config.LoadWithoutTerminals(path)
	if err != nil {
		return err
	}
	if err := checkCredentials(path, cfg, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK so far (store %s, hub %s); next: add the store's terminals (config key terminals: id, source, profile), then `lanebridge-agent validate --config %s` — the agent refuses to run without one\n",
		path, cfg.Store, cfg.Hub.Broker, path)
	return nil
}

// redeem posts the token to the hub and decodes the credentials.
func redeem(ctx context.Context, c *http.Client, hub, token string) (*enrollResponse, error) {
	body, _ := json.Marshal(map[string]string{"token": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hub+"/api/v1/enroll", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("enroll: cannot reach the hub at %s: %w", hub, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("enroll: read the hub's answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("enroll: the hub refused the token (%s): %s", res.Status, e.Error)
	}
	var r enrollResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("enroll: the hub's answer is not JSON: %w", err)
	}
	return &r, nil
}

// writeEnrolled writes the password to a 0600 file beside path (NAME.password for NAME.yaml)
// and writes path (0600): a new configuration, or the existing one with store and hub.broker,
// hub.username and hub.password_file set (hub.password removed), its other keys and comments
// kept. It returns the password file's path.
func writeEnrolled(path, dataDir string, r *enrollResponse, caFile string) (string, error) {
	pwFile := strings.TrimSuffix(path, filepath.Ext(path)) + ".password"
	var doc yaml.Node
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if dataDir == "" {
			dataDir = "/var/lib/lanebridge-agent"
		}
		fresh := fmt.Sprintf("# Lanebridge agent configuration for store %s, written by lanebridge-agent enroll.\n"+
			"store: %s\ndata_dir: %s\nhub: {}\nspool:\n  retention: 35d\n  max_size: 2GiB\n"+
			"# terminals: add the store's capture sources, e.g.\n#  - {id: T1, source: file:///var/pos/T1.jsonl, profile: canonical-jsonl}\n",
			r.Store, r.Store, strconvQuote(dataDir))
		if err := yaml.Unmarshal([]byte(fresh), &doc); err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	default:
		if err := yaml.Unmarshal(old, &doc); err != nil {
			return "", fmt.Errorf("existing %s is not valid YAML (fix or move it): %w", path, err)
		}
		if len(doc.Content) == 0 {
			if err := yaml.Unmarshal([]byte("{}"), &doc); err != nil {
				return "", err
			}
		}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return "", fmt.Errorf("existing %s is not a YAML mapping", path)
	}
	if cur := mapGet(root, "store"); cur != nil && cur.Value != "" && cur.Value != r.Store {
		return "", fmt.Errorf("%s is the configuration of store %s, the token enrols store %s: use another --config", path, cur.Value, r.Store)
	}
	mapSet(root, "store", r.Store)
	if dataDir != "" {
		mapSet(root, "data_dir", dataDir)
	}
	hub := mapGet(root, "hub")
	if hub == nil || hub.Kind != yaml.MappingNode {
		hub = &yaml.Node{Kind: yaml.MappingNode}
		mapPut(root, "hub", hub)
	}
	hub.Style = 0
	mapSet(hub, "broker", r.Broker)
	mapSet(hub, "username", r.Username)
	mapDel(hub, "password")
	mapSet(hub, "password_file", filepath.Base(pwFile))
	if caFile != "" {
		t := mapGet(hub, "tls")
		if t == nil || t.Kind != yaml.MappingNode {
			t = &yaml.Node{Kind: yaml.MappingNode}
			mapPut(hub, "tls", t)
		}
		t.Style = 0
		if mapGet(t, "ca_file") == nil {
			mapSet(t, "ca_file", caFile)
		}
	}
	if r.HubURL != "" {
		// Self-updates download from the hub that enrolled us, unless the file names another.
		up := mapGet(root, "update")
		if up == nil || up.Kind != yaml.MappingNode {
			up = &yaml.Node{Kind: yaml.MappingNode}
			mapPut(root, "update", up)
		}
		up.Style = 0
		if mapGet(up, "hub_url") == nil {
			mapSet(up, "hub_url", r.HubURL)
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return "", err
	}
	if err := writeFile0600(pwFile, []byte(r.Password+"\n")); err != nil {
		return "", err
	}
	return pwFile, writeFile0600(path, out)
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// writeFile0600 replaces path atomically with b, mode 0600.
func writeFile0600(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	// The rename is durable only once the directory is synced: without it a power cut can
	// bring back the old file, or none (the powercut disk in testharness models this).
	return boltfile.SyncDir(filepath.Dir(path))
}

func mapGet(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func mapPut(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

func mapSet(m *yaml.Node, key, value string) {
	mapPut(m, key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

func mapDel(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}
