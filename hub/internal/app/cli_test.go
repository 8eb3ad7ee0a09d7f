package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The agent.yaml holds the store's password: with --out it is written 0600 (even over a wider
// file), and nothing of it goes to stdout.
func TestStoresAddOut(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"stores", "add", "S001", "--data", filepath.Join(dir, "hub"), "--broker-url", "tcp://h:1883", "--out", out, "--create"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), "store: S001") || !strings.Contains(string(b), "password: ") {
		t.Errorf("agent.yaml:\n%s", b)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout with --out: %q", stdout.String())
	}

	// Without --out: stdout, as before.
	stdout.Reset()
	if code := Main([]string{"stores", "add", "S002", "--data", filepath.Join(dir, "hub"), "--broker-url", "tcp://h:1883"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "store: S002") {
		t.Errorf("stdout: %q", stdout.String())
	}
}

// A data directory without hub.db is refused by every command but serve (a misspelt --data used
// to create an empty hub), unless stores add is told --create.
func TestDataDirWithoutDatabase(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "hbu")
	tests := []struct {
		name string
		args []string
	}{
		{"stores add", []string{"stores", "add", "S001", "--data", missing}},
		{"stores list", []string{"stores", "list", "--data", missing}},
		{"stores list, empty dir", []string{"stores", "list", "--data", dir}},
		{"users list", []string{"users", "list", "--data", missing}},
		{"tokens add", []string{"tokens", "add", "--name", "x", "--role", "viewer", "--data", missing}},
		{"stores rotate-credentials", []string{"stores", "rotate-credentials", "S001", "--data", missing}},
		{"stores disable", []string{"stores", "disable", "S001", "--data", missing}},
		{"stores enable", []string{"stores", "enable", "S001", "--data", missing}},
		{"stores remove", []string{"stores", "remove", "S001", "--data", missing}},
		{"stores set", []string{"stores", "set", "S001", "--tz", "UTC", "--data", missing}},
		{"export mosquitto", []string{"export", "mosquitto", "--out", filepath.Join(dir, "x"), "--data", missing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(tt.args, &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if !strings.Contains(stderr.String(), "no hub database in ") || !strings.Contains(stderr.String(), "start `lanebridge-hub serve --data ") {
				t.Errorf("stderr: %s", stderr.String())
			}
			if _, err := os.Stat(filepath.Join(tt.args[len(tt.args)-1], "hub.db")); err == nil {
				t.Errorf("hub.db created")
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"stores", "add", "S001", "--data", missing, "--create"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--create: exit %d: %s", code, stderr.String())
	}
	if code := Main([]string{"stores", "list", "--data", missing}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "S001") {
		t.Fatalf("list after --create: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
}

// cli runs the hub command line and returns the exit code, stdout and stderr.
func cli(t *testing.T, in string, args ...string) (int, string, string) {
	t.Helper()
	stdin = strings.NewReader(in)
	t.Cleanup(func() { stdin = os.Stdin })
	var stdout, stderr bytes.Buffer
	code := Main(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// request sends an HTTP request to the hub; hdr are "Name: value" lines.
func request(t *testing.T, method, url, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// The users and tokens commands work on the data directory of a running hub: a token printed
// by `tokens add` is a Bearer credential at once, a user added logs in, and `users disable`,
// `users passwd` and `tokens revoke` take effect at once. No password or token is kept in plain.
func TestUsersAndTokensCLI(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testUsersAndTokensCLI(t, false) })
	t.Run("postgres", func(t *testing.T) { testUsersAndTokensCLI(t, true) })
}

// pgConfig points cfg at a fresh PostgreSQL schema (dropped at cleanup) and writes a hub.yaml
// that does the same, for the commands' --config. PostgreSQL being unreachable fails the test,
// except under -short where it skips.
func pgConfig(t *testing.T, cfg *Config) string {
	t.Helper()
	u := os.Getenv("LANEBRIDGE_TEST_PG_URL")
	if u == "" {
		u = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		if testing.Short() {
			t.Skipf("PostgreSQL unreachable (-short): %v", err)
		}
		t.Fatalf("PostgreSQL unreachable (set LANEBRIDGE_TEST_PG_URL or use -short): %v", err)
	}
	schema := fmt.Sprintf("lbapp_%d_%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		conn.Close(ctx)
	})
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	cfg.Store.PostgresURL = u + sep + "search_path=" + schema
	path := filepath.Join(t.TempDir(), "hub.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("store:\n  postgres_url: %q\n", cfg.Store.PostgresURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func testUsersAndTokensCLI(t *testing.T, postgres bool) {
	cfg := testConfig(t)
	data := []string{"--data", cfg.DataDir}
	if postgres {
		data = []string{"--config", pgConfig(t, cfg)}
	}
	s := startHub(t, cfg, nil)
	base := "http://" + s.h.httpAddr
	eventually(t, 10*time.Second, "healthz", func() error { return healthz(s.h.httpAddr) })
	const pw, pw2 = "ana's secret passphrase", "ana's second passphrase"
	var outputs strings.Builder
	run := func(want int, in string, args ...string) (string, string) {
		t.Helper()
		code, stdout, stderr := cli(t, in, append(args, data...)...)
		outputs.WriteString(stdout + stderr)
		if code != want {
			t.Fatalf("%s: exit %d, want %d: %s%s", strings.Join(args, " "), code, want, stdout, stderr)
		}
		return stdout, stderr
	}

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("short pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr := run(1, "", "users", "add", "ana", "--role", "operator", "--password-file", pwFile); !strings.Contains(stderr, "too short; use at least 12") {
		t.Fatalf("short password: %s", stderr)
	}
	for _, bad := range [][]string{
		{"users", "add", "ana", "--role", "root", "--password-file", "-"},
		{"users", "add", "ana", "--role", "viewer"},
		{"users", "add", "a/b", "--role", "viewer", "--password-file", "-"},
		{"users", "add", "ana", "--role", "viewer", "--stores", "S001,,S002", "--password-file", "-"},
		{"tokens", "add", "--role", "viewer"},
		{"tokens", "add", "--name", "x", "--role", "viewer", "--expires", "soon"},
		{"users", "disable", "nobody"},
		{"tokens", "revoke", "nobody"},
	} {
		if _, stderr := run(1, pw+"\n", bad...); stderr == "" {
			t.Errorf("%v: no message", bad)
		}
	}
	run(0, pw+"\n", "users", "add", "ana", "--role", "operator", "--stores", "S001", "--password-file", "-")
	if _, stderr := run(1, pw+"\n", "users", "add", "ana", "--role", "admin", "--password-file", "-"); !strings.Contains(stderr, "exists") {
		t.Errorf("second add: %s", stderr)
	}
	if out, _ := run(0, "", "users", "list"); !regexp.MustCompile(`ana\s+operator\s+stores S001\s+enabled`).MatchString(out) {
		t.Errorf("users list:\n%s", out)
	}

	tokOut, tokErr := run(0, "", "tokens", "add", "--name", "ci", "--role", "admin", "--expires", "30d")
	tok, rest, _ := strings.Cut(tokOut, "\n")
	if !strings.HasPrefix(tok, "lbt_") || rest != "" || strings.Contains(tokErr, tok) {
		t.Fatalf("tokens add stdout %q stderr %q: want the token alone on stdout", tokOut, tokErr)
	}
	if code, body, _ := request(t, "GET", base+"/api/v1/stores", "", "Authorization: Bearer "+tok); code != 200 {
		t.Fatalf("token from tokens add: %d %s", code, body)
	}
	if out, _ := run(0, "", "tokens", "list"); !regexp.MustCompile(`ci\s+admin\s+all stores\s+20\d\d-`).MatchString(out) || strings.Contains(out, tok) {
		t.Errorf("tokens list:\n%s", out)
	}

	login := func(password string) (int, string) {
		code, body, h := request(t, "POST", base+"/api/v1/session", fmt.Sprintf(`{"username":"ana","password":%q}`, password))
		c := (&http.Response{Header: h}).Cookies()
		if code != 200 || len(c) == 0 {
			return code, body
		}
		return code, "Cookie: " + c[0].Name + "=" + c[0].Value
	}
	code, cookie := login(pw)
	if code != 200 {
		t.Fatalf("login with the password from users add: %d %s", code, cookie)
	}
	if code, body, _ := request(t, "GET", base+"/api/v1/session", "", cookie); code != 200 || !strings.Contains(body, `"username": "ana"`) {
		t.Fatalf("session: %d %s", code, body)
	}
	run(0, pw2+"\n", "users", "passwd", "ana", "--password-file", "-")
	if code, _, _ := request(t, "GET", base+"/api/v1/stores", "", cookie); code != 401 {
		t.Errorf("session after users passwd: %d, want 401", code)
	}
	if code, _ := login(pw); code != 401 {
		t.Errorf("old password after users passwd: %d", code)
	}
	if code, cookie = login(pw2); code != 200 {
		t.Fatalf("new password: %d %s", code, cookie)
	}
	run(0, "", "users", "disable", "ana")
	if code, _, _ := request(t, "GET", base+"/api/v1/stores", "", cookie); code != 401 {
		t.Errorf("session after users disable: %d, want 401", code)
	}
	if code, _ := login(pw2); code != 401 {
		t.Errorf("disabled user logs in: %d", code)
	}
	if out, _ := run(0, "", "users", "list"); !strings.Contains(out, "disabled 20") {
		t.Errorf("users list after disable:\n%s", out)
	}

	// The CLI's changes are in the audit log, with the logins.
	_, audit, _ := request(t, "GET", base+"/api/v1/audit", "", "Authorization: Bearer "+tok)
	for _, want := range []string{`"action": "users add"`, `"action": "users passwd"`, `"action": "tokens add"`, `"outcome": "failed"`, `"actor": "cli:`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}

	run(0, "", "tokens", "revoke", "ci")
	if code, _, _ := request(t, "GET", base+"/api/v1/stores", "", "Authorization: Bearer "+tok); code != 401 {
		t.Errorf("revoked token: %d, want 401", code)
	}

	// Neither password nor the token is in the database files, the logs or the output.
	s.stop()
	if err := s.wait(t); err != nil {
		t.Fatal(err)
	}
	if postgres {
		st, err := openStore(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ops, err := st.Operators(context.Background())
		if err != nil || len(ops) != 1 || !strings.HasPrefix(ops[0].PasswordHash, "$argon2id$v=19$") || strings.Contains(ops[0].PasswordHash, pw2) {
			t.Errorf("operators in PostgreSQL: %+v %v", ops, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(cfg.DataDir, "hub.db*"))
	if len(files) == 0 && !postgres {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{pw, pw2, tok} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the secret %q in plain", f, secret)
			}
		}
		if f == filepath.Join(cfg.DataDir, "hub.db") && !bytes.Contains(b, []byte("$argon2id$v=19$")) {
			t.Errorf("%s: no argon2id hash (is the check reading the right file?)", f)
		}
	}
	for _, secret := range []string{pw, pw2} {
		if strings.Contains(s.logs.String(), secret) || strings.Contains(outputs.String(), secret) {
			t.Errorf("password %q in the hub log or command output", secret)
		}
	}
	if strings.Contains(s.logs.String(), tok) {
		t.Error("token in the hub log")
	}
}

// The http settings are checked and a bad one names its key.
func TestHTTPConfig(t *testing.T) {
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.HTTP.Listen = "8080" }, "http.listen"},
		{func(c *Config) { c.HTTP.Hosts = []string{"http://hub.example"} }, "http.hosts"},
		{func(c *Config) { c.HTTP.CertFile = "c.pem" }, "http.key_file"},
		{func(c *Config) { c.HTTP.MetricsListen = "0.0.0.0:9090" }, "http.metrics_listen"},
		{func(c *Config) { c.HTTP.MetricsListen = "9090" }, "http.metrics_listen"},
		{func(c *Config) { c.HTTP.SessionIdle = time.Second }, "http.session_idle"},
		{func(c *Config) { c.HTTP.SessionMax = time.Minute }, "http.session_max"},
		{func(c *Config) { c.Series.Flush = 0 }, "series.flush"},
		{func(c *Config) { c.Series.Flush = time.Hour }, "series.flush"},
		{func(c *Config) { c.Series.KeepMinutes = time.Minute }, "series.keep_minutes"},
		{func(c *Config) { c.Series.KeepHours = time.Hour }, "series.keep_hours"},
		{func(c *Config) { c.Metrics.PerStoreMax = 0 }, "metrics.per_store_max"},
	} {
		cfg := defaultConfig()
		c.set(cfg)
		if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "config key "+c.want) {
			t.Errorf("%s: %v", c.want, err)
		}
	}
	cfg := defaultConfig()
	cfg.HTTP.MetricsListen = "[::1]:9090"
	if err := cfg.validate(); err != nil {
		t.Errorf("loopback metrics_listen: %v", err)
	}
	if h := cfg.hosts(); !slices.Contains(h, "127.0.0.1") || !slices.Contains(h, "localhost") {
		t.Errorf("default hosts %v", h)
	}
	cfg.HTTP.Hosts = []string{"hub.example.com"}
	if h := cfg.hosts(); !slices.Equal(h, []string{"hub.example.com"}) {
		t.Errorf("hosts %v", h)
	}
	bad := filepath.Join(t.TempDir(), "x.pem")
	cfg = testConfig(t)
	cfg.HTTP.CertFile, cfg.HTTP.KeyFile = bad, bad
	if _, err := newHub(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "config key http.cert_file") {
		t.Errorf("missing certificate: %v", err)
	}
}

// With http.cert_file and http.key_file the hub serves HTTPS only, and its session cookie is
// Secure.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hub"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	cfg := testConfig(t)
	cfg.HTTP.CertFile, cfg.HTTP.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string]*pem.Block{cfg.HTTP.CertFile: {Type: "CERTIFICATE", Bytes: der}, cfg.HTTP.KeyFile: {Type: "PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := startHub(t, cfg, nil)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body, err := get("http://" + s.h.httpAddr + "/healthz"); err == nil && code != 400 {
		t.Errorf("plain HTTP on an HTTPS listener: %d %s", code, body)
	}
	if code, _, stderr := cli(t, "an admin's passphrase\n", "users", "add", "root", "--role", "admin", "--password-file", "-", "--data", cfg.DataDir); code != 0 {
		t.Fatalf("users add: %s", stderr)
	}
	resp, err := c.Post("https://"+s.h.httpAddr+"/api/v1/session", "application/json", strings.NewReader(`{"username":"root","password":"an admin's passphrase"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != 200 || len(cookies) != 1 || !cookies[0].Secure || !cookies[0].HttpOnly || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("HTTPS login: %d cookies %+v headers %v", resp.StatusCode, cookies, resp.Header)
	}
}

// broker.password_file is read at validation: a missing or empty file, or both it and
// broker.password, name the key and the fix; a good file gives the trimmed password.
func TestBrokerPasswordFile(t *testing.T) {
	dir := t.TempDir()
	good, empty := filepath.Join(dir, "pw"), filepath.Join(dir, "empty")
	os.WriteFile(good, []byte("s3cret\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tt := range []struct {
		name, file, password, want string
	}{
		{"missing file", filepath.Join(dir, "nope"), "", "config key broker.password_file: "},
		{"empty file", empty, "", "config key broker.password_file: " + empty + " is empty"},
		{"both", good, "inline", "config key broker.password: set broker.password_file or broker.password, not both"},
		{"file", good, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultConfig()
			c.Broker.URL, c.Broker.PasswordFile, c.Broker.Password = "tcp://127.0.0.1:1883", tt.file, tt.password
			err := c.validate()
			if tt.want == "" {
				if pw, perr := c.brokerPassword(); err != nil || perr != nil || pw != "s3cret" {
					t.Fatalf("validate = %v; password %q, %v", err, pw, perr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate = %v, want %q", err, tt.want)
			}
		})
	}
}
