package protocol

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
)

func testManifest() *Manifest {
	return &Manifest{
		V: ManifestVersion, Kind: ManifestBinary, Product: ProductAgent,
		Published: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Expires: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC),
		Version: "v1.2.3", OS: "linux", Arch: "amd64", Channel: "stable",
		SHA256: strings.Repeat("ab", 32), Size: 1000, BinarySignature: "untrusted comment: x\nRWQ...",
	}
}

func TestManifestSignVerify(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := minisign.GenerateKey(rand.Reader)
	sm, err := SignManifest(priv, testManifest())
	if err != nil {
		t.Fatal(err)
	}
	m, err := VerifyManifest([]minisign.PublicKey{other, pub}, sm)
	if err != nil || m.Version != "v1.2.3" {
		t.Fatalf("verify: %v %+v", err, m)
	}
	if _, err := VerifyManifest([]minisign.PublicKey{other}, sm); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("untrusted key accepted: %v", err)
	}
	tampered := sm
	tampered.Body = strings.Replace(sm.Body, "v1.2.3", "v9.2.3", 1)
	if _, err := VerifyManifest([]minisign.PublicKey{pub}, tampered); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered body accepted: %v", err)
	}
}

func TestParseManifestRejects(t *testing.T) {
	for name, mut := range map[string]func(*Manifest){
		"no expiry":     func(m *Manifest) { m.Expires = time.Time{} },
		"bad version":   func(m *Manifest) { m.Version = "abc123" },
		"bad sha":       func(m *Manifest) { m.SHA256 = "XYZ" },
		"zero size":     func(m *Manifest) { m.Size = 0 },
		"huge size":     func(m *Manifest) { m.Size = MaxReleaseBinary + 1 },
		"bad channel":   func(m *Manifest) { m.Channel = "Stable!" },
		"bad os":        func(m *Manifest) { m.OS = "Linux/x" },
		"no signature":  func(m *Manifest) { m.BinarySignature = "" },
		"other kind":    func(m *Manifest) { m.Kind = "script" },
		"other product": func(m *Manifest) { m.Product = "lanebridge-hub" },
		"bad min_from":  func(m *Manifest) { m.MinFrom = "x" },
		"config store":  func(m *Manifest) { m.Kind = ManifestConfig; m.Store = "" },
	} {
		m := testManifest()
		mut(m)
		_, priv, _ := minisign.GenerateKey(rand.Reader)
		if _, err := SignManifest(priv, m); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseManifest([]byte(`{"v":1,"kind":"binary","product":"lanebridge-agent","extra":1}`)); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"v1.0.0", "v2.0.0", -1}, {"1.10.0", "v1.9.9", 1}, {"v1.2.3", "1.2.3", 0},
		{"v1.2.3-rc.1", "v1.2.3", -1}, {"v1.2.3+meta", "v1.2.3", 0}, {"v1.2.3-b", "v1.2.3-a", 1},
	} {
		got, err := CompareVersions(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("%s vs %s: %d %v, want %d", c.a, c.b, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "dev", "66c58b9", "v1.2", "v01.2.3", "v1.2.3-"} {
		if _, err := ParseSemver(bad); !errors.Is(err, ErrNotSemver) {
			t.Errorf("%q parsed", bad)
		}
	}
}
