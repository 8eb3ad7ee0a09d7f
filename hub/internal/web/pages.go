package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
)

// templates holds the operators' console pages; each page template starts with
// {{template "head" .}} and ends with {{template "foot" .}} (templates/layout.html).
//
//go:embed templates/*.html
var templates embed.FS

// pages are the console's templates, parsed once.
var pages = template.Must(template.New("").Funcs(pageFuncs).ParseFS(templates, "templates/*.html"))

// navItem is an entry of the console's navigation.
type navItem struct {
	Section, Path, Label string
}

// nav is the console's navigation: a page named "section" or "section.sub" marks its
// section's entry current.
var nav = []navItem{
	{"fleet", "/", "Fleet"},
	{"exceptions", "/exceptions", "Exceptions"},
	{"calendar", "/calendar", "Close calendar"},
	{"alerts", "/alerts", "Alerts"},
	{"availability", "/availability", "Availability"},
	{"rollouts", "/rollouts", "Rollouts"},
}

// view is what a page template gets: its name, title and section, the navigation, who is
// signed in, and the page's own data.
type view struct {
	Name, Title, Section string
	Nav                  []navItem
	Scripts              []string
	User                 *auth.Principal
	Data                 any
}

// pageScripts are the scripts of each page (files in static/), after static/console.js.
var pageScripts = map[string][]string{
	"fleet":             {"table.js"},
	"fleet.store":       {"store.js"},
	"calendar.day":      {"store.js"},
	"exceptions":        {"exceptions.js"},
	"exceptions.detail": {"exceptions.js"},
}

// titled is page data that names its page ("Store S001"); other pages take their
// section's label.
type titled interface{ PageTitle() string }

// render writes the page template name with data inside the console layout. It renders into a
// buffer first, so that a template error answers 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	v := view{Name: name, Nav: nav, Scripts: pageScripts[name], User: principal(r), Data: data}
	if s.av == nil { // availability is not configured: no page to link
		v.Nav = slices.DeleteFunc(slices.Clone(nav), func(n navItem) bool { return n.Section == "availability" })
	}
	v.Section, _, _ = strings.Cut(name, ".")
	for _, n := range nav {
		if n.Section == v.Section {
			v.Title = n.Label
		}
	}
	if t, ok := data.(titled); ok {
		v.Title = t.PageTitle()
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, v); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := buf.WriteTo(w); err != nil {
		s.log.Debug("write page", "page", name, "err", err)
	}
}

// pageFuncs are the helpers page templates use.
var pageFuncs = template.FuncMap{
	"money": formatMoney,
	"sub":   func(a, b int64) int64 { return a - b },
	"add":   func(a, b int) int { return a + b },
	"when":  when,
	"dur":   func(sec float64) string { return dur(time.Duration(sec * float64(time.Second))) },
}

// when formats a time in UTC to the second, or "never".
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// dur formats a duration to the second ("3m20s"), with whole days split off beyond a day
// ("2d3h4m0s").
func dur(d time.Duration) string {
	const day = 24 * time.Hour
	d = d.Round(time.Second)
	if d >= day || d <= -day {
		return fmt.Sprintf("%dd%s", d/day, (d % day).Abs())
	}
	return d.String()
}
