package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// DayCloser closes store-days (package reconcile). Results are JSON-encodable.
type DayCloser interface {
	// CloseDay runs the three-way close of a store-day now and returns its result.
	CloseDay(ctx context.Context, store, businessDate string) (any, error)
	// ClosedDay returns the stored result of the latest close (store.ErrNotFound if none).
	ClosedDay(ctx context.Context, store, businessDate string) (any, error)
}

// TradingDays says whether a store's business day is still trading in the store's zone.
type TradingDays interface {
	// StillTrading returns "" when the day has ended, else when it trades until, for people.
	StillTrading(ctx context.Context, store, date string, now time.Time) (string, error)
}

// routesERP registers the outbox and exception lifecycle endpoints, and the close endpoints
// when closer is not nil.
func (s *Server) routesERP(closer DayCloser) {
	s.closer = closer
	s.handle("GET /api/v1/postings", auth.Viewer, s.postings)
	s.handle("POST /api/v1/postings/{id}/repost", auth.Operator, s.repost)
	s.handle("GET /api/v1/exceptions/{id}", auth.Viewer, s.exception)
	s.handle("POST /api/v1/exceptions/{id}", auth.Operator, s.updateException)
	if closer != nil {
		s.handle("POST /api/v1/stores/{store}/days/{date}/close", auth.Operator, s.closeDay)
		s.handle("GET /api/v1/stores/{store}/days/{date}/close", auth.Viewer, s.closedDay)
	}
}

func (s *Server) postings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.PostingFilter{Store: q.Get("store"), BusinessDate: q.Get("date"), State: q.Get("state"), Key: q.Get("key"), Limit: 1000,
		Stores: scope(r)}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			s.fail(w, r, badRequest("limit: must be 1..10000"))
			return
		}
		f.Limit = n
	}
	list, err := s.st.Postings(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"postings": list})
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, badRequest("id: not a positive integer")
	}
	return id, nil
}

func (s *Server) repost(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.st.Posting(r.Context(), id)
	if err == nil {
		err = mayStore(r, p.Store)
	}
	if err == nil {
		err = s.st.RepostPosting(r.Context(), id)
	}
	if err != nil {
		if errors.Is(err, store.ErrExists) {
			s.writeJSON(w, http.StatusConflict, apiError{err.Error()})
			return
		}
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"id": id, "state": store.PostingPending})
}

func (s *Server) exception(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e, err := s.scopedException(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, e)
}

// scopedException returns an exception the request's principal may see (else ErrNotFound).
func (s *Server) scopedException(r *http.Request, id int64) (store.Exception, error) {
	e, err := s.st.Exception(r.Context(), id)
	if err == nil {
		err = mayStore(r, e.Store)
	}
	return e, err
}

// exceptionUpdate is the body of POST /api/v1/exceptions/{id}. By is accepted for older
// clients and ignored: who made the change is the authenticated principal.
type exceptionUpdate struct {
	State   string `json:"state"`
	By      string `json:"by"`
	Comment string `json:"comment"`
}

// updateException moves an exception along open → acknowledged → resolved, recording who
// (the principal) and why. State "reposted" (erp_rejected only) queues its posting again.
func (s *Server) updateException(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var u exceptionUpdate
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		s.fail(w, r, badRequest("body: want {\"state\":..., \"comment\":...}: "+err.Error()))
		return
	}
	note(r, "state=%s comment=%q", u.State, u.Comment)
	e, err := s.scopedException(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch u.State {
	case store.StateAcknowledged, store.StateResolved, store.StateOpen:
	case store.StateReposted:
		if e.Reason != store.ReasonERPRejected {
			s.fail(w, r, badRequest(fmt.Sprintf("state reposted: only %s exceptions have a posting to re-post", store.ReasonERPRejected)))
			return
		}
		ps, err := s.st.Postings(r.Context(), store.PostingFilter{Store: e.Store, Key: e.Key, Limit: 1})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if len(ps) == 0 {
			s.fail(w, r, fmt.Errorf("posting %s: %w", e.Key, store.ErrNotFound))
			return
		}
		if err := s.st.RepostPosting(r.Context(), ps[0].ID); err != nil && !errors.Is(err, store.ErrExists) {
			s.fail(w, r, err)
			return
		}
	default:
		s.fail(w, r, badRequest("state: use acknowledged, resolved, open or reposted"))
		return
	}
	e, err = s.st.UpdateException(r.Context(), id, u.State, principal(r).String(), u.Comment)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, e)
}

func (s *Server) dayParams(r *http.Request) (string, string, error) {
	id, err := s.storeParam(r)
	if err != nil {
		return "", "", err
	}
	date := r.PathValue("date")
	if _, err := time.Parse("2006-01-02", date); err != nil {
		return "", "", badRequest("business_date: use YYYY-MM-DD")
	}
	return id, date, nil
}

func (s *Server) closeDay(w http.ResponseWriter, r *http.Request) {
	id, date, err := s.dayParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		s.fail(w, r, badRequest(`body: not JSON {"reason":"…"}`))
		return
	}
	body.Reason = protocol.Clip(strings.Join(strings.Fields(body.Reason), " "), 500)
	if s.trading != nil && body.Reason == "" {
		until, err := s.trading.StillTrading(r.Context(), id, date, s.now())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if until != "" {
			s.writeJSON(w, http.StatusConflict, apiError{fmt.Sprintf(`business day %s of store %s is still trading (%s); `+
				`closing it now needs a reason: send {"reason":"…"}`, date, id, until)})
			return
		}
	}
	if body.Reason != "" {
		note(r, "reason: %s", body.Reason)
	}
	res, err := s.closer.CloseDay(r.Context(), id, date)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, res)
}

func (s *Server) closedDay(w http.ResponseWriter, r *http.Request) {
	id, date, err := s.dayParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.closer.ClosedDay(r.Context(), id, date)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, res)
}
