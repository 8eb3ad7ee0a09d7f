// Package creds mints and checks store credentials. Passwords are 32 random bytes (base64url);
// the hub keeps only a salted SHA-256 of them, which is enough for secrets of that entropy.
package creds

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// NewPassword returns a fresh random password.
func NewPassword() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("creds: crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash returns "sha256$<salt hex>$<digest hex>".
func Hash(password string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("creds: crypto/rand: %v", err))
	}
	return "sha256$" + hex.EncodeToString(salt) + "$" + hex.EncodeToString(digest(salt, password))
}

func digest(salt []byte, password string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(password))
	return h.Sum(nil)
}

// Verify reports whether password matches hash, in constant time.
func Verify(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 3 || parts[0] != "sha256" {
		return false
	}
	salt, err1 := hex.DecodeString(parts[1])
	want, err2 := hex.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return false
	}
	return subtle.ConstantTimeCompare(digest(salt, password), want) == 1
}
