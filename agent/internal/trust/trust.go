// Package trust holds the minisign public keys this agent build trusts for signed releases and
// configuration pushes. They are built into the binary, never read from configuration: whoever
// can edit the agent's config must not be able to make it trust another signer.
//
// Keys is set at build time:
//
//	go build -ldflags "-X github.com/lanebridge/lanebridge/agent/internal/trust.Keys=RWQ…,RWQ…"
//
// (comma- or newline-separated minisign public keys, the base64 line of a minisign .pub file).
// Key rotation: publish one release signed by the old key whose build trusts both the old and
// the new key; once the fleet runs it, sign with the new key and drop the old one from the next
// build. A build without keys refuses every update and config push, saying why.
package trust

import (
	"errors"
	"fmt"
	"strings"

	"aead.dev/minisign"
)

// Keys is the build's trusted public keys (see the package comment).
var Keys string

// ErrNoKeys reports a build with no trusted keys.
var ErrNoKeys = errors.New("this build trusts no release key (built without -X .../agent/internal/trust.Keys)")

// Trusted parses Keys.
func Trusted() ([]minisign.PublicKey, error) { return Parse(Keys) }

// Parse parses comma- or newline-separated minisign public keys.
func Parse(s string) ([]minisign.PublicKey, error) {
	var keys []minisign.PublicKey
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		f = strings.TrimSpace(f)
		if f == "" || strings.HasPrefix(f, "untrusted comment:") {
			continue
		}
		var k minisign.PublicKey
		if err := k.UnmarshalText([]byte(f)); err != nil {
			return nil, fmt.Errorf("trusted key %q: %w", f, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	return keys, nil
}
