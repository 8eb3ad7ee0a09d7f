package web

import (
	"fmt"
	"net/http"
)

// routesLogin registers the public pages: the login page and its static assets. These are
// placeholders until the console's login page (branch login) replaces this file; register the
// real ones with s.handle(pattern, public, h) so that they stay in the route table.
func (s *Server) routesLogin() {
	s.handle("GET /static/", public, http.NotFound)
	s.handle("GET /login", public, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, `Log in with POST /api/v1/session {"username":…,"password":…}.`)
	})
}
