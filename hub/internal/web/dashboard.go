package web

import (
	"net/http"

	"github.com/lanebridge/lanebridge/hub/internal/store"
)

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
	s.render(w, r, "fleet", map[string]any{"Stores": stores, "Exceptions": exc, "Counts": counts, "PerStore": dashPerStore})
}
