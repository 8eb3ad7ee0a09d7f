package spool

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// TestSealEncodeMatchesMarshal: the single-encode path stores exactly what Seal then
// json.Marshal would, with and without a source, with text that the encoder escapes.
func TestSealEncodeMatchesMarshal(t *testing.T) {
	base := protocol.Record{Kind: protocol.KindSale, Store: "S001", Terminal: "T1", Receipt: "<r&1>", BusinessDate: "2026-11-26",
		Total: 100, Tenders: []protocol.Tender{{Type: "cash", Amount: 100}}, Epoch: "e1", Seq: 7,
		CapturedAt: time.Date(2026, 11, 26, 10, 0, 0, 123000, time.UTC), Hash: "stale"}
	withSrc := base
	withSrc.Source = &protocol.Source{Terminal: "T1", Profile: "canonical-jsonl", Raw: `file:j "x".jsonl@12 flags=a,b`}
	emptySrc := base
	emptySrc.Source = &protocol.Source{}
	noTime := base
	noTime.CapturedAt = time.Time{}
	for name, r := range map[string]protocol.Record{"no source": base, "source": withSrc, "empty source": emptySrc, "no captured_at": noTime} {
		want := r
		want.Seal()
		wantJSON, err := json.Marshal(&want)
		if err != nil {
			t.Fatal(err)
		}
		got := r
		gotJSON, err := sealEncode(&got)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash != want.Hash || !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("%s:\n got %s (hash %s)\nwant %s (hash %s)", name, gotJSON, got.Hash, wantJSON, want.Hash)
		}
	}
}
