package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/alerts"
	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/availability"
	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// Availability is what the availability and reservation endpoints use (package availability).
type Availability interface {
	Figures(ctx context.Context, q availability.Query) (availability.Result, error)
	Reserve(ctx context.Context, r availability.ReserveRequest) (store.Reservation, bool, error)
	Release(ctx context.Context, channel, orderID string) (store.Reservation, bool, error)
	Fulfil(ctx context.Context, channel, orderID string) (store.Reservation, bool, error)
	Reservations(ctx context.Context, f store.ReservationFilter) ([]store.Reservation, error)
	SetSafetyStock(ctx context.Context, channel, scope, key, quantity string, remove bool) error
	RecordShown(ctx context.Context, channel, sku, shown string, at time.Time) error
	Channels() []string
}

// routesAvailability registers the availability endpoints and page (none when av is nil).
func (s *Server) routesAvailability(av Availability) {
	if av == nil {
		return
	}
	s.av = av
	s.handle("GET /api/v1/availability", auth.Viewer, s.everyStore(s.availability))
	s.handle("PUT /api/v1/availability/safety-stock", auth.Operator, s.everyStore(s.safetyStock))
	s.handle("POST /api/v1/availability/shown", auth.Operator, s.everyStore(s.shown))
	s.handle("GET /api/v1/reservations", auth.Viewer, s.everyStore(s.reservations))
	s.handle("POST /api/v1/reservations", auth.Operator, s.everyStore(s.reserve))
	s.handle("DELETE /api/v1/reservations/{channel}/{order_id}", auth.Operator, s.everyStore(s.reservationChange(av.Release)))
	s.handle("POST /api/v1/reservations/{channel}/{order_id}/fulfil", auth.Operator, s.everyStore(s.reservationChange(av.Fulfil)))
	s.handle("GET /availability", auth.Viewer, s.everyStore(s.availabilityPage))
}

// everyStore refuses a principal limited to some stores: availability and channel orders span
// the pools of every store.
func (s *Server) everyStore(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if scope(r) != nil {
			s.writeJSON(w, http.StatusForbidden, apiError{"forbidden: availability spans every store; " + principal(r).String() + " is limited to some"})
			return
		}
		h(w, r)
	}
}

// failAvail maps the availability errors to answers.
func (s *Server) failAvail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, availability.ErrBadRequest), errors.Is(err, availability.ErrUnknownChannel):
		s.writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
	case errors.Is(err, store.ErrReservationMismatch), errors.Is(err, store.ErrReservationState):
		s.writeJSON(w, http.StatusConflict, apiError{err.Error()})
	case errors.Is(err, availability.ErrOrderConflict):
		s.writeJSON(w, http.StatusUnprocessableEntity, apiError{err.Error() + "; an exception was raised"})
	default:
		s.fail(w, r, err)
	}
}

// availability answers GET /api/v1/availability?sku=&store=&channel=&since_version=&limit=.
func (s *Server) availability(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := availability.Query{SKU: q.Get("sku"), Store: q.Get("store"), Channel: q.Get("channel")}
	if v := q.Get("since_version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, badRequest("since_version: must be an integer 0 or more"))
			return
		}
		aq.SinceVersion = n
	}
	if err := intParams(q, intParam{name: "limit", max: 5000, def: 1000, dst: func(v int64) { aq.Limit = int(v) }}); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.av.Figures(r.Context(), aq)
	if err != nil {
		s.failAvail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, res)
}

// decodeBody reads a JSON body of at most 256 KiB with no unknown fields into v.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 256<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body: " + err.Error())
	}
	return nil
}

// reserve answers POST /api/v1/reservations: 201 for a new reservation, 200 for a repeat.
func (s *Server) reserve(w http.ResponseWriter, r *http.Request) {
	var req availability.ReserveRequest
	if err := decodeBody(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, created, err := s.av.Reserve(r.Context(), req)
	if err != nil {
		s.failAvail(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	note(r, "channel=%s order_id=%s state=%s created=%v", v.Channel, v.OrderID, v.State, created)
	s.writeJSON(w, code, v)
}

// reservationChange answers a release or a fulfil of {channel}/{order_id}.
func (s *Server) reservationChange(fn func(ctx context.Context, channel, orderID string) (store.Reservation, bool, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, changed, err := fn(r.Context(), r.PathValue("channel"), r.PathValue("order_id"))
		if err != nil {
			s.failAvail(w, r, err)
			return
		}
		note(r, "state=%s changed=%v", v.State, changed)
		s.writeJSON(w, http.StatusOK, map[string]any{"reservation": v, "changed": changed})
	}
}

// reservations lists reservations: GET /api/v1/reservations?channel=&state=&limit=.
func (s *Server) reservations(w http.ResponseWriter, r *http.Request) {
	f := store.ReservationFilter{Channel: r.URL.Query().Get("channel"), State: r.URL.Query().Get("state")}
	if err := intParams(r.URL.Query(), intParam{name: "limit", max: 5000, def: 1000, dst: func(v int64) { f.Limit = int(v) }}); err != nil {
		s.fail(w, r, err)
		return
	}
	vs, err := s.av.Reservations(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"reservations": vs})
}

// safetyStock answers PUT /api/v1/availability/safety-stock
// {"channel"?, "scope": default|sku|category, "key"?, "quantity"?, "remove"?}.
func (s *Server) safetyStock(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Channel, Scope, Key, Quantity string
		Remove                        bool
	}
	if err := decodeBody(r, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.av.SetSafetyStock(r.Context(), b.Channel, b.Scope, b.Key, b.Quantity, b.Remove); err != nil {
		s.failAvail(w, r, err)
		return
	}
	note(r, "channel=%s scope=%s key=%s quantity=%s remove=%v", b.Channel, b.Scope, b.Key, b.Quantity, b.Remove)
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// shown answers POST /api/v1/availability/shown {"channel","sku","shown"}: what a channel
// displays now, for the drift alert.
func (s *Server) shown(w http.ResponseWriter, r *http.Request) {
	var b struct{ Channel, SKU, Shown string }
	if err := decodeBody(r, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.av.RecordShown(r.Context(), b.Channel, b.SKU, b.Shown, s.now()); err != nil {
		s.failAvail(w, r, errors.Join(availability.ErrBadRequest, err))
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type availabilityPage struct {
	Channels     []string
	Result       availability.Result
	Reservations []store.Reservation
	Drift        []store.Alert
}

// availabilityPage shows availability per SKU across stores and channels, the reservations and
// the open inventory drift alerts.
func (s *Server) availabilityPage(w http.ResponseWriter, r *http.Request) {
	d := availabilityPage{Channels: s.av.Channels()}
	var err error
	if d.Result, err = s.av.Figures(r.Context(), availability.Query{SKU: r.URL.Query().Get("sku"), Limit: 500}); err != nil {
		s.fail(w, r, err)
		return
	}
	slices.SortFunc(d.Result.Items, func(a, b availability.Item) int { return strings.Compare(a.SKU, b.SKU) })
	if d.Reservations, err = s.av.Reservations(r.Context(), store.ReservationFilter{Limit: 200}); err != nil {
		s.fail(w, r, err)
		return
	}
	open, err := s.st.Alerts(r.Context(), store.AlertFilter{State: store.AlertOpen, Limit: 500})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, a := range open {
		if a.Kind == alerts.InventoryDrift {
			d.Drift = append(d.Drift, a)
		}
	}
	s.render(w, r, "availability", d)
}
