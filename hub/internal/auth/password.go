package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// MinPasswordLen is the shortest operator password accepted.
const MinPasswordLen = 12

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultParams: 64 MiB as in RFC 9106's second recommended option, one pass and one lane
// (above OWASP's m=46MiB,t=1 minimum), so a login costs 50–100 ms on a small, busy server.
var DefaultParams = Params{Memory: 64 * 1024, Time: 1, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// CheckPassword rejects passwords too short to be one.
func CheckPassword(pw string) error {
	if len([]rune(pw)) < MinPasswordLen {
		return fmt.Errorf("password: %d characters is too short; use at least %d", len([]rune(pw)), MinPasswordLen)
	}
	return nil
}

// HashPassword returns the argon2id hash of pw in PHC string form
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash) with DefaultParams.
func HashPassword(pw string) string { return HashPasswordWith(pw, DefaultParams) }

// HashPasswordWith is HashPassword with the given parameters.
func HashPasswordWith(pw string, p Params) string {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		panic("auth: no randomness: " + err.Error())
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key))
}

var errBadHash = errors.New("not an argon2id PHC string")

// parseHash reads a PHC string made by HashPasswordWith.
func parseHash(phc string) (p Params, salt, key []byte, err error) {
	f := strings.Split(phc, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errBadHash
	}
	// Refuse parameters no hub writes, so a damaged row cannot make a login eat the machine.
	if p.Memory < 8 || p.Memory > 1<<20 || p.Time < 1 || p.Time > 16 || p.Threads < 1 {
		return p, nil, nil, errBadHash
	}
	enc := base64.RawStdEncoding
	if salt, err = enc.DecodeString(f[4]); err == nil {
		key, err = enc.DecodeString(f[5])
	}
	if err != nil || len(salt) < 8 || len(key) < 16 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// VerifyPassword reports whether pw matches the PHC hash, computed with the parameters stored
// in the hash and compared in constant time. A malformed hash matches nothing.
func VerifyPassword(phc, pw string) bool {
	p, salt, key, err := parseHash(phc)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}

// dummyHash is verified against for unknown users, so that a login takes as long whether or
// not the user exists.
var dummyHash = sync.OnceValue(func() string { return HashPassword("no such user, no such password") })

// VerifyNobody costs what VerifyPassword costs and always fails: call it for unknown users.
func VerifyNobody(pw string) bool {
	VerifyPassword(dummyHash(), pw)
	return false
}
