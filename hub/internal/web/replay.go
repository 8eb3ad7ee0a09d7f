package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/protocol"
)

// Replayer sends replay commands to agents (package reconcile).
type Replayer interface {
	// Replay records and publishes a replay command and returns its id.
	Replay(ctx context.Context, store string, cmd protocol.Command) (string, error)
}

// maxReplay is the most receipts or seqs one replay request may name.
const maxReplay = 100000

func (s *Server) routesReplay(rp Replayer) {
	if rp == nil {
		return
	}
	s.handle("POST /api/v1/stores/{store}/replay", auth.Operator, func(w http.ResponseWriter, r *http.Request) { s.replay(w, r, rp) })
}

// replay asks a store's agent to send records again: POST /api/v1/stores/{store}/replay with
// {"terminal","business_date","from_receipt","to_receipt"} or {"epoch","from_seq","to_seq"}.
// It answers 202 with the command's id; the agent's result shows in its status.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, rp Replayer) {
	id, err := s.storeParam(r)
	if err == nil {
		_, err = s.st.GetStore(r.Context(), id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var c protocol.Command
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.V != 0 || c.ID != "" || c.Type != "" {
		s.fail(w, r, badRequest(`body: want {"terminal","business_date","from_receipt","to_receipt"} or {"epoch","from_seq","to_seq"}`))
		return
	}
	if err := checkReplay(c); err != nil {
		s.fail(w, r, err)
		return
	}
	cid, err := rp.Replay(r.Context(), id, c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	note(r, "replay %s: terminal %q date %s receipts %d-%d epoch %q seqs %d-%d", cid, c.Terminal, c.BusinessDate, c.FromReceipt, c.ToReceipt, c.Epoch, c.FromSeq, c.ToSeq)
	s.writeJSON(w, http.StatusAccepted, map[string]string{"id": cid})
}

// checkReplay validates a replay request: a terminal, a date and a receipt range, or an epoch
// and a seq range, each range ordered and at most maxReplay long.
func checkReplay(c protocol.Command) error {
	if c.Terminal != "" || c.BusinessDate != "" || c.FromReceipt != 0 || c.ToReceipt != 0 {
		if c.Epoch != "" || c.FromSeq != 0 || c.ToSeq != 0 {
			return badRequest("replay: name a terminal and receipt range, or an epoch and seq range, not both")
		}
		if c.Terminal == "" || len(c.Terminal) > 64 || !utf8.ValidString(c.Terminal) || strings.IndexFunc(c.Terminal, unicode.IsControl) >= 0 {
			return badRequest("terminal: required, at most 64 bytes of printable text")
		}
		if _, err := time.Parse(time.DateOnly, c.BusinessDate); err != nil {
			return badRequest("business_date: use YYYY-MM-DD")
		}
		return checkRange("receipt", uint64(max(c.FromReceipt, 0)), uint64(max(c.ToReceipt, 0)))
	}
	if c.Epoch == "" {
		return badRequest("replay: name a terminal and receipt range, or an epoch and seq range")
	}
	return checkRange("seq", c.FromSeq, c.ToSeq)
}

func checkRange(what string, from, to uint64) error {
	if from < 1 || to < from || to-from >= maxReplay {
		return badRequest(fmt.Sprintf("from_%s..to_%s: want 1 <= from <= to, at most %d", what, what, maxReplay))
	}
	return nil
}
