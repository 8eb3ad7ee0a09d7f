package creds

import "testing"

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
