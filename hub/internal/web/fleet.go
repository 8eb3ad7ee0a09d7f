package web

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
)

const (
	// staleAfter is how old an agent's last status may be before the store counts as offline
	// though it never said so: three of the agent's default heartbeats (hub.heartbeat, 30 s).
	staleAfter = 3 * 30 * time.Second
	// backlogOld is the age of the oldest unsent record that puts a store at risk.
	backlogOld = 5 * time.Minute
	// skewBad is the clock skew an agent's row flags.
	skewBad = time.Minute
)

// Risk flags of a fleet row, most urgent first: rows sort by them.
const (
	riskOffline = 1 << (3 - iota)
	riskAlerts
	riskBacklog
	riskExceptions
)

// fleetRow is one store of the fleet page.
type fleetRow struct {
	store.StoreInfo
	Online   bool
	State    string        // online, offline, never seen, or the store's own state (disabled)
	Age      time.Duration // since the last status arrived
	Skew     time.Duration // agent clock minus hub clock at the last status
	HasSkew  bool
	Backlog  uint64
	Oldest   time.Duration // age of the oldest unsent record at the last status
	Sales    []terminalSale
	Open     int64 // open exceptions
	Raised   int64 // times they were raised
	Latest   *store.Exception
	Risk     int
	Reasons  []string
	Disabled bool
}

// terminalSale is a terminal's last captured sale.
type terminalSale struct {
	Terminal string
	At       time.Time
}

// fleetCounts are the totals at the top of the fleet page.
type fleetCounts struct {
	Stores, Online, Offline, AtRisk int
	Exceptions                      int64
}

type fleetPage struct {
	Rows   []fleetRow
	Counts fleetCounts
	Now    time.Time
}

// buildFleet makes the rows of the fleet page from the stores, their open exception counts and
// newest open exception, at risk first.
func buildFleet(stores []store.StoreInfo, counts []store.ExceptionCount, latest []store.Exception, now time.Time) fleetPage {
	open := map[string][2]int64{}
	for _, c := range counts {
		o := open[c.Store]
		open[c.Store] = [2]int64{o[0] + c.Exceptions, o[1] + c.Raised}
	}
	newest := map[string]*store.Exception{}
	for i := range latest {
		if _, ok := newest[latest[i].Store]; !ok {
			newest[latest[i].Store] = &latest[i]
		}
	}
	p := fleetPage{Rows: make([]fleetRow, 0, len(stores)), Now: now}
	for _, si := range stores {
		r := fleetRow{StoreInfo: si, State: "never seen", Latest: newest[si.ID], Disabled: si.State != store.StoreActive}
		r.Open, r.Raised = open[si.ID][0], open[si.ID][1]
		if st := si.Status; st != nil {
			r.Age = now.Sub(si.StatusAt)
			r.Online = st.State == "online" && r.Age < staleAfter
			r.State = "offline"
			if r.Online {
				r.State = "online"
			}
			r.Backlog, r.Oldest = st.Backlog, time.Duration(st.OldestUnsentAge*float64(time.Second))
			if !st.Clock.IsZero() {
				r.Skew, r.HasSkew = st.Clock.Sub(si.StatusAt), true
			}
			for t, at := range st.LastCapture {
				r.Sales = append(r.Sales, terminalSale{t, at})
			}
			slices.SortFunc(r.Sales, func(a, b terminalSale) int { return strings.Compare(a.Terminal, b.Terminal) })
		}
		if r.Disabled {
			r.State = si.State
		}
		flag := func(bit int, why string) {
			r.Risk |= bit
			r.Reasons = append(r.Reasons, why)
		}
		if !r.Online && !r.Disabled {
			flag(riskOffline, "offline")
		}
		if r.Oldest >= backlogOld {
			flag(riskBacklog, "old backlog")
		}
		if r.Open > 0 {
			flag(riskExceptions, "open exceptions")
		}
		p.Counts.Stores++
		if r.Online {
			p.Counts.Online++
		} else if !r.Disabled {
			p.Counts.Offline++
		}
		if r.Risk != 0 {
			p.Counts.AtRisk++
		}
		p.Counts.Exceptions += r.Open
		p.Rows = append(p.Rows, r)
	}
	slices.SortStableFunc(p.Rows, func(a, b fleetRow) int {
		return cmp.Or(cmp.Compare(b.Risk, a.Risk), cmp.Compare(b.Oldest, a.Oldest), strings.Compare(a.ID, b.ID))
	})
	return p
}

// fleet serves the fleet page: every store the principal may see, at risk first.
func (s *Server) fleet(w http.ResponseWriter, r *http.Request) {
	stores, err := s.listStores(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.exceptionCounts(r, store.StateOpen)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The newest open exception of each store, one per store: a store's flood cannot push
	// another's off the page.
	latest, err := s.st.Exceptions(r.Context(), store.ExceptionFilter{State: store.StateOpen, PerStore: 1, Limit: len(stores) + 1, Stores: scope(r)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "fleet", buildFleet(stores, counts, latest, s.now()))
}
