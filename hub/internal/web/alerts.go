package web

import (
	"net/http"

	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// The alerts page lists every open alert up to maxOpenAlerts, and the newest cleared ones up
// to recentlyCleared.
const (
	maxOpenAlerts   = 1000
	recentlyCleared = 50
)

// alertsPage is the data of the alerts page.
type alertsPage struct {
	Served        bool // the hub's store keeps alerts
	Open, Cleared []store.Alert
	MaxOpen       int
}

// alertsPage serves /alerts: the open alerts and the recently cleared ones of the stores the
// principal may see, each with the threshold that raised it.
func (s *Server) alertsPage(w http.ResponseWriter, r *http.Request) {
	al, ok := s.st.(alertLister)
	d := alertsPage{Served: ok, MaxOpen: maxOpenAlerts}
	for _, l := range []struct {
		dst   *[]store.Alert
		state string
		limit int
	}{{&d.Open, store.AlertOpen, maxOpenAlerts}, {&d.Cleared, store.AlertCleared, recentlyCleared}} {
		if !ok {
			break
		}
		var err error
		if *l.dst, err = al.Alerts(r.Context(), store.AlertFilter{State: l.state, Stores: scope(r), Limit: l.limit}); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.render(w, r, "alerts", d)
}
