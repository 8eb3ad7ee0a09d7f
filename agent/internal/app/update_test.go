package app

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/lanebridge/lanebridge/agent/internal/trust"
)

func TestVersionPrintsPlatformChannelAndKeys(t *testing.T) {
	pub, _, _ := minisign.GenerateKey(rand.Reader)
	text, _ := pub.MarshalText()
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	old := trust.Keys
	trust.Keys = lines[len(lines)-1]
	t.Cleanup(func() { trust.Keys = old })

	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(cfg, []byte("store: S001\ndata_dir: /tmp/x\nhub:\n  broker: tcp://127.0.0.1:1883\n  password: pw\nterminals:\n  - {id: T1, source: \"file:///tmp/j\", profile: canonical-jsonl}\nupdate:\n  channel: beta\n"), 0o600)
	var out bytes.Buffer
	if code := Main([]string{"version", "--config", cfg}, &out, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"lanebridge-agent " + Version, runtime.GOOS + "/" + runtime.GOARCH, "channel:      beta", fmt.Sprintf("%016X", pub.ID())} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version output lacks %q:\n%s", want, out.String())
		}
	}
	trust.Keys = ""
	out.Reset()
	Main([]string{"version"}, &out, io.Discard)
	if !strings.Contains(out.String(), "channel:      stable") || !strings.Contains(out.String(), "trusted keys: none") {
		t.Errorf("no keys:\n%s", out.String())
	}
}
