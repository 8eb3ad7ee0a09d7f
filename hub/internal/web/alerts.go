package web

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
)

// Alert is a raised condition of a store or one of its terminals (Terminal "" for the store),
// as the alerts engine keeps it. Alert and AlertFilter mirror store.Alert and
// store.AlertFilter of the alerts engine, field for field: once both are in one tree they
// become aliases of those (type Alert = store.Alert) and *store.DB is the AlertReader.
type Alert struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	State     string    `json:"state"` // open or cleared
	Store     string    `json:"store"`
	Terminal  string    `json:"terminal"`
	Since     time.Time `json:"since"`
	ClearedAt time.Time `json:"cleared_at,omitzero"`
	Detail    string    `json:"detail"`
	// Threshold is the rule that raised it, for people ("60m inside trading hours").
	Threshold     string    `json:"threshold"`
	LastEvaluated time.Time `json:"-"`
}

// AlertFilter selects alerts: State "" for all, Stores nil for every store (an empty list for
// none), BeforeID > 0 for the next page, at most Limit, newest first.
type AlertFilter struct {
	State    string
	Store    string
	Stores   []string
	BeforeID int64
	Limit    int
}

// AlertReader lists alerts.
type AlertReader interface {
	Alerts(ctx context.Context, f AlertFilter) ([]Alert, error)
}

// Alert states.
const (
	alertOpen    = "open"
	alertCleared = "cleared"
)

// alertsLimits bound the alerts page: every open alert up to the first, the newest cleared up
// to the second.
const (
	maxOpenAlerts   = 1000
	recentlyCleared = 50
)

// alertsPage is the data of the alerts page.
type alertsPage struct {
	Served        bool // the hub evaluates alerts
	Open, Cleared []Alert
	MaxOpen       int
}

func (s *Server) routesAlerts(ar AlertReader) {
	s.alerts = ar
	s.handle("GET /alerts", auth.Viewer, s.alertsPage)
}

// alertsPage serves /alerts: the open alerts and the recently cleared ones of the stores the
// principal may see, each with the threshold that raised it.
func (s *Server) alertsPage(w http.ResponseWriter, r *http.Request) {
	d := alertsPage{Served: s.alerts != nil, MaxOpen: maxOpenAlerts}
	if d.Served {
		for _, l := range []struct {
			dst   *[]Alert
			state string
			limit int
		}{{&d.Open, alertOpen, maxOpenAlerts}, {&d.Cleared, alertCleared, recentlyCleared}} {
			list, err := s.alerts.Alerts(r.Context(), AlertFilter{State: l.state, Stores: scope(r), Limit: l.limit})
			if err != nil {
				s.fail(w, r, err)
				return
			}
			*l.dst = slices.DeleteFunc(list, func(a Alert) bool { return mayStore(r, a.Store) != nil })
		}
	}
	s.render(w, r, "alerts", d)
}
