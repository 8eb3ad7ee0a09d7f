package web

import (
	"html/template"
	"net/http"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
)

var dashTmpl = template.Must(template.New("dash").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"secs": func(f float64) string { return (time.Duration(f) * time.Second).String() },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>Lanebridge hub</title>
<link rel="stylesheet" href="/static/hub.css">
<script src="/static/dashboard.js" defer></script>
</head><body>
<header><h1>Lanebridge hub</h1>
<div id="session"><span id="who"></span><button id="logout" type="button" hidden>Log out</button><span id="session-error" class="bad" hidden></span></div></header>
<h2>Stores</h2>
<table id="stores"><tr><th>Store</th><th>Agent</th><th>Records at hub</th><th>Backlog at store</th><th>Oldest unsent</th><th>Last status</th></tr>
{{range .Stores}}<tr><td><a href="/api/v1/stores/{{.ID}}">{{.ID}}</a></td>
<td>{{if .Status}}{{if eq .Status.State "online"}}<span class="ok">online</span>{{else}}<span class="bad">{{.Status.State}}</span>{{end}}{{else}}never seen{{end}}</td>
<td>{{.Records}}</td><td>{{if .Status}}{{.Status.Backlog}}{{end}}</td>
<td>{{if .Status}}{{if gt .Status.OldestUnsentAge 300.0}}<span class="bad">{{secs .Status.OldestUnsentAge}}</span>{{else}}{{secs .Status.OldestUnsentAge}}{{end}}{{end}}</td>
<td>{{ago .StatusAt}}</td></tr>
{{else}}<tr><td colspan="6">No stores yet: enroll one with <code>lanebridge-hub stores add S001</code>.</td></tr>{{end}}
</table>
<h2>Open alerts</h2>
<table id="alerts"><tr><th>Alert</th><th>Store</th><th>Terminal</th><th>Since</th><th>Threshold</th><th>Detail</th></tr>
{{range .Alerts}}<tr><td class="bad">{{.Kind}}</td><td>{{.Store}}</td><td>{{.Terminal}}</td><td>{{ago .Since}}</td><td>{{.Threshold}}</td><td>{{.Detail}}</td></tr>
{{else}}<tr><td colspan="6">None.</td></tr>{{end}}
</table>
<h2>Open exceptions by store</h2>
<table id="exception-counts"><tr><th>Store</th><th>Reason</th><th>Open</th><th>Times raised</th><th>Last seen</th></tr>
{{range .Counts}}<tr><td><a href="/api/v1/exceptions?state=open&amp;store={{.Store}}">{{.Store}}</a></td><td>{{.Reason}}</td><td>{{.Exceptions}}</td><td>{{.Raised}}</td><td>{{ago .LastSeen}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}
</table>
<h2>Newest open exceptions (at most {{.PerStore}} per store)</h2>
<table id="exceptions"><tr><th>Store</th><th>Reason</th><th>Detail</th><th>Times</th><th>Raised</th><th>Last seen</th></tr>
{{range .Exceptions}}<tr><td>{{.Store}}</td><td>{{.Reason}}</td><td><pre>{{.Detail}}</pre></td><td>{{.Count}}</td><td>{{ago .CreatedAt}}</td><td>{{ago .LastSeen}}</td></tr>
{{else}}<tr><td colspan="6">None.</td></tr>{{end}}
</table>
<p>API: <a href="/api/v1/stores">/api/v1/stores</a> · <a href="/api/v1/exceptions">/api/v1/exceptions</a> · <a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a></p>
</body></html>`))

// dashPerStore is how many open exceptions of each store the dashboard lists.
const dashPerStore = 10

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	stores, err := s.listStores(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// A bounded page per store, and counts per store and reason: one store's flood cannot push
	// another's exceptions off the page.
	exc, err := s.st.Exceptions(r.Context(), store.ExceptionFilter{State: store.StateOpen, PerStore: dashPerStore, Limit: 500, Stores: scope(r)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.exceptionCounts(r, store.StateOpen)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	alerts, err := s.st.Alerts(r.Context(), store.AlertFilter{State: store.AlertOpen, Limit: 100, Stores: scope(r)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := dashTmpl.Execute(w, map[string]any{"Stores": stores, "Exceptions": exc, "Counts": counts, "PerStore": dashPerStore,
		"Alerts": alerts}); err != nil {
		s.log.Debug("render dashboard", "err", err)
	}
}
