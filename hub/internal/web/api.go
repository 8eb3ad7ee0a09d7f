// Package web serves the hub's HTTP API (JSON under /api/v1), health, Prometheus metrics and the
// operators' dashboard.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// StoreReader is what the store, record and day endpoints and the dashboard read.
type StoreReader interface {
	ListStores(ctx context.Context) ([]store.StoreInfo, error)
	// GetStore returns store.ErrNotFound for an unknown store.
	GetStore(ctx context.Context, id string) (store.StoreInfo, error)
	Records(ctx context.Context, store, epoch string, afterSeq uint64, limit int) ([]protocol.Record, error)
	Day(ctx context.Context, store, businessDate string) (store.Day, error)
}

// ExceptionStore is what the exception endpoints read and change.
type ExceptionStore interface {
	Exceptions(ctx context.Context, f store.ExceptionFilter) ([]store.Exception, error)
	// Exception returns store.ErrNotFound for an unknown id.
	Exception(ctx context.Context, id int64) (store.Exception, error)
	UpdateException(ctx context.Context, id int64, state, by, comment string) (store.Exception, error)
}

// PostingStore is what the outbox endpoints read and change.
type PostingStore interface {
	Postings(ctx context.Context, f store.PostingFilter) ([]store.Posting, error)
	// RepostPosting returns store.ErrExists for a posting that is done.
	RepostPosting(ctx context.Context, id int64) error
}

// InventoryReader is what the inventory endpoint reads.
type InventoryReader interface {
	InventoryItems(ctx context.Context, store string) (store.InventoryState, []protocol.Item, error)
}

// Store is everything the server reads and changes. It has ten methods because it is the
// union of the four interfaces above, one per group of endpoints, which the hub's store
// provides together; each handler uses only its group's.
type Store interface {
	StoreReader
	ExceptionStore
	PostingStore
	InventoryReader
}

// Server is the HTTP front of the hub.
type Server struct {
	st      Store
	log     *slog.Logger
	gather  prometheus.Gatherer
	healthy func(context.Context) error
	mux     *http.ServeMux
	closer  DayCloser
}

// Options configure the server.
type Options struct {
	Logger   *slog.Logger // nil discards
	Gatherer prometheus.Gatherer
	// Health reports whether the hub can serve (store reachable, broker up).
	Health func(context.Context) error
	// Closer serves the close endpoints (nil: not served).
	Closer DayCloser
	// Inventory serves POST /api/v1/inventory/refresh (nil: not served).
	Inventory InventoryRefresher
}

// New builds the handler tree.
func New(st Store, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.DefaultGatherer
	}
	s := &Server{st: st, log: o.Logger.With("component", "web"), gather: o.Gatherer, healthy: o.Health, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /api/v1/stores", s.stores)
	s.mux.HandleFunc("GET /api/v1/stores/{store}", s.storeInfo)
	s.mux.HandleFunc("GET /api/v1/stores/{store}/records", s.records)
	s.mux.HandleFunc("GET /api/v1/stores/{store}/days/{date}", s.day)
	s.mux.HandleFunc("GET /api/v1/exceptions", s.exceptions)
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /{$}", s.dashboard)
	s.routesLogin()
	s.routesERP(o.Closer)
	s.routesInventory(o.Inventory)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type apiError struct {
	Error string `json:"error"`
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Debug("write response", "err", err)
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.writeJSON(w, http.StatusNotFound, apiError{err.Error()})
	case errors.Is(err, errBadRequest):
		s.writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
	default:
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
		s.writeJSON(w, http.StatusInternalServerError, apiError{"internal error; see the hub log"})
	}
}

var errBadRequest = errors.New("bad request")

func badRequest(msg string) error { return &wrapped{msg, errBadRequest} }

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

func (s *Server) storeParam(r *http.Request) (string, error) {
	id := r.PathValue("store")
	if err := protocol.ValidateStoreID(id); err != nil {
		return "", badRequest(err.Error())
	}
	return id, nil
}

func (s *Server) stores(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.ListStores(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []store.StoreInfo{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"stores": list})
}

func (s *Server) storeInfo(w http.ResponseWriter, r *http.Request) {
	id, err := s.storeParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := s.st.GetStore(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, info)
}

func (s *Server) records(w http.ResponseWriter, r *http.Request) {
	id, err := s.storeParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after_seq"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			s.fail(w, r, badRequest("after_seq: not a non-negative integer"))
			return
		}
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 5000 {
			s.fail(w, r, badRequest("limit: must be 1..5000"))
			return
		}
	}
	recs, err := s.st.Records(r.Context(), id, q.Get("epoch"), after, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if recs == nil {
		recs = []protocol.Record{}
	}
	resp := map[string]any{"records": recs}
	if len(recs) == limit {
		resp["next_after_seq"] = recs[len(recs)-1].Seq
	}
	s.writeJSON(w, http.StatusOK, resp)
}

func (s *Server) day(w http.ResponseWriter, r *http.Request) {
	id, err := s.storeParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	date := r.PathValue("date")
	if _, err := time.Parse("2006-01-02", date); err != nil {
		s.fail(w, r, badRequest("business_date: use YYYY-MM-DD"))
		return
	}
	d, err := s.st.Day(r.Context(), id, date)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, d)
}

func (s *Server) exceptions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ExceptionFilter{Store: q.Get("store"), Reason: q.Get("reason"), State: q.Get("state"), Limit: 500}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			s.fail(w, r, badRequest("limit: must be 1..10000"))
			return
		}
		f.Limit = n
	}
	list, err := s.st.Exceptions(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []store.Exception{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"exceptions": list})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if s.healthy != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.healthy(ctx); err != nil {
			s.writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "error": err.Error()})
			return
		}
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
