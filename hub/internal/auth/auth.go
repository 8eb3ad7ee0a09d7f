// Package auth is the hub's operator and API authentication core: roles and principals,
// argon2id password hashes, API tokens and session ids, and the login throttle.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Role is what a principal may do; each role may do everything the lower ones may.
type Role int

// Roles in increasing order of power.
const (
	// None is no role: the routes that need none are public.
	None Role = iota
	// Viewer reads.
	Viewer
	// Operator also works exceptions, closes days, requests replays and re-posts.
	Operator
	// Admin also manages users, tokens and stores and reads the audit log.
	Admin
)

// Agent is the role of a store's agent (a KindStore principal, HTTP Basic with the store's
// broker credentials). It admits only the routes registered with it, and those admit nothing
// else: it is not above Admin, it is apart (the web guard checks the kind both ways). No user
// or token can have it: ParseRole does not read it.
const Agent Role = 100

var roleNames = []string{"none", "viewer", "operator", "admin"}

func (r Role) String() string {
	if r == Agent {
		return "agent"
	}
	if r < None || int(r) >= len(roleNames) {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return roleNames[r]
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// ParseRole reads viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	if i := slices.Index(roleNames, s); i > 0 {
		return Role(i), nil
	}
	return None, fmt.Errorf("role %q: use viewer, operator or admin", s)
}

// Principal kinds.
const (
	KindUser  = "user"
	KindToken = "token"
	// KindStore is a store's agent, authenticated by its broker credentials.
	KindStore = "store"
)

// Principal is who makes a request: an operator logged in with a session, or an API token.
type Principal struct {
	Kind string // KindUser or KindToken
	Name string
	Role Role
	// Stores limits the principal to these stores; empty means every store.
	Stores []string
}

// MayStore reports whether the principal may see and act on the store.
func (p *Principal) MayStore(id string) bool {
	return len(p.Stores) == 0 || slices.Contains(p.Stores, id)
}

// String names the principal for audit and exception records: "user:ana", "token:ci".
func (p *Principal) String() string { return p.Kind + ":" + p.Name }

// ParseStores reads a --stores list ("S001,S002"); empty is every store.
func ParseStores(s string, valid func(string) error) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, id := range strings.Split(s, ",") {
		id = strings.TrimSpace(id)
		if err := valid(id); err != nil {
			return nil, fmt.Errorf("--stores: %w", err)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// TokenPrefix starts every API token, so a leaked one is recognisable.
const TokenPrefix = "lbt_"

// NewToken returns a new API token: TokenPrefix and 32 random bytes, base64url.
func NewToken() string { return TokenPrefix + randomString(32) }

// NewSessionID returns a new session id (32 random bytes, base64url).
func NewSessionID() string { return randomString(32) }

// NewCSRFToken returns a new CSRF token for a session.
func NewCSRFToken() string { return randomString(24) }

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("auth: no randomness: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is the stored form of a high-entropy secret (token, session id): hex SHA-256.
// Such secrets cannot be guessed, so a slow hash would add nothing.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
