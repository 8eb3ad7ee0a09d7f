package update

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/lanebridge/lanebridge/protocol"
)

type testKey struct {
	pub  minisign.PublicKey
	priv minisign.PrivateKey
}

func newKey(t *testing.T) testKey {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{pub, priv}
}

// release is a binary and its manifest, signed by k.
func release(t *testing.T, k testKey, version string, bin []byte, edit func(*protocol.Manifest)) protocol.SignedManifest {
	t.Helper()
	sum := sha256.Sum256(bin)
	m := &protocol.Manifest{
		V: protocol.ManifestVersion, Kind: protocol.ManifestBinary, Product: protocol.ProductAgent,
		Published: time.Now().UTC(), Expires: time.Now().Add(24 * time.Hour).UTC(),
		Version: version, OS: runtime.GOOS, Arch: runtime.GOARCH, Channel: "stable",
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(bin)),
		BinarySignature: string(minisign.Sign(k.priv, bin)),
	}
	if edit != nil {
		edit(m)
	}
	sm, err := protocol.SignManifest(k.priv, m)
	if err != nil {
		t.Fatal(err)
	}
	return sm
}

// hub stands in for the hub's GET /api/v1/agent/releases/{version}/{os}/{arch}/binary (the
// real endpoint is the hub's; this serves fixed bytes and checks the store's Basic auth).
func hub(t *testing.T, body func() []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "S001" || p != "pw" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Write(body())
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newUpdater(t *testing.T, dir, running, hubURL string, trusted ...minisign.PublicKey) *Updater {
	t.Helper()
	u, err := New(Options{DataDir: dir, HubURL: hubURL, Store: "S001", Password: "pw", Channel: "stable",
		HealthTimeout: 5 * time.Second, Enabled: true, Version: running, Trusted: trusted, Exe: filepath.Join(dir, "agent")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Startup(); err != nil {
		t.Fatal(err)
	}
	return u
}

func offer(u *Updater, sm protocol.SignedManifest, id string) (*Staged, *protocol.UpdateReport) {
	st := u.Offer(context.Background(), &protocol.Command{V: 1, ID: id, Type: protocol.CommandUpdate, Manifest: &sm, URL: "/api/v1/agent/releases/x/binary"})
	return st, u.Report()
}

func TestOfferRefusals(t *testing.T) {
	good, other := newKey(t), newKey(t)
	bin := []byte("#!/bin/sh\necho v2\n")
	served := bin
	srv := hub(t, func() []byte { return served })
	cases := []struct {
		name   string
		sm     func() protocol.SignedManifest
		serve  []byte
		state  string
		detail string
	}{
		{"manifest by an untrusted key", func() protocol.SignedManifest { return release(t, other, "v2.0.0", bin, nil) }, nil, protocol.UpdateRefused, "signature not made by a trusted key"},
		{"manifest altered after signing", func() protocol.SignedManifest {
			sm := release(t, good, "v2.0.0", bin, nil)
			sm.Body = strings.Replace(sm.Body, `"channel":"stable"`, `"channel":"beta"`, 1)
			return sm
		}, nil, protocol.UpdateRefused, "signature not made by a trusted key"},
		{"expired", func() protocol.SignedManifest {
			return release(t, good, "v2.0.0", bin, func(m *protocol.Manifest) { m.Expires = time.Now().Add(-time.Minute) })
		}, nil, protocol.UpdateRefused, "manifest expired"},
		{"wrong os", func() protocol.SignedManifest {
			return release(t, good, "v2.0.0", bin, func(m *protocol.Manifest) { m.OS = "plan9" })
		}, nil, protocol.UpdateRefused, "release is for plan9/"},
		{"wrong arch", func() protocol.SignedManifest {
			return release(t, good, "v2.0.0", bin, func(m *protocol.Manifest) { m.Arch = "mips" })
		}, nil, protocol.UpdateRefused, "/mips, this agent runs on"},
		{"wrong channel", func() protocol.SignedManifest {
			return release(t, good, "v2.0.0", bin, func(m *protocol.Manifest) { m.Channel = "beta" })
		}, nil, protocol.UpdateRefused, `channel "beta", this agent follows "stable"`},
		{"equal to running", func() protocol.SignedManifest { return release(t, good, "v1.0.0", bin, nil) }, nil, protocol.UpdateRefused, "is the running version"},
		{"downgrade below running", func() protocol.SignedManifest { return release(t, good, "v0.9.0", bin, nil) }, nil, protocol.UpdateRefused, "downgrade refused: v0.9.0 is lower than the running v1.0.0"},
		{"below min_from", func() protocol.SignedManifest {
			return release(t, good, "v2.0.0", bin, func(m *protocol.Manifest) { m.MinFrom = "v1.5.0" })
		}, nil, protocol.UpdateRefused, "updates only from v1.5.0 or later"},
		{"binary signed by an untrusted key", func() protocol.SignedManifest {
			return release(t, good, "v2.0.0", bin, func(m *protocol.Manifest) { m.BinarySignature = string(minisign.Sign(other.priv, bin)) })
		}, nil, protocol.UpdateRefused, "which this build does not trust"},
		{"body larger than declared", func() protocol.SignedManifest { return release(t, good, "v2.0.0", bin, nil) },
			append(append([]byte{}, bin...), make([]byte, 1<<20)...), protocol.UpdateRefused, "declares"},
		{"tampered binary (sha256)", func() protocol.SignedManifest { return release(t, good, "v2.0.0", bin, nil) },
			[]byte(strings.Replace(string(bin), "v2", "v6", 1)), protocol.UpdateRefused, "sha256 mismatch"},
		{"binary signature of other bytes", func() protocol.SignedManifest {
			return release(t, good, "v2.0.0", bin, func(m *protocol.Manifest) { m.BinarySignature = string(minisign.Sign(good.priv, []byte("other"))) })
		}, nil, protocol.UpdateRefused, "binary signature does not verify"},
		{"short body", func() protocol.SignedManifest { return release(t, good, "v2.0.0", bin, nil) }, bin[:5], protocol.UpdateFailed, "5 of"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			served = bin
			if tc.serve != nil {
				served = tc.serve
			}
			u := newUpdater(t, dir, "v1.0.0", srv.URL, good.pub)
			st, r := offer(u, tc.sm(), "c1")
			if st != nil {
				t.Fatalf("accepted: %+v", st)
			}
			if r == nil || r.State != tc.state || !strings.Contains(r.Detail, tc.detail) || r.CommandID != "c1" {
				t.Fatalf("report %+v, want %s containing %q", r, tc.state, tc.detail)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "update-*.bin")); len(m) != 0 {
				t.Fatalf("a refused binary was staged: %v", m)
			}
		})
	}
	// And the good one is accepted and staged, executable, with its exact bytes.
	dir := t.TempDir()
	served = bin
	u := newUpdater(t, dir, "v1.0.0", srv.URL, good.pub)
	st, r := offer(u, release(t, good, "v2.0.0", bin, nil), "c2")
	if st == nil {
		t.Fatalf("good release refused: %+v", r)
	}
	if b, err := os.ReadFile(st.Path); err != nil || string(b) != string(bin) {
		t.Fatalf("staged %q %v", b, err)
	}
}

// The highest version ever run is durable: after running v3, an agent back on v2 (restored by
// hand) refuses v2.5.
func TestOfferRefusesBelowHighestRun(t *testing.T) {
	k := newKey(t)
	bin := []byte("binary")
	srv := hub(t, func() []byte { return bin })
	dir := t.TempDir()
	newUpdater(t, dir, "v3.0.0", srv.URL, k.pub)
	u := newUpdater(t, dir, "v2.0.0", srv.URL, k.pub)
	if _, r := offer(u, release(t, k, "v2.5.0", bin, nil), "c1"); r.State != protocol.UpdateRefused || !strings.Contains(r.Detail, "lower than v3.0.0, the highest version this agent has run") {
		t.Fatalf("report %+v", r)
	}
	// A repeated command keeps its first outcome (idempotent by ID).
	if st, _ := offer(u, release(t, k, "v3.1.0", bin, nil), "c1"); st != nil {
		t.Fatal("a repeated command id was handled again")
	}
	// No keys built in: refused, saying why.
	u = newUpdater(t, t.TempDir(), "v1.0.0", srv.URL)
	u.o.TrustErr = os.ErrNotExist
	if _, r := offer(u, release(t, k, "v3.1.0", bin, nil), "c9"); r.State != protocol.UpdateRefused {
		t.Fatalf("no keys: %+v", r)
	}
}

// Signatures made by Debian's minisign CLI verify: the prehashed "ED" default of minisign 0.11
// and the legacy "Ed" form (-l), for the binary and for the manifest.
func TestOfferAcceptsMinisignCLISignatures(t *testing.T) {
	mini, err := exec.LookPath("minisign")
	if err != nil {
		t.Skip("minisign not installed (apt-get install minisign)")
	}
	dir := t.TempDir()
	pubF, keyF := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	if out, err := exec.Command(mini, "-G", "-W", "-p", pubF, "-s", keyF).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v\n%s", err, out)
	}
	pub, err := minisign.PublicKeyFromFile(pubF)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(path string, legacy bool) string {
		args := []string{"-S", "-s", keyF, "-m", path, "-t", "lanebridge test"}
		if legacy {
			args = append(args, "-l")
		}
		if out, err := exec.Command(mini, args...).CombinedOutput(); err != nil {
			t.Fatalf("minisign -S: %v\n%s", err, out)
		}
		b, err := os.ReadFile(path + ".minisig")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	bin := []byte("the v2 binary\x00\x01")
	srv := hub(t, func() []byte { return bin })
	for _, legacy := range []bool{false, true} {
		binF := filepath.Join(dir, "bin")
		os.WriteFile(binF, bin, 0o644)
		binSig := sign(binF, legacy)
		if want := map[bool]string{false: "ED", true: "Ed"}[legacy]; !strings.HasPrefix(b64prefix(t, binSig), want) {
			t.Fatalf("legacy=%v: the CLI made a %q signature, want %q", legacy, b64prefix(t, binSig), want)
		}
		sum := sha256.Sum256(bin)
		m := &protocol.Manifest{
			V: protocol.ManifestVersion, Kind: protocol.ManifestBinary, Product: protocol.ProductAgent,
			Published: time.Now().UTC(), Expires: time.Now().Add(time.Hour).UTC(),
			Version: "v2.0.0", OS: runtime.GOOS, Arch: runtime.GOARCH, Channel: "stable",
			SHA256: hex.EncodeToString(sum[:]), Size: int64(len(bin)), BinarySignature: binSig,
		}
		body, _ := json.Marshal(m)
		bodyF := filepath.Join(dir, "manifest.json")
		os.WriteFile(bodyF, body, 0o644)
		sm := protocol.SignedManifest{Body: string(body), Signature: sign(bodyF, legacy)}
		u := newUpdater(t, t.TempDir(), "v1.0.0", srv.URL, pub)
		st, r := offer(u, sm, "cli")
		if st == nil {
			t.Fatalf("legacy=%v: CLI-signed release refused: %+v", legacy, r)
		}
		// selfupdate's minisign Verifier takes the CLI's signature too: the swap succeeds.
		target := filepath.Join(t.TempDir(), "agent")
		os.WriteFile(target, []byte("v1"), 0o755)
		if err := u.swap(st, &Pending{Target: target, Old: target + ".old"}); err != nil {
			t.Fatalf("legacy=%v: swap with a CLI signature: %v", legacy, err)
		}
		if b, _ := os.ReadFile(target); string(b) != string(bin) {
			t.Fatalf("target after swap: %q", b)
		}
		if b, _ := os.ReadFile(target + ".old"); string(b) != "v1" {
			t.Fatalf("old kept: %q", b)
		}
		// The same signature over tampered bytes is refused.
		if err := VerifyBinary(m, pub, append([]byte("x"), bin[1:]...)); err == nil {
			t.Fatal("tampered binary verified")
		}
	}
}

// b64prefix is the algorithm of a .minisig (the first two bytes of its signature line).
func b64prefix(t *testing.T, minisig string) string {
	t.Helper()
	lines := strings.Split(minisig, "\n")
	var s minisign.Signature
	if err := s.UnmarshalText([]byte(minisig)); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil || len(raw) < 2 {
		t.Fatalf("signature line %q: %v", lines[1], err)
	}
	return string(raw[:2])
}

// The swap re-checks the staged file: a binary altered after verification is not installed.
func TestSwapRefusesAlteredStagedFile(t *testing.T) {
	k := newKey(t)
	bin := []byte("the v2 binary")
	srv := hub(t, func() []byte { return bin })
	u := newUpdater(t, t.TempDir(), "v1.0.0", srv.URL, k.pub)
	st, r := offer(u, release(t, k, "v2.0.0", bin, nil), "c1")
	if st == nil {
		t.Fatalf("refused: %+v", r)
	}
	os.WriteFile(st.Path, []byte("the v6 binary"), 0o755)
	target := filepath.Join(t.TempDir(), "agent")
	os.WriteFile(target, []byte("v1"), 0o755)
	if err := u.swap(st, &Pending{Target: target, Old: target + ".old"}); err == nil {
		t.Fatal("an altered staged binary was swapped in")
	}
	if b, _ := os.ReadFile(target); string(b) != "v1" {
		t.Fatalf("target after a refused swap: %q", b)
	}
}
