package creds

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	pw := NewPassword()
	h := Hash(pw)
	if !Verify(h, pw) {
		t.Fatal("Verify(Hash(pw), pw) = false")
	}
	for _, bad := range []string{"", pw + "x", pw[:len(pw)-1]} {
		if Verify(h, bad) {
			t.Errorf("Verify accepted %q", bad)
		}
	}
	if Hash(pw) == h {
		t.Error("two hashes of one password are equal: salt missing")
	}
	if Verify("md5$00$00", pw) || Verify("garbage", pw) {
		t.Error("Verify accepted a malformed hash")
	}
}

// Lines written by the real mosquitto_passwd verify with VerifyMosquitto (same PBKDF2, salt and
// encoding), and ours have its shape; that mosquitto accepts ours is shown by the tests against
// a running Mosquitto (hub/internal/app).
func TestMosquittoHashMatchesMosquittoPasswd(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	pw := NewPassword()
	f := filepath.Join(t.TempDir(), "passwd")
	if out, err := exec.Command(bin, "-c", "-b", f, "S1", pw).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	b, _ := os.ReadFile(f)
	ref := strings.TrimPrefix(strings.TrimSpace(string(b)), "S1:")
	if !VerifyMosquitto(ref, pw) {
		t.Fatalf("VerifyMosquitto(%q) = false for mosquitto_passwd's own line", ref)
	}
	if VerifyMosquitto(ref, pw+"x") {
		t.Fatal("VerifyMosquitto accepted a wrong password")
	}
	ours := MosquittoHash(pw)
	if !VerifyMosquitto(ours, pw) || ours == MosquittoHash(pw) {
		t.Fatalf("MosquittoHash = %q: does not verify, or no fresh salt", ours)
	}
	p, q := strings.Split(ours, "$"), strings.Split(ref, "$")
	if len(p) != len(q) || p[2] != q[2] || len(p[3]) != len(q[3]) || len(p[4]) != len(q[4]) {
		t.Fatalf("shape of %q differs from mosquitto_passwd's %q", ours, ref)
	}
}
