//go:build linux

package app

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/lanebridge/lanebridge/testharness/chaos/powercut"
)

// TestWriteFile0600SurvivesPowerCut: the files the agent replaces atomically (the enrolled
// config, pushed configuration) are there, with their new content, after a power cut that
// drops every unsynced write and directory entry (the powercut FUSE disk): the rename is
// followed by a directory sync. Without it the first write vanishes and a replacement reverts.
func TestWriteFile0600SurvivesPowerCut(t *testing.T) {
	if err := powercut.Supported(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	m, err := powercut.MountDisk(t.TempDir(), powercut.NewDisk(powercut.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Error(err)
		}
	})
	rng := rand.New(rand.NewPCG(1, 2))
	p := filepath.Join(m.Dir, overridesFile)
	for _, want := range []string{`{"v":1}`, `{"v":2}`} {
		if err := writeFile0600(p, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if err := m.PowerCut(powercut.DropAll, rng, func() {}); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != want {
			t.Fatalf("after a power cut %s = %q, %v; want %q", overridesFile, got, err, want)
		}
	}
}
