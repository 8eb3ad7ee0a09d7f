package web

import (
	"context"
	"net/http"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/protocol"
)

// InventoryRefresher runs an inventory cycle now (package inventory); the result is
// JSON-encodable.
type InventoryRefresher interface {
	RefreshInventory(ctx context.Context) (any, error)
}

// routesInventory registers the inventory endpoints.
func (s *Server) routesInventory(ref InventoryRefresher) {
	s.handle("GET /api/v1/stores/{store}/inventory", auth.Viewer, s.inventory)
	if ref != nil {
		s.handle("POST /api/v1/inventory/refresh", auth.Operator, func(w http.ResponseWriter, r *http.Request) {
			if scope(r) != nil { // a refresh pushes to every store
				s.writeJSON(w, http.StatusForbidden, apiError{"forbidden: a refresh acts on every store; " + principal(r).String() + " is limited to some"})
				return
			}
			res, err := ref.RefreshInventory(r.Context())
			if err != nil {
				s.fail(w, r, err)
				return
			}
			s.writeJSON(w, http.StatusOK, res)
		})
	}
}

// inventory shows a store's latest inventory version and its items (?sku= for one).
func (s *Server) inventory(w http.ResponseWriter, r *http.Request) {
	id, err := s.storeParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, items, err := s.st.InventoryItems(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if sku := r.URL.Query().Get("sku"); sku != "" {
		var one []protocol.Item
		for _, it := range items {
			if it.SKU == sku {
				one = append(one, it)
			}
		}
		items = one
	}
	if items == nil {
		items = []protocol.Item{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"store": id, "state": st, "items": items})
}
