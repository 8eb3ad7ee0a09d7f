package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// static holds the login page and the scripts and style sheet of the operators' pages: they
// are files, never inline, so that a strict Content-Security-Policy can forbid inline code.
//
//go:embed static
var static embed.FS

// staticFiles serves static/ under /static/ (files only, no directory listings).
func staticFiles() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// loginPage serves the sign-in form; static/login.js posts it to /api/v1/session.
func loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	http.ServeFileFS(w, r, static, "static/login.html")
}

// routesLogin registers the public pages: the login form and its assets.
func (s *Server) routesLogin() {
	s.handle("GET /login", public, loginPage)
	s.handle("GET /static/", public, staticFiles().ServeHTTP)
}
