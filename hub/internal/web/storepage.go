package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

const (
	// recordsPage is how many records a page of the store page lists.
	recordsPage = 50
	// dayWindow is how many business days back the store page and the calendar show.
	dayWindow = 31
)

// charts are the metrics the store page shows as charts (GET /stores/{store}/charts/{metric}.svg).
var charts = []string{"throughput", "latency", "backlog"}

// storeView is the data of the store page.
type storeView struct {
	Row     fleetRow
	Epoch   string
	Records []protocol.Record
	// From and Through bound the page's seqs; Older and Newer are the after_seq of the
	// neighbouring pages (-1: none).
	From, Through uint64
	Older, Newer  int64
	Days          []store.DayState
	Charts        []string
	// Configs are the store's configuration pushes, newest first (at most configsShown).
	Configs []store.ConfigPush
}

// configsShown is how many configuration pushes the store page lists.
const configsShown = 10

// PageTitle names the store page.
func (v storeView) PageTitle() string { return "Store " + v.Row.ID }

// storePage serves GET /stores/{store}?epoch=&after_seq=: the store's agent and terminals, a
// page of its records (the newest by default), its recent days with their close state.
func (s *Server) storePage(w http.ResponseWriter, r *http.Request) {
	id, err := s.storeParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	info, err := s.st.GetStore(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.exceptionCounts(r, store.StateOpen)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	alerts, err := s.openAlerts(r, id, 1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now()
	v := storeView{Row: buildFleet([]store.StoreInfo{info}, counts, nil, alerts, now).Rows[0], Epoch: r.URL.Query().Get("epoch"), Charts: charts, Older: -1, Newer: -1}
	var head uint64 // the epoch's applied-through
	for _, st := range info.Streams {
		if v.Epoch == "" || st.Epoch == v.Epoch {
			head = st.AppliedThrough
			if v.Epoch != "" {
				break
			}
		}
	}
	if v.Epoch == "" && len(info.Streams) > 0 {
		v.Epoch = info.Streams[len(info.Streams)-1].Epoch
	}
	after := uint64(0)
	if head > recordsPage {
		after = head - recordsPage
	}
	if raw := r.URL.Query().Get("after_seq"); raw != "" {
		if after, err = strconv.ParseUint(raw, 10, 64); err != nil || after > protocol.MaxSeq {
			s.fail(w, r, badRequest("after_seq: must be an integer 0..2^53"))
			return
		}
	}
	if v.Epoch != "" {
		if v.Records, err = s.st.Records(ctx, id, v.Epoch, after, recordsPage); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if n := len(v.Records); n > 0 {
		v.From, v.Through = v.Records[0].Seq, v.Records[n-1].Seq
		if after > 0 {
			v.Older = int64(after) - recordsPage
			v.Older = max(v.Older, 0)
		}
		if v.Through < head {
			v.Newer = int64(v.Through)
		}
	}
	from := now.AddDate(0, 0, -dayWindow).Format(time.DateOnly)
	if v.Days, err = s.st.DayStates(ctx, []string{id}, from, now.AddDate(0, 0, 1).Format(time.DateOnly)); err != nil {
		s.fail(w, r, err)
		return
	}
	for i, j := 0, len(v.Days)-1; i < j; i, j = i+1, j-1 { // newest day first
		v.Days[i], v.Days[j] = v.Days[j], v.Days[i]
	}
	pushes, err := s.st.ConfigPushes(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i := len(pushes) - 1; i >= 0 && len(v.Configs) < configsShown; i-- {
		v.Configs = append(v.Configs, pushes[i])
	}
	s.render(w, r, "fleet.store", v)
}
