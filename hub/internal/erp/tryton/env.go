package tryton

import (
	"context"
	"os"
)

// Environment variables that locate a Tryton server for integration tests and
// demos; testharness/tryton/setup.sh writes them to DIR/env.
const (
	EnvURL      = "LANEBRIDGE_TRYTON_URL"      // e.g. http://127.0.0.1:18000
	EnvDB       = "LANEBRIDGE_TRYTON_DB"       // default "lanebridge"
	EnvUser     = "LANEBRIDGE_TRYTON_USER"     // default "admin"
	EnvPassword = "LANEBRIDGE_TRYTON_PASSWORD" // default "lanebridge"
)

// DialEnv dials the server named by the LANEBRIDGE_TRYTON_* variables.
// ok is false, with no error, when LANEBRIDGE_TRYTON_URL is unset.
func DialEnv(ctx context.Context) (c *Client, ok bool, err error) {
	url := os.Getenv(EnvURL)
	if url == "" {
		return nil, false, nil
	}
	c, err = Dial(ctx, url, envOr(EnvDB, "lanebridge"), envOr(EnvUser, "admin"), envOr(EnvPassword, "lanebridge"))
	return c, true, err
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
