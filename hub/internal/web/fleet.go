package web

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
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
	Open     int64    // open exceptions
	Raised   int64    // times they were raised
	Alerts   []string // kinds of the open alerts (with the terminal, if any)
	Latest   *store.Exception
	Risk     int
	Reasons  []string
	Disabled bool
	// Text is the row's values formatted once, so that the template of 1,000 rows only
	// prints strings.
	Text fleetText
}

// fleetText holds a fleet row's formatted values and sort keys.
type fleetText struct {
	StatusAt, Age, Oldest, Skew, Version, Search string
	AgeSec, OldestSec, SkewSec                   int64
	SkewBad, OldestBad                           bool
	Spool                                        string // "" when the agent does not report it
}

// terminalSale is a terminal's last captured sale.
type terminalSale struct {
	Terminal string
	At       time.Time
}

// fleetCounts are the totals at the top of the fleet page.
type fleetCounts struct {
	Stores, Online, Offline, AtRisk, Alerts int
	Exceptions                              int64
}

type fleetPage struct {
	Rows   []fleetRow
	Counts fleetCounts
	Now    time.Time
	// Versions counts the stores per agent version and platform, newest version first.
	Versions []versionCount
}

// versionCount is how many stores run one agent version on one platform.
type versionCount struct {
	Version, Platform string
	Stores            int
}

// versionSummary counts the stores by the version and os/arch their last status reported
// ("unknown" for stores never seen); semantic versions newest first, others after.
func versionSummary(stores []store.StoreInfo) []versionCount {
	n := map[[2]string]int{}
	for _, si := range stores {
		k := [2]string{"unknown", ""}
		if st := si.Status; st != nil {
			k = [2]string{cmp.Or(st.Version, "unknown"), strings.Trim(st.OS+"/"+st.Arch, "/")}
		}
		n[k]++
	}
	out := make([]versionCount, 0, len(n))
	for k, c := range n {
		out = append(out, versionCount{k[0], k[1], c})
	}
	slices.SortFunc(out, func(a, b versionCount) int {
		c, err := protocol.CompareVersions(b.Version, a.Version)
		_, ea := protocol.ParseSemver(a.Version)
		_, eb := protocol.ParseSemver(b.Version)
		switch {
		case err == nil && c != 0:
			return c
		case ea == nil && eb != nil:
			return -1
		case ea != nil && eb == nil:
			return 1
		}
		return cmp.Or(strings.Compare(a.Version, b.Version), strings.Compare(a.Platform, b.Platform))
	})
	return out
}

// buildFleet makes the rows of the fleet page from the stores, their open exception counts,
// newest open exception and open alerts (nil: no alerts engine), at risk first.
func buildFleet(stores []store.StoreInfo, counts []store.ExceptionCount, latest []store.Exception, alerts []store.Alert, now time.Time) fleetPage {
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
	alerting := map[string][]string{}
	for _, a := range alerts {
		alerting[a.Store] = append(alerting[a.Store], strings.TrimSuffix(a.Kind+" "+a.Terminal, " "))
	}
	p := fleetPage{Rows: make([]fleetRow, 0, len(stores)), Now: now, Versions: versionSummary(stores)}
	for _, si := range stores {
		r := fleetRow{StoreInfo: si, State: "never seen", Latest: newest[si.ID], Disabled: si.State != store.StoreActive}
		r.Open, r.Raised, r.Alerts = open[si.ID][0], open[si.ID][1], alerting[si.ID]
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
		r.Text = fleetText{StatusAt: when(si.StatusAt), Age: dur(r.Age), Oldest: dur(r.Oldest), Skew: dur(r.Skew), Search: si.ID,
			AgeSec: int64(r.Age / time.Second), OldestSec: int64(r.Oldest / time.Second), SkewSec: int64(r.Skew.Abs() / time.Second),
			SkewBad: r.Skew.Abs() > skewBad, OldestBad: r.Oldest >= backlogOld}
		if si.Status != nil {
			if st := si.Status; st.SpoolUsedBytes > 0 || st.SpoolMaxBytes > 0 {
				r.Text.Spool = spoolUse(st.SpoolUsedBytes, st.SpoolMaxBytes)
			}
			r.Text.Version = cmp.Or(si.Status.Version, "unknown")
			if u := si.Status.Update; u != nil && u.State != protocol.UpdateHealthy {
				// The last update offered and how it went, until it is healthy.
				r.Text.Version += " (update " + u.Version + ": " + strings.TrimSpace(u.State+" "+u.Detail) + ")"
			}
			r.Text.Search += " " + si.Status.Version
		}
		for _, ts := range r.Sales {
			r.Text.Search += " " + ts.Terminal
		}
		flag := func(bit int, why string) {
			r.Risk |= bit
			r.Reasons = append(r.Reasons, why)
		}
		if !r.Online && !r.Disabled {
			flag(riskOffline, "offline")
		}
		if len(r.Alerts) > 0 {
			flag(riskAlerts, "alerts")
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
		p.Counts.Alerts += len(r.Alerts)
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
	alerts, err := s.openAlerts(r, "", len(stores))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "fleet", buildFleet(stores, counts, latest, alerts, s.now()))
}

// openAlerts lists the open alerts of one store, or of every store the principal may see
// (stores of them).
func (s *Server) openAlerts(r *http.Request, id string, stores int) ([]store.Alert, error) {
	list, err := s.st.Alerts(r.Context(), store.AlertFilter{State: store.AlertOpen, Store: id, Stores: scope(r), Limit: 16 * (stores + 1)})
	if list == nil {
		list = []store.Alert{}
	}
	return list, err
}

// spoolUse formats an agent's spool use: "12.0 MiB of 64.0 MiB (18%)", or without a limit
// "12.0 MiB (no limit)".
func spoolUse(used, limit int64) string {
	mib := func(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }
	if limit <= 0 {
		return mib(used) + " (no limit)"
	}
	return mib(used) + " of " + mib(limit) + " (" + strconv.FormatInt(used*100/limit, 10) + "%)"
}
