// Package web serves the hub's HTTP API (JSON under /api/v1), health, Prometheus metrics and the
// operators' dashboard.
package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
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
	// DayStates lists the store-days of dates from..to with records or a close.
	DayStates(ctx context.Context, stores []string, from, to string) ([]store.DayState, error)
}

// ExceptionStore is what the exception endpoints read and change.
type ExceptionStore interface {
	Exceptions(ctx context.Context, f store.ExceptionFilter) ([]store.Exception, error)
	// ExceptionCounts counts exceptions in a state per store and reason.
	ExceptionCounts(ctx context.Context, state string) ([]store.ExceptionCount, error)
	// Exception returns store.ErrNotFound for an unknown id.
	Exception(ctx context.Context, id int64) (store.Exception, error)
	UpdateException(ctx context.Context, id int64, state, by, comment string) (store.Exception, error)
	// UpdateExceptions changes all of ids or, when one is unknown (store.ErrNotFound), none.
	UpdateExceptions(ctx context.Context, ids []int64, state, by, comment string) ([]store.Exception, error)
	// ExceptionHistory lists an exception's raises and changes, oldest first.
	ExceptionHistory(ctx context.Context, id int64) ([]store.ExceptionEvent, error)
}

// PostingStore is what the outbox endpoints read and change.
type PostingStore interface {
	Postings(ctx context.Context, f store.PostingFilter) ([]store.Posting, error)
	// Posting returns store.ErrNotFound for an unknown id.
	Posting(ctx context.Context, id int64) (store.Posting, error)
	// RepostPosting returns store.ErrExists for a posting that is done.
	RepostPosting(ctx context.Context, id int64) error
}

// InventoryReader is what the inventory endpoint reads.
type InventoryReader interface {
	InventoryItems(ctx context.Context, store string) (store.InventoryState, []protocol.Item, error)
}

// AlertReader is what the alerts endpoint and the dashboard read.
type AlertReader interface {
	Alerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, error)
}

// AuthStore is what authentication, sessions and the audit log read and change.
type AuthStore interface {
	// Operator returns store.ErrNotFound for an unknown operator.
	Operator(ctx context.Context, name string) (store.Operator, error)
	TokenByHash(ctx context.Context, hash string) (store.APIToken, error)
	AddSession(ctx context.Context, se store.Session) error
	Session(ctx context.Context, idHash string) (store.Session, error)
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	PruneSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int64, error)
	AddAudit(ctx context.Context, e store.AuditEntry) error
	Audit(ctx context.Context, beforeID int64, limit int) ([]store.AuditEntry, error)
}

// Store is everything the server reads and changes: the union of the interfaces above, one
// per group of endpoints, which the hub's store provides together; each handler uses only its
// group's.
type Store interface {
	StoreReader
	ExceptionStore
	PostingStore
	InventoryReader
	AlertReader
	AuthStore
	SeriesReader
	ReleaseStore
	EnrollStore
	ConfigPushReader
}

// ConfigPushReader is what the store page reads of configuration pushes.
type ConfigPushReader interface {
	// ConfigPushes lists a store's pushes by version.
	ConfigPushes(ctx context.Context, store string) ([]store.ConfigPush, error)
}

// Server is the HTTP front of the hub.
type Server struct {
	st      Store
	log     *slog.Logger
	gather  prometheus.Gatherer
	healthy func(context.Context) error
	mux     *http.ServeMux
	closer  DayCloser
	trading TradingDays
	// replayer sends replay commands (nil: none).
	replayer Replayer
	routes   []Route
	// enrollOpts is what POST /api/v1/enroll tells an agent.
	enrollOpts EnrollOptions

	hosts    []string
	idle     time.Duration
	absolute time.Duration
	now      func() time.Time
	throttle *auth.Throttle

	av Availability // availability and reservations (nil: not served)

	releasesDir string // published binaries ("" : downloads fail)
	downloads   *downloads
}

// Options configure the server.
type Options struct {
	Logger   *slog.Logger // nil discards
	Gatherer prometheus.Gatherer
	// Health reports whether the hub can serve (store reachable, broker up).
	Health func(context.Context) error
	// Closer serves the close endpoints (nil: not served).
	Closer DayCloser
	// Trading, when set, makes closing a day that is still trading need a reason.
	Trading TradingDays
	// Replayer serves POST /api/v1/stores/{store}/replay and /api/v1/exceptions/{id}/replay
	// (nil: not served).
	Replayer Replayer
	// Inventory serves POST /api/v1/inventory/refresh (nil: not served).
	Inventory InventoryRefresher
	// Hosts are the names (or name:port) a request's Host may carry; others are refused, so a
	// DNS-rebinding page cannot reach the API. Empty: localhost, 127.0.0.1 and ::1.
	Hosts []string
	// SessionIdle and SessionAbsolute end a login session after that long unused or since the
	// login (defaults 30m and 12h).
	SessionIdle, SessionAbsolute time.Duration
	// Now is the clock of sessions and the login throttle (nil: time.Now).
	Now func() time.Time
	// ReleasesDir holds the published agent binaries, named by sha256 (rollouts.releases_dir).
	ReleasesDir string
	// MaxDownloads caps concurrent binary downloads (default 20; rollouts.max_downloads).
	MaxDownloads int
	// Enroll is what POST /api/v1/enroll tells an enrolled agent.
	Enroll EnrollOptions
	// Availability serves /api/v1/availability, /api/v1/reservations and /availability (nil:
	// not served).
	Availability Availability
}

// Route is an entry of the route table: a mux pattern and the least role it needs
// (auth.None: public).
type Route struct {
	Pattern string
	Role    auth.Role
}

// public marks a route that needs no authentication.
const public = auth.None

// New builds the handler tree.
func New(st Store, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.DefaultGatherer
	}
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{st: st, log: o.Logger.With("component", "web"), gather: o.Gatherer, healthy: o.Health, mux: http.NewServeMux(),
		hosts: o.Hosts, idle: cmp.Or(o.SessionIdle, 30*time.Minute), absolute: cmp.Or(o.SessionAbsolute, 12*time.Hour),
		now: o.Now, throttle: auth.NewThrottle(o.Now), trading: o.Trading, enrollOpts: o.Enroll}
	s.handle("GET /healthz", public, s.health)
	s.handle("POST /api/v1/session", public, s.login)
	s.handle("POST /api/v1/enroll", public, s.enroll) // the one-time token is the credential
	s.handle("GET /api/v1/session", auth.Viewer, s.session)
	s.handle("DELETE /api/v1/session", auth.Viewer, s.logout)
	s.handle("GET /api/v1/audit", auth.Admin, s.audit)
	s.handle("GET /api/v1/stores", auth.Viewer, s.stores)
	s.handle("GET /api/v1/stores/{store}", auth.Viewer, s.storeInfo)
	s.handle("GET /api/v1/stores/{store}/records", auth.Viewer, s.records)
	s.handle("GET /api/v1/stores/{store}/days/{date}", auth.Viewer, s.day)
	s.handle("GET /api/v1/exceptions", auth.Viewer, s.exceptions)
	s.handle("GET /api/v1/alerts", auth.Viewer, s.alerts)
	s.handle("GET /metrics", auth.Viewer, promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}).ServeHTTP)
	s.handle("GET /{$}", auth.Viewer, s.fleet)
	s.handle("GET /stores/{store}", auth.Viewer, s.storePage)
	s.handle("GET /calendar", auth.Viewer, s.calendar)
	s.handle("GET /calendar/{store}/{date}", auth.Viewer, s.calendarDay)
	s.routesLogin()
	s.routesERP(o.Closer)
	s.routesInventory(o.Inventory)
	s.routesReplay(o.Replayer)
	s.routesCharts()
	s.routesExceptions(o.Replayer)
	s.handle("GET /alerts", auth.Viewer, s.alertsPage)
	s.routesReleases(o)
	s.routesAvailability(o.Availability)
	return s
}

// handle registers a route and records it in the route table; every route but the public ones
// authenticates, authorises by role and, for changes made with a session cookie, checks CSRF.
func (s *Server) handle(pattern string, role auth.Role, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{pattern, role})
	if role == public {
		s.mux.HandleFunc(pattern, h)
		return
	}
	s.mux.HandleFunc(pattern, s.guard(pattern, role, h))
}

// Routes returns the route table.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

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

// intParam is an integer query parameter 1..max (def when absent) stored by dst.
type intParam struct {
	name     string
	max, def int64
	dst      func(int64)
}

// intParams reads integer query parameters; a bad one is a bad request naming it.
func intParams(q url.Values, ps ...intParam) error {
	for _, p := range ps {
		v := p.def
		if raw := q.Get(p.name); raw != "" {
			var err error
			if v, err = strconv.ParseInt(raw, 10, 64); err != nil || v < 1 || v > p.max {
				return badRequest(fmt.Sprintf("%s: must be an integer 1..%d", p.name, p.max))
			}
		}
		p.dst(v)
	}
	return nil
}

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
	return id, mayStore(r, id)
}

func (s *Server) stores(w http.ResponseWriter, r *http.Request) {
	list, err := s.listStores(r)
	if err != nil {
		s.fail(w, r, err)
		return
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
		if after, err = strconv.ParseUint(v, 10, 64); err != nil || after > protocol.MaxSeq {
			s.fail(w, r, badRequest("after_seq: must be an integer 0..2^53"))
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

// exceptions serves GET /api/v1/exceptions: newest first, a page of limit (default 100) with
// "next", the before_id of the following page, when more may follow; per_store=N keeps at most
// N of each store on the page, age_hours=N those first raised more than N hours ago. "counts"
// sums the exceptions matching the state filter per store and reason, so every store with
// exceptions shows on the first page however many one has.
func (s *Server) exceptions(w http.ResponseWriter, r *http.Request) {
	f, list, err := s.listExceptions(r, r.URL.Query(), 100)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.exceptionCounts(r, f.State)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := map[string]any{"exceptions": list, "counts": counts}
	if len(list) == f.Limit {
		resp["next"] = list[len(list)-1].ID
	}
	s.writeJSON(w, http.StatusOK, resp)
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

// exceptionCounts counts exceptions per store and reason, of the stores the request's
// principal may see.
func (s *Server) exceptionCounts(r *http.Request, state string) ([]store.ExceptionCount, error) {
	counts, err := s.st.ExceptionCounts(r.Context(), state)
	counts = slices.DeleteFunc(counts, func(c store.ExceptionCount) bool { return mayStore(r, c.Store) != nil })
	if counts == nil {
		counts = []store.ExceptionCount{}
	}
	return counts, err
}
