package web

import (
	"fmt"
	"net/http"

	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// alerts is GET /api/v1/alerts?state=open|cleared|all (default open)&store=&limit=&before_id=:
// the principal's stores' alerts, newest first, with "next" (the before_id of the following
// page) when more may follow.
func (s *Server) alerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AlertFilter{Store: q.Get("store"), Stores: scope(r), Limit: 100}
	switch st := q.Get("state"); st {
	case "", store.AlertOpen:
		f.State = store.AlertOpen
	case store.AlertCleared:
		f.State = st
	case "all":
	default:
		s.fail(w, r, badRequest(fmt.Sprintf("state: %q is not open, cleared or all", st)))
		return
	}
	if err := intParams(q, intParam{"limit", 1000, 100, func(v int64) { f.Limit = int(v) }},
		intParam{"before_id", 1<<63 - 1, 0, func(v int64) { f.BeforeID = v }}); err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.st.Alerts(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []store.Alert{}
	}
	resp := map[string]any{"alerts": list}
	if len(list) == f.Limit {
		resp["next"] = list[len(list)-1].ID
	}
	s.writeJSON(w, http.StatusOK, resp)
}

// The alerts page lists every open alert up to maxOpenAlerts, and the newest cleared ones up
// to recentlyCleared.
const (
	maxOpenAlerts   = 1000
	recentlyCleared = 50
)

// alertsPage is the data of the alerts page.
type alertsPage struct {
	Open, Cleared []store.Alert
	MaxOpen       int
}

// alertsPage serves /alerts: the open alerts and the recently cleared ones of the stores the
// principal may see, each with the threshold that raised it.
func (s *Server) alertsPage(w http.ResponseWriter, r *http.Request) {
	d := alertsPage{MaxOpen: maxOpenAlerts}
	for _, l := range []struct {
		dst   *[]store.Alert
		state string
		limit int
	}{{&d.Open, store.AlertOpen, maxOpenAlerts}, {&d.Cleared, store.AlertCleared, recentlyCleared}} {
		var err error
		if *l.dst, err = s.st.Alerts(r.Context(), store.AlertFilter{State: l.state, Stores: scope(r), Limit: l.limit}); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.render(w, r, "alerts", d)
}
