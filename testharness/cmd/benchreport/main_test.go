package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunWritesReport runs benchreport on saved output and on a command, into a directory
// holding the real targets.yaml and template.
func TestRunWritesReport(t *testing.T) {
	out := t.TempDir()
	for _, f := range []string{"targets.yaml", "beyond.tmpl"} {
		copyFile(t, filepath.Join("..", "..", "bench", f), filepath.Join(out, f))
	}
	in := filepath.Join("..", "..", "bench", "testdata", "bench.txt")
	if err := run([]string{"--out", out, "--in", in, "--command", "make bench-quick"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "make bench-quick") || !strings.Contains(string(md), "| 1 | Drain agent → hub, embedded broker + SQLite |") {
		t.Errorf("BENCHMARKS.md lacks the command or the targets:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(out, "latest.json")); err != nil {
		t.Fatal(err)
	}
	// --run: the command's output is read and the command recorded; a failing command is an
	// error, but what it measured is still written.
	err = run([]string{"--out", out, "--run", "cat " + in, "--run", "false"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "1 benchmark command(s) failed") {
		t.Fatalf("run with a failing command = %v, want it reported", err)
	}
	md, _ = os.ReadFile(filepath.Join(out, "BENCHMARKS.md"))
	if !strings.Contains(string(md), "cat "+in) {
		t.Errorf("BENCHMARKS.md does not record the command run")
	}
}

func TestRunFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"--in", "x", "--run", "y"}} {
		if err := run(args, io.Discard); err == nil || !strings.Contains(err.Error(), "either --run") {
			t.Errorf("run(%q) = %v, want the --run/--in error", args, err)
		}
	}
}
