package trust

import (
	"crypto/rand"
	"errors"
	"testing"

	"aead.dev/minisign"
)

func TestParse(t *testing.T) {
	a, _, _ := minisign.GenerateKey(rand.Reader)
	b, _, _ := minisign.GenerateKey(rand.Reader)
	at, _ := a.MarshalText()
	bt, _ := b.MarshalText()
	keys, err := Parse("untrusted comment: minisign public key\n" + string(at) + " , " + string(bt) + "\n")
	if err != nil || len(keys) != 2 || keys[0].ID() != a.ID() || keys[1].ID() != b.ID() {
		t.Fatalf("parse: %v %d", err, len(keys))
	}
	if _, err := Parse(""); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := Parse("RWQnotakey"); err == nil {
		t.Fatal("garbage accepted")
	}
}
