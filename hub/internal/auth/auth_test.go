package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

func TestPasswordHash(t *testing.T) {
	const pw = "correct horse battery"
	h := HashPassword(pw)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=1,p=1$") || strings.Contains(h, pw) {
		t.Fatalf("hash %q", h)
	}
	if h == HashPassword(pw) {
		t.Error("two hashes of one password are equal: no salt")
	}
	if !VerifyPassword(h, pw) {
		t.Error("right password rejected")
	}
	for _, bad := range []string{"", "correct horse batterY", pw + " "} {
		if VerifyPassword(h, bad) {
			t.Errorf("wrong password %q accepted", bad)
		}
	}
	// Verification uses the parameters stored in the hash, not the defaults.
	cheap := HashPasswordWith(pw, Params{Memory: 1024, Time: 1, Threads: 1})
	if !VerifyPassword(cheap, pw) || VerifyPassword(cheap, "x") {
		t.Error("hash with other parameters not verified by them")
	}
	for _, bad := range []string{"", "sha256$00$00", strings.Replace(h, "argon2id", "argon2i", 1),
		strings.Replace(h, "m=65536", "m=4194304", 1), strings.Replace(h, "t=1", "t=0", 1), h[:len(h)-20]} {
		if VerifyPassword(bad, pw) {
			t.Errorf("malformed hash %q verified", bad)
		}
	}
	if VerifyNobody(pw) {
		t.Error("VerifyNobody true")
	}
}

func TestCheckPassword(t *testing.T) {
	if err := CheckPassword("elevenchars"); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("11 chars: %v", err)
	}
	if err := CheckPassword("twelve chars"); err != nil {
		t.Errorf("12 chars: %v", err)
	}
}

func TestRolesAndPrincipal(t *testing.T) {
	for _, name := range []string{"viewer", "operator", "admin"} {
		r, err := ParseRole(name)
		if err != nil || r.String() != name {
			t.Errorf("ParseRole(%q) = %v, %v", name, r, err)
		}
	}
	for _, bad := range []string{"", "none", "root", "Admin"} {
		if _, err := ParseRole(bad); err == nil {
			t.Errorf("ParseRole(%q) accepted", bad)
		}
	}
	if !(Viewer < Operator && Operator < Admin) {
		t.Error("roles not ordered")
	}
	p := Principal{Kind: KindUser, Name: "ana", Role: Viewer, Stores: []string{"S001"}}
	if !p.MayStore("S001") || p.MayStore("S002") || p.String() != "user:ana" {
		t.Errorf("principal %+v", p)
	}
	if all := (Principal{}); !all.MayStore("S999") {
		t.Error("unrestricted principal refused a store")
	}
	got, err := ParseStores(" S001,S002,S001 ", protocol.ValidateStoreID)
	if err != nil || len(got) != 2 || got[1] != "S002" {
		t.Errorf("ParseStores = %v, %v", got, err)
	}
	if _, err := ParseStores("S001,,S2", protocol.ValidateStoreID); err == nil {
		t.Error("empty store id accepted")
	}
}

func TestSecrets(t *testing.T) {
	a, b := NewToken(), NewToken()
	if !strings.HasPrefix(a, TokenPrefix) || len(a) < len(TokenPrefix)+43 || a == b {
		t.Errorf("tokens %q %q", a, b)
	}
	if h := HashSecret(a); len(h) != 64 || h == HashSecret(b) || strings.Contains(h, a) {
		t.Errorf("hash %q", h)
	}
	if s1, s2 := NewSessionID(), NewSessionID(); s1 == s2 || len(s1) != 43 {
		t.Errorf("session ids %q %q", s1, s2)
	}
}

func TestThrottle(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	th := NewThrottle(func() time.Time { return now })
	keys := []string{"user:ana", "ip:192.0.2.1"}
	for i := range 3 {
		if w := th.Try(keys...); w != 0 {
			t.Fatalf("attempt %d: wait %s, want none (free attempts)", i+1, w)
		}
	}
	// Back-off doubles per failure and stops at the cap; any throttled key throttles.
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		for _, ks := range [][]string{{"user:ana"}, {"ip:192.0.2.9", "user:ana"}, keys} {
			if got := th.Try(ks...); got != w {
				t.Fatalf("after %d failures: Try(%v) waits %s, want %s", 3+i, ks, got, w)
			}
		}
		now = now.Add(w - time.Millisecond)
		if got := th.Try(keys...); got != time.Millisecond {
			t.Fatalf("a refused attempt counted: wait %s", got)
		}
		now = now.Add(time.Millisecond)
		if got := th.Try(keys...); got != 0 {
			t.Fatalf("wait %s after waiting it out", got)
		}
	}
	if th.Try("ip:192.0.2.9") != 0 {
		t.Error("an address that never failed is throttled")
	}
	th.Succeed("user:ana")
	if got := th.Try("user:ana"); got != 0 {
		t.Errorf("success did not forget: %s", got)
	}
	if got := th.Try("ip:192.0.2.1"); got == 0 {
		t.Error("address forgotten with the user")
	}
	for range 30 {
		now = now.Add(th.Max)
		th.Try("user:ana")
	}
	if got := th.Try("user:ana"); got != th.Max {
		t.Errorf("wait %s, want cap %s", got, th.Max)
	}
	if got := th.Try("user:bob"); got != 0 {
		t.Errorf("other user throttled: %s", got)
	}
}
