package web

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var (
	tagRe    = regexp.MustCompile(`(?is)<(script|style)\b[^>]*>`)
	inlineRe = regexp.MustCompile(`(?i)\s(style|on[a-z]+)\s*=|javascript:`)
	assetRe  = regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)
)

// inlineCode returns what a strict Content-Security-Policy (script-src 'self'; style-src
// 'self') would block in page: inline scripts, style elements and attributes, event handlers.
func inlineCode(page string) []string {
	var bad []string
	for _, tag := range tagRe.FindAllString(page, -1) {
		if !strings.Contains(tag, ` src="/static/`) {
			bad = append(bad, tag)
		}
	}
	return append(bad, inlineRe.FindAllString(page, -1)...)
}

func TestInlineCodeDetector(t *testing.T) {
	for page, n := range map[string]int{
		`<script src="/static/a.js"></script><link href="/static/a.css">`: 0,
		`<script>alert(1)</script>`:                                       1,
		`<STYLE>p{}</STYLE>`:                                              1,
		`<p style="color:red" onclick="x()">`:                             2,
		`<a href="javascript:x()">`:                                       1,
		`<script src="https://evil.example/a.js"></script>`:               1,
	} {
		if got := inlineCode(page); len(got) != n {
			t.Errorf("inlineCode(%s) = %q, want %d findings", page, got, n)
		}
	}
}

// consolePages are console pages of the fixture's data that every test of the layout visits.
var consolePages = []string{"/", "/stores/S001", "/calendar?month=2026-11", "/calendar/S001/2026-11-26"}

// TestLoginPageAndAssets: /login and its assets are served without inline code, every asset
// the pages reference exists with the right type, and /static/ lists nothing.
func TestLoginPageAndAssets(t *testing.T) {
	f := newFixture(t, Options{})
	get := func(path string) (reply, string) {
		t.Helper()
		r := f.do(t, "GET", path, "")
		return r, r.body
	}
	resp, login := get("/login")
	if resp.code != 200 || !strings.HasPrefix(resp.h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /login: %d %s", resp.code, resp.h.Get("Content-Type"))
	}
	for _, want := range []string{`<form id="login"`, `id="username"`, `type="password"`, `id="error"`} {
		if !strings.Contains(login, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	pages := map[string]string{"login": login}
	for _, path := range consolePages {
		r := f.do(t, "GET", path, "", "Authorization: Bearer "+f.admin)
		if r.code != 200 || !strings.Contains(r.body, `id="logout"`) || !strings.Contains(r.body, `<nav>`) {
			t.Errorf("GET %s: %d, want a console page with navigation and a log out control:\n%.300s", path, r.code, r.body)
		}
		pages[path] = r.body
	}
	types := map[string]string{".js": "text/javascript", ".css": "text/css"}
	for name, page := range pages {
		if bad := inlineCode(page); len(bad) > 0 {
			t.Errorf("%s page has inline code a strict CSP blocks: %q", name, bad)
		}
		assets := assetRe.FindAllStringSubmatch(page, -1)
		if len(assets) < 2 {
			t.Errorf("%s page references %d assets, want its script and style sheet", name, len(assets))
		}
		for _, m := range assets {
			resp, body := get(m[1])
			ct := resp.h.Get("Content-Type")
			if resp.code != 200 || body == "" || !strings.HasPrefix(ct, types[m[1][strings.LastIndex(m[1], "."):]]) {
				t.Errorf("%s page asset %s: %d, %q, %d bytes", name, m[1], resp.code, ct, len(body))
			}
		}
	}
	for _, path := range []string{"/static/", "/static/nope.js"} {
		if resp, _ := get(path); resp.code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.code)
		}
	}
	if resp, body := get("/static/../login.go"); resp.code == 200 || strings.Contains(body, "package web") {
		t.Errorf("GET /static/../login.go: %d %.40q", resp.code, body)
	}
}
