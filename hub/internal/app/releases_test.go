package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// goKey writes a minisign key pair made with aead.dev/minisign (unencrypted) to dir.
func goKey(t *testing.T, dir string) (sec, pub string) {
	t.Helper()
	pk, sk, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := sk.MarshalText()
	pb, _ := pk.MarshalText()
	sec, pub = filepath.Join(dir, "go.key"), filepath.Join(dir, "go.pub")
	if err := os.WriteFile(sec, sb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, append(pb, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return sec, pub
}

// debianKey makes an unencrypted key pair with Debian's minisign -G -W.
func debianKey(t *testing.T, dir string) (sec, pub string) {
	t.Helper()
	sec, pub = filepath.Join(dir, "deb.key"), filepath.Join(dir, "deb.pub")
	if out, err := exec.Command("minisign", "-G", "-W", "-s", sec, "-p", pub).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G -W (apt-get install minisign): %v\n%s", err, out)
	}
	return sec, pub
}

// minisignVerify runs Debian's minisign -V on file with signature text sig.
func minisignVerify(t *testing.T, pub, file, sig string) error {
	t.Helper()
	sigPath := filepath.Join(t.TempDir(), "x.minisig")
	if err := os.WriteFile(sigPath, []byte(sig), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("minisign", "-V", "-q", "-p", pub, "-m", file, "-x", sigPath).CombinedOutput()
	if err != nil {
		t.Logf("minisign -V %s: %s", filepath.Base(file), out)
	}
	return err
}

func newHubData(t *testing.T) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "hub")
	if code, _, errOut := cli(t, "", "stores", "add", "S001", "--data", data, "--create", "--out", filepath.Join(t.TempDir(), "agent.yaml")); code != 0 {
		t.Fatal(errOut)
	}
	return data
}

func openData(t *testing.T, data string) *store.DB {
	t.Helper()
	cfg := defaultConfig()
	cfg.DataDir = data
	st, err := openStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestReleasesPublish(t *testing.T) {
	data := newHubData(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "lanebridge-agent")
	payload := make([]byte, 300<<10)
	rand.Read(payload)
	if err := os.WriteFile(bin, payload, 0o755); err != nil {
		t.Fatal(err)
	}
	goSec, goPub := goKey(t, dir)
	debSec, debPub := debianKey(t, dir)
	for _, k := range []struct{ name, sec, pub, version string }{{"go key", goSec, goPub, "v1.2.0"}, {"minisign -G -W key", debSec, debPub, "v1.3.0"}} {
		t.Run(k.name, func(t *testing.T) {
			code, out, errOut := cli(t, "", "releases", "publish", "--binary", bin, "--version", k.version, "--os", "linux", "--arch", "amd64",
				"--key", k.sec, "--min-from", "v1.0.0", "--expires", "7d", "--data", data)
			if code != 0 || !strings.Contains(out, "published release") || !strings.Contains(out, k.version+" linux/amd64 stable") {
				t.Fatalf("publish: %d %s %s", code, out, errOut)
			}
			st := openData(t, data)
			rels, err := st.Releases(context.Background(), k.version)
			if err != nil || len(rels) != 1 {
				t.Fatalf("releases %v, %v", rels, err)
			}
			r := rels[0]
			if r.Size != int64(len(payload)) || r.MinFrom != "v1.0.0" || !strings.HasPrefix(r.PublishedBy, "cli:") ||
				time.Until(r.Expires) < 6*24*time.Hour || time.Until(r.Expires) > 7*24*time.Hour {
				t.Fatalf("release %+v", r)
			}
			stored := filepath.Join(data, "releases", r.SHA256)
			if fi, err := os.Stat(stored); err != nil || fi.Mode().Perm() != 0o644 || fi.Size() != r.Size {
				t.Fatalf("stored binary %v %v", fi, err)
			}
			// The agent's check: the manifest verifies against the public key and carries the fields.
			pk, err := minisign.PublicKeyFromFile(k.pub)
			if err != nil {
				t.Fatal(err)
			}
			m, err := protocol.VerifyManifest([]minisign.PublicKey{pk}, r.Manifest)
			if err != nil || m.Version != k.version || m.SHA256 != r.SHA256 || m.Size != r.Size || m.OS != "linux" || m.Channel != "stable" {
				t.Fatalf("manifest %+v, %v", m, err)
			}
			// Debian's minisign accepts both signatures; it refuses a tampered binary.
			if err := minisignVerify(t, k.pub, stored, m.BinarySignature); err != nil {
				t.Fatalf("minisign -V of the binary: %v", err)
			}
			body := filepath.Join(t.TempDir(), "manifest.json")
			os.WriteFile(body, []byte(r.Manifest.Body), 0o644)
			if err := minisignVerify(t, k.pub, body, r.Manifest.Signature); err != nil {
				t.Fatalf("minisign -V of the manifest: %v", err)
			}
			tampered := filepath.Join(t.TempDir(), "tampered")
			bad := append([]byte{}, payload...)
			bad[1000] ^= 1
			os.WriteFile(tampered, bad, 0o644)
			if err := minisignVerify(t, k.pub, tampered, m.BinarySignature); err == nil {
				t.Fatal("minisign -V accepted a tampered binary")
			}
			// The same version again is refused, naming the fix.
			code, _, errOut = cli(t, "", "releases", "publish", "--binary", bin, "--version", k.version, "--os", "linux", "--arch", "amd64",
				"--key", k.sec, "--data", data)
			if code != 1 || !strings.Contains(errOut, "already published") {
				t.Fatalf("republish: %d %s", code, errOut)
			}
			audit, _ := st.Audit(context.Background(), 0, 5)
			found := false
			for _, a := range audit {
				found = found || a.Action == "releases publish" && a.Target == k.version && strings.HasPrefix(a.Actor, "cli:")
			}
			if !found {
				t.Fatalf("no audit entry: %+v", audit)
			}
		})
	}
	_, out, _ := cli(t, "", "releases", "list", "--data", data)
	if !strings.Contains(out, "v1.2.0") || !strings.Contains(out, "v1.3.0") || !strings.Contains(out, "v1.0.0") {
		t.Fatalf("releases list:\n%s", out)
	}

	// Bad input: each refused with the flag named.
	encrypted := filepath.Join(dir, "enc.key")
	raw, _ := os.ReadFile(goSec)
	lines := strings.SplitN(string(raw), "\n", 2)
	b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(lines[1]))
	b[2], b[3] = 'S', 'c' // marks it scrypt-encrypted
	os.WriteFile(encrypted, []byte(lines[0]+"\n"+base64.StdEncoding.EncodeToString(b)+"\n"), 0o600)
	garbage := filepath.Join(dir, "garbage.key")
	os.WriteFile(garbage, []byte("not a key\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--version", "1.4", "--key", goSec}, "--version"},
		{[]string{"--version", "1.4.0", "--key", goSec}, "write it as v1.4.0"},
		{[]string{"--version", "v1.4.0", "--key", garbage}, "not a minisign secret key"},
		{[]string{"--version", "v1.4.0", "--key", encrypted}, releaseKeyPasswordEnv},
		{[]string{"--version", "v1.4.0", "--key", goSec, "--expires", "never"}, "every manifest expires"},
		{[]string{"--version", "v1.4.0", "--key", goSec, "--binary", filepath.Join(dir, "missing")}, "--binary"},
	} {
		args := append([]string{"releases", "publish", "--binary", bin, "--os", "linux", "--arch", "amd64", "--data", data}, c.args...)
		if code, _, errOut := cli(t, "", args...); code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("publish %v: %d %s; want %q", c.args, code, errOut, c.want)
		}
	}
}

func TestRolloutsCLI(t *testing.T) {
	data := newHubData(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "agent")
	os.WriteFile(bin, []byte("binary v2"), 0o755)
	sec, _ := goKey(t, dir)
	st := openData(t, data)
	ctx := context.Background()
	for _, id := range []string{"S002", "S003", "S004"} {
		if err := st.AddStore(ctx, id, "h"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"S001", "S002", "S003"} {
		if err := st.PutStatus(ctx, protocol.Status{V: protocol.Version, Store: id, State: "online", Version: "v1.0.0", OS: "linux", Arch: "amd64", Clock: time.Now()}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errOut := cli(t, "", "rollouts", "start", "--release", "v2.0.0", "--data", data); code != 1 || !strings.Contains(errOut, "not published") {
		t.Fatalf("rollout of an unpublished release: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "", "releases", "publish", "--binary", bin, "--version", "v2.0.0", "--os", "linux", "--arch", "amd64", "--key", sec, "--data", data); code != 0 {
		t.Fatal(errOut)
	}
	for _, bad := range [][]string{{"--waves", "10%,5%"}, {"--waves", "1,50%"}, {"--max-failures", "lots"}} {
		if code, _, errOut := cli(t, "", append([]string{"rollouts", "start", "--release", "v2.0.0", "--data", data}, bad...)...); code != 1 || !strings.Contains(errOut, bad[0]) {
			t.Errorf("rollouts start %v: %d %s", bad, code, errOut)
		}
	}
	code, out, errOut := cli(t, "", "rollouts", "start", "--release", "v2.0.0", "--waves", "1,100%", "--max-failures", "1", "--data", data)
	if code != 0 || !strings.Contains(out, "started rollout 1: v2.0.0 to 3 stores") || !strings.Contains(out, "1=1 100%=3") ||
		!strings.Contains(errOut, "S004: reports no os/arch") {
		t.Fatalf("rollouts start: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := cli(t, "", "rollouts", "start", "--release", "v2.0.0", "--data", data); code != 1 || !strings.Contains(errOut, "another rollout") {
		t.Fatalf("second rollout: %d %s", code, errOut)
	}
	_, out, _ = cli(t, "", "rollouts", "status", "1", "--data", data)
	if !strings.Contains(out, "rollout 1 of v2.0.0: running, wave 1 of 2") || !strings.Contains(out, "S003") || !strings.Contains(out, "pending") {
		t.Fatalf("rollouts status 1:\n%s", out)
	}
	steps := []struct {
		verb string
		code int
		want string
	}{{"resume", 1, "needs a rollout that is paused"}, {"pause", 0, "rollout 1 paused"}, {"pause", 1, "needs a rollout that is running"},
		{"resume", 0, "rollout 1 running"}, {"abort", 0, "rollout 1 aborted"}, {"resume", 1, "is aborted"}}
	for _, s := range steps {
		if code, _, errOut := cli(t, "", "rollouts", s.verb, "1", "--data", data); code != s.code || !strings.Contains(errOut, s.want) {
			t.Errorf("rollouts %s: %d %s; want %d %q", s.verb, code, errOut, s.code, s.want)
		}
	}
	if code, _, errOut := cli(t, "", "rollouts", "abort", "7", "--data", data); code != 1 || !strings.Contains(errOut, "no rollout 7") {
		t.Errorf("abort unknown: %d %s", code, errOut)
	}
	_, out, _ = cli(t, "", "rollouts", "status", "--data", data)
	if !strings.Contains(out, "aborted") || !strings.Contains(out, "aborted by cli:") {
		t.Fatalf("rollouts status:\n%s", out)
	}
	audit, _ := st.Audit(ctx, 0, 20)
	var actions []string
	for _, a := range audit {
		actions = append(actions, a.Action)
	}
	j := strings.Join(actions, ",")
	for _, want := range []string{"rollouts start", "rollouts pause", "rollouts resume", "rollouts abort"} {
		if !strings.Contains(j, want) {
			t.Errorf("audit lacks %s: %s", want, j)
		}
	}
}

// encryptedKey writes key encrypted the way minisign does (scrypt keystream, BLAKE2b tag), with
// cheap scrypt parameters in the file (minisign's own cost 1 GiB; DecryptKey reads them from
// the file).
func encryptedKey(t *testing.T, path, password string, sk minisign.PrivateKey) {
	t.Helper()
	raw, _ := sk.MarshalText()
	plain, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[1]))
	if err != nil {
		t.Fatal(err)
	}
	const ops, mem = 1 << 15, 1 << 20 // scrypt N=1024, r=8, p=1
	salt := make([]byte, 32)
	rand.Read(salt)
	stream, err := scrypt.Key([]byte(password), salt, 1024, 8, 1, 104)
	if err != nil {
		t.Fatal(err)
	}
	var msg [74]byte
	binary.LittleEndian.PutUint16(msg[:], minisign.EdDSA)
	copy(msg[2:], plain[54:126])
	tag := blake2b.Sum256(msg[:])
	ct := append(append([]byte{}, plain[54:126]...), tag[:]...)
	for i := range ct {
		ct[i] ^= stream[i]
	}
	b := make([]byte, 158)
	binary.LittleEndian.PutUint16(b[0:], minisign.EdDSA)
	binary.LittleEndian.PutUint16(b[2:], 0x6353) // Sc: scrypt
	binary.LittleEndian.PutUint16(b[4:], 0x3242) // B2
	copy(b[6:], salt)
	binary.LittleEndian.PutUint64(b[38:], ops)
	binary.LittleEndian.PutUint64(b[46:], mem)
	copy(b[54:], ct)
	text := "untrusted comment: minisign encrypted secret key\n" + base64.StdEncoding.EncodeToString(b) + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReleasesPublishEncryptedKey(t *testing.T) {
	data := newHubData(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "agent")
	os.WriteFile(bin, []byte("binary"), 0o755)
	pk, sk, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "enc.key")
	encryptedKey(t, key, "correct horse", sk)
	args := []string{"releases", "publish", "--binary", bin, "--version", "v1.0.1", "--os", "linux", "--arch", "arm64", "--key", key, "--data", data}
	t.Setenv(releaseKeyPasswordEnv, "wrong horse")
	if code, _, errOut := cli(t, "", args...); code != 1 || !strings.Contains(errOut, "wrong password") {
		t.Fatalf("wrong password: %d %s", code, errOut)
	}
	t.Setenv(releaseKeyPasswordEnv, "correct horse")
	if code, _, errOut := cli(t, "", args...); code != 0 {
		t.Fatalf("publish with an encrypted key: %s", errOut)
	}
	rels, _ := openData(t, data).Releases(context.Background(), "v1.0.1")
	if len(rels) != 1 {
		t.Fatal(rels)
	}
	if _, err := protocol.VerifyManifest([]minisign.PublicKey{pk}, rels[0].Manifest); err != nil {
		t.Fatal(err)
	}
}
