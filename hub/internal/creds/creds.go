// Package creds mints and checks store credentials. Passwords are 32 random bytes (base64url);
// the hub keeps only a salted SHA-256 of them, which is enough for secrets of that entropy, and
// for an external Mosquitto the hash its password_file takes (MosquittoHash).
package creds

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
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

// Mosquitto password-file hashes, as mosquitto_passwd (Mosquitto 2.x) writes them:
// "$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512 digest>", 12-byte salt, 64-byte digest.
const (
	mosquittoIterations = 101
	mosquittoSaltLen    = 12
	mosquittoKeyLen     = 64
)

// MosquittoHash returns a hash of password for a Mosquitto password_file line "user:HASH".
func MosquittoHash(password string) string {
	salt := make([]byte, mosquittoSaltLen)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("creds: crypto/rand: %v", err))
	}
	return mosquittoHash(password, salt, mosquittoIterations)
}

func mosquittoHash(password string, salt []byte, iterations int) string {
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, mosquittoKeyLen)
	if err != nil {
		panic(fmt.Sprintf("creds: pbkdf2: %v", err)) // only for out-of-range parameters
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("$7$%d$%s$%s", iterations, b64(salt), b64(key))
}

// VerifyMosquitto reports whether password matches a "$7$" hash, in constant time.
func VerifyMosquitto(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return false
	}
	iter, err := strconv.Atoi(parts[2])
	salt, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || err2 != nil || iter < 1 || iter > 1_000_000 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(mosquittoHash(password, salt, iter)), []byte(hash)) == 1
}
