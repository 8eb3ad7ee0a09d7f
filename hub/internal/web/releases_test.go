package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

func basic(user, pw string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// releaseFixture is a hub with S001 and S002 holding real credentials and v1.1.0 published
// for linux/amd64 (a file in the releases directory, a secret file beside it).
func releaseFixture(t *testing.T) (f *fixture, pw map[string]string, binary []byte) {
	dir := t.TempDir()
	rels := filepath.Join(dir, "releases")
	os.MkdirAll(rels, 0o755)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("hub secret"), 0o600)
	f = newFixture(t, Options{ReleasesDir: rels, MaxDownloads: 4})
	ctx := context.Background()
	pw = map[string]string{}
	for _, id := range []string{"S001", "S002"} {
		pw[id] = creds.NewPassword()
		if err := f.st.RotateCredentials(ctx, id, creds.Hash(pw[id]), "", 0); err != nil {
			t.Fatal(err)
		}
	}
	binary = []byte(strings.Repeat("lanebridge-agent v1.1.0 ", 5000))
	sum := sha256.Sum256(binary)
	hexsum := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(rels, hexsum), binary, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddRelease(ctx, store.Release{Version: "v1.1.0", OS: "linux", Arch: "amd64", Channel: "stable", SHA256: hexsum,
		Size: int64(len(binary)), Manifest: protocol.SignedManifest{Body: "{}", Signature: "s"}, File: hexsum, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return f, pw, binary
}

const binPath = "/api/v1/agent/releases/v1.1.0/linux/amd64/binary"

func TestReleaseDownload(t *testing.T) {
	f, pw, binary := releaseFixture(t)
	ctx := context.Background()
	r := f.do(t, "GET", binPath+"?channel=stable", "", basic("S001", pw["S001"]))
	if r.code != 200 || r.body != string(binary) || r.h.Get("Content-Length") != fmt.Sprint(len(binary)) ||
		r.h.Get("Content-Type") != "application/octet-stream" || len(r.h.Get("X-Lanebridge-SHA256")) != 64 {
		t.Fatalf("download: %d, %d bytes, headers %v", r.code, len(r.body), r.h)
	}
	// Any store of the fleet may fetch it (S002 is in no rollout); the channel defaults to stable.
	if r := f.do(t, "GET", binPath, "", basic("S002", pw["S002"])); r.code != 200 || len(r.body) != len(binary) {
		t.Fatalf("S002: %d", r.code)
	}
	// A resumed download gets the rest.
	if r := f.do(t, "GET", binPath, "", basic("S001", pw["S001"]), "Range: bytes=100-"); r.code != 206 || r.body != string(binary[100:]) {
		t.Fatalf("range: %d %d bytes", r.code, len(r.body))
	}
	if r := f.do(t, "GET", binPath+"?channel=beta", "", basic("S001", pw["S001"])); r.code != 404 {
		t.Fatalf("unpublished channel: %d", r.code)
	}

	// The attacks: each refused, none gets a byte of the binary.
	if err := f.st.AddStore(ctx, "S003", ""); err != nil { // a store with no password (nothing can match)
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		hdr  string
		code int
	}{
		{"no credentials", "", 401},
		{"other store's password", basic("S001", pw["S002"]), 401},
		{"wrong password", basic("S001", pw["S001"]+"x"), 401},
		{"empty password", basic("S001", ""), 401},
		{"store without credentials", basic("S003", ""), 401},
		{"store without credentials, any password", basic("S003", "x"), 401},
		{"unknown store", basic("S999", pw["S001"]), 401},
		{"not a store id", basic("../S001", pw["S001"]), 401},
		{"admin API token", bearer(f.admin), 403},
		{"bearer with a store password", bearer(pw["S001"]), 401},
	} {
		r := f.do(t, "GET", binPath, "", c.hdr)
		if r.code != c.code || strings.Contains(r.body, "lanebridge-agent v1.1.0") {
			t.Errorf("%s: %d (%d bytes), want %d", c.name, r.code, len(r.body), c.code)
		}
	}
	// A store's credentials open nothing else.
	for _, path := range []string{"/api/v1/stores", "/api/v1/stores/S001", "/api/v1/releases", "/rollouts", "/metrics"} {
		if r := f.do(t, "GET", path, "", basic("S001", pw["S001"])); r.code != 403 {
			t.Errorf("store credentials on %s: %d, want 403", path, r.code)
		}
	}
	// Path traversal in version, os and arch: refused before any file is opened.
	for _, p := range []string{
		"/api/v1/agent/releases/..%2F..%2Fsecret.txt/linux/amd64/binary",
		"/api/v1/agent/releases/v1.1.0/..%2F..%2F/amd64/binary",
		"/api/v1/agent/releases/v1.1.0/linux/..%2Fsecret.txt/binary",
		"/api/v1/agent/releases/v1.1.0/linux/%2e%2e/binary",
		"/api/v1/agent/releases/v1.1.0%2F..%2F..%2Fsecret.txt/linux/amd64/binary",
		"/api/v1/agent/releases/v1.1.0/LINUX/amd64/binary",
	} {
		r := f.do(t, "GET", p, "", basic("S001", pw["S001"]))
		if (r.code != 400 && r.code != 404) || strings.Contains(r.body, "hub secret") {
			t.Errorf("%s: %d %s", p, r.code, r.body)
		}
	}
	// A damaged row naming a path outside the directory is not followed.
	if _, err := f.st.AddRelease(ctx, store.Release{Version: "v1.2.0", OS: "linux", Arch: "amd64", Channel: "stable", SHA256: strings.Repeat("0", 64),
		Size: 10, File: "../secret.txt", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "GET", "/api/v1/agent/releases/v1.2.0/linux/amd64/binary", "", basic("S001", pw["S001"])); r.code != 500 || strings.Contains(r.body, "hub secret") {
		t.Errorf("bad file name: %d %s", r.code, r.body)
	}
	// A disabled store is refused with its right password; a rotated-out password works only during its grace.
	if err := f.st.SetStoreState(ctx, "S002", store.StoreDisabled); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "GET", binPath, "", basic("S002", pw["S002"])); r.code != 401 {
		t.Errorf("disabled store: %d", r.code)
	}
	newPw := creds.NewPassword()
	if err := f.st.RotateCredentials(ctx, "S001", creds.Hash(newPw), "", time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pw["S001"], newPw} {
		if r := f.do(t, "GET", binPath, "", basic("S001", p)); r.code != 200 {
			t.Errorf("during the grace: %d", r.code)
		}
	}
	if err := f.st.RevokePreviousCredentials(ctx, "S001"); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "GET", binPath, "", basic("S001", pw["S001"])); r.code != 401 {
		t.Errorf("revoked password: %d", r.code)
	}
}

func TestDownloadLimits(t *testing.T) {
	d := newDownloads(2)
	if c, _ := d.acquire("S001"); c != 0 {
		t.Fatal(c)
	}
	if c, _ := d.acquire("S001"); c != http.StatusTooManyRequests {
		t.Fatalf("second download of one store: %d", c)
	}
	if c, _ := d.acquire("S002"); c != 0 {
		t.Fatal(c)
	}
	if c, msg := d.acquire("S003"); c != http.StatusServiceUnavailable || !strings.Contains(msg, "rollouts.max_downloads") {
		t.Fatalf("third of two: %d %s", c, msg)
	}
	d.release("S001")
	if c, _ := d.acquire("S003"); c != 0 {
		t.Fatalf("after a release: %d", c)
	}
}

func TestRolloutsPageAndAPI(t *testing.T) {
	f, _, _ := releaseFixture(t)
	ctx := context.Background()
	rels, _ := f.st.Releases(ctx, "v1.1.0")
	id, err := f.st.AddRollout(ctx, store.Rollout{Version: "v1.1.0", MaxFailures: "5%", CreatedBy: "cli:ana",
		Waves: []store.Wave{{Wave: 0, Target: "1", Stores: 1}, {Wave: 1, Target: "100%", Stores: 2}}},
		[]store.RolloutStore{{Store: "S001", Wave: 0, Release: rels[0].ID, FromVersion: "v1.0.0"}, {Store: "S002", Wave: 1, Release: rels[0].ID}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutRolloutStore(ctx, id, store.RolloutStore{Store: "S001", State: protocol.UpdateTrial, CommandID: "c", Attempts: 1, SentAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "GET", "/rollouts", "", bearer(f.admin))
	for _, want := range []string{"Rollout 1: v1.1.0", "running", "S001", "S002", "trial 1", "pending 1", "Releases", rels[0].SHA256} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/rollouts lacks %q", want)
		}
	}
	if strings.Contains(r.body, "<script>") || strings.Contains(r.body, "style=") {
		t.Error("inline script or style on /rollouts")
	}
	// Scoped: a viewer of S002 sees the rollout but not S001's row.
	tok := f.token(t, "v2", "viewer", "S002")
	r = f.do(t, "GET", "/api/v1/rollouts", "", bearer(tok))
	if r.code != 200 || !strings.Contains(r.body, `"store": "S002"`) || strings.Contains(r.body, `"store": "S001"`) {
		t.Fatalf("scoped rollouts: %d %s", r.code, r.body)
	}
	if r := f.do(t, "GET", fmt.Sprintf("/api/v1/rollouts/%d", id), "", bearer(f.admin)); r.code != 200 || !strings.Contains(r.body, `"trial": 1`) {
		t.Fatalf("rollout: %d %s", r.code, r.body)
	}
	if r := f.do(t, "GET", "/api/v1/releases", "", bearer(tok)); r.code != 200 || !strings.Contains(r.body, `"version": "v1.1.0"`) || strings.Contains(r.body, "manifest") {
		t.Fatalf("releases: %d %s", r.code, r.body)
	}
}

func TestVersionSummary(t *testing.T) {
	st := func(v, os string) store.StoreInfo {
		return store.StoreInfo{Status: &protocol.Status{Version: v, OS: os, Arch: "amd64"}}
	}
	got := versionSummary([]store.StoreInfo{st("v1.2.0", "linux"), st("v1.10.0", "linux"), st("v1.2.0", "linux"), st("dev", ""),
		{}, st("v1.2.0", "windows")})
	want := "[{v1.10.0 linux/amd64 1} {v1.2.0 linux/amd64 2} {v1.2.0 windows/amd64 1} {dev amd64 1} {unknown  1}]"
	if fmt.Sprint(got) != want {
		t.Fatalf("summary %v, want %s", got, want)
	}
	f, _, _ := releaseFixture(t)
	if err := f.st.PutStatus(context.Background(), protocol.Status{V: protocol.Version, Store: "S001", State: "online", Version: "v1.1.0",
		OS: "linux", Arch: "amd64", Clock: time.Now(), Update: &protocol.UpdateReport{Version: "v1.2.0", State: protocol.UpdateRolledBack,
			Detail: "health check failed"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "GET", "/", "", bearer(f.admin))
	if v := between(r.body, `id="fleet-versions"`, "</p>"); !strings.Contains(v, "v1.1.0 linux/amd64</span> × 1") || !strings.Contains(v, "unknown</span> × 1") {
		t.Fatalf("fleet versions: %s", v)
	}
	if row := between(r.body, `<tr data-id="S001"`, "</tr>"); !strings.Contains(row, "v1.1.0 (update v1.2.0: rolled_back health check failed)") {
		t.Fatalf("fleet row does not show the failed update: %s", row)
	}
}
