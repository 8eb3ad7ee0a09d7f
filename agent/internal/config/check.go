package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Check looks past the file's syntax at what `lanebridge-agent validate` must also catch before
// the agent runs: a missing broker password and a data_dir the agent cannot write are errors
// (named like Validate's); a password in a file that group or others can read is a warning.
// path is the file c was loaded from.
func Check(path string, c *Config) (warnings []string, err error) {
	if c.Hub.Password != "" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			warnings = append(warnings, fmt.Sprintf("config key hub.password: %s is readable by group or others (mode %04o) and holds the store's password; run `chmod 600 %s`", path, fi.Mode().Perm(), path))
		}
	}
	if c.Hub.Password == "" && c.Hub.PasswordFile == "" {
		return warnings, &Error{"hub.password", "missing; set hub.password (as printed by `lanebridge-hub stores add`) or hub.password_file (a file holding it)"}
	}
	if err := writable(c.DataDir); err != nil {
		return warnings, &Error{"data_dir", fmt.Sprintf("%v; make it writable by the user the agent runs as (e.g. chown lanebridge %s) or choose another directory", err, c.DataDir)}
	}
	return warnings, nil
}

// writable creates and removes a temporary file in dir, or, when dir does not exist yet, in the
// nearest existing parent (the agent creates dir on start).
func writable(dir string) error {
	d := dir
	for {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot check %s: %w", d, err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return fmt.Errorf("no existing parent of %s", dir)
		}
		d = parent
	}
	f, err := os.CreateTemp(d, ".lanebridge-write-check-*")
	if err != nil {
		if d != dir {
			return fmt.Errorf("%s does not exist and cannot be created in %s: %w", dir, d, err)
		}
		return fmt.Errorf("cannot write in %s: %w", d, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
