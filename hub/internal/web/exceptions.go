package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/reconcile"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// maxBulk bounds the exceptions one bulk action changes.
const maxBulk = 500

// routesExceptions registers the exception queue's pages, its history and bulk endpoints and,
// when replayer is not nil, the replay request of a missing_receipts exception.
func (s *Server) routesExceptions(replayer Replayer) {
	s.replayer = replayer
	s.handle("GET /api/v1/exceptions/{id}/history", auth.Viewer, s.exceptionHistory)
	s.handle("POST /api/v1/exceptions/bulk", auth.Operator, s.bulkExceptions)
	if replayer != nil {
		s.handle("POST /api/v1/exceptions/{id}/replay", auth.Operator, s.replayException)
	}
	s.handle("GET /exceptions", auth.Viewer, s.exceptionsPage)
	s.handle("GET /exceptions/{id}", auth.Viewer, s.exceptionPage)
}

// exceptionFilter reads the exception filters of a query: store, reason, state, age_hours
// (first raised longer ago than that), limit (default def), before_id and per_store.
func (s *Server) exceptionFilter(r *http.Request, q url.Values, def int64) (store.ExceptionFilter, error) {
	f := store.ExceptionFilter{Store: q.Get("store"), Reason: q.Get("reason"), State: q.Get("state"), Stores: scope(r)}
	err := intParams(q, intParam{"limit", 10000, def, func(v int64) { f.Limit = int(v) }},
		intParam{"before_id", 1<<63 - 1, 0, func(v int64) { f.BeforeID = v }},
		intParam{"per_store", 1000, 0, func(v int64) { f.PerStore = int(v) }},
		intParam{"age_hours", 100000, 0, func(v int64) {
			if v > 0 {
				f.OlderThan = s.now().Add(-time.Duration(v) * time.Hour)
			}
		}})
	return f, err
}

// listExceptions lists the exceptions the filters of q select (exceptionFilter).
func (s *Server) listExceptions(r *http.Request, q url.Values, def int64) (store.ExceptionFilter, []store.Exception, error) {
	f, err := s.exceptionFilter(r, q, def)
	if err != nil {
		return f, nil, err
	}
	list, err := s.st.Exceptions(r.Context(), f)
	if list == nil {
		list = []store.Exception{}
	}
	return f, list, err
}

// exceptionView is an exception with what may be done to it: its posting (erp_rejected), and
// whether its receipts can be asked for again (missing_receipts).
type exceptionView struct {
	store.Exception
	PostingID int64 `json:"posting_id,omitempty"`
	Replay    bool  `json:"replayable,omitempty"`
}

// view adds an exception's posting and replay to it.
func (s *Server) view(ctx context.Context, e store.Exception) (exceptionView, error) {
	v := exceptionView{Exception: e}
	_, _, _, v.Replay = reconcile.MissingReceipts(e)
	v.Replay = v.Replay && s.replayer != nil
	if e.Reason == store.ReasonERPRejected {
		ps, err := s.st.Postings(ctx, store.PostingFilter{Store: e.Store, Key: e.Key, Limit: 1})
		if err != nil {
			return v, err
		}
		if len(ps) > 0 {
			v.PostingID = ps[0].ID
		}
	}
	return v, nil
}

// exceptionHistory serves GET /api/v1/exceptions/{id}/history: who changed it, when, from
// which state to which, and why, oldest first.
func (s *Server) exceptionHistory(w http.ResponseWriter, r *http.Request) {
	e, h, err := s.historyOf(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"exception": e, "history": h})
}

// historyOf reads the exception of the request's {id} (one the principal may see) and its
// history.
func (s *Server) historyOf(r *http.Request) (exceptionView, []store.ExceptionEvent, error) {
	id, err := pathID(r)
	if err != nil {
		return exceptionView{}, nil, err
	}
	e, err := s.scopedException(r, id)
	if err != nil {
		return exceptionView{}, nil, err
	}
	v, err := s.view(r.Context(), e)
	if err != nil {
		return v, nil, err
	}
	h, err := s.st.ExceptionHistory(r.Context(), id)
	return v, h, err
}

// bulkResult is the outcome for one id of a bulk action.
type bulkResult struct {
	ID     int64  `json:"id"`
	Status int    `json:"status"` // 200, or 404 for an exception the principal may not see
	State  string `json:"state,omitempty"`
	Error  string `json:"error,omitempty"`
}

// bulkExceptions serves POST /api/v1/exceptions/bulk {"ids":[…],"state":…,"comment":…}: it
// acknowledges or resolves up to maxBulk exceptions at once, each the principal may see (the
// others answer 404 in their result and are not changed), and reports each id's result.
func (s *Server) bulkExceptions(w http.ResponseWriter, r *http.Request) {
	var b struct {
		IDs     []int64 `json:"ids"`
		State   string  `json:"state"`
		Comment string  `json:"comment"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		s.fail(w, r, badRequest(`body: want {"ids":[…],"state":"acknowledged|resolved","comment":…}: `+err.Error()))
		return
	}
	ids := slices.Compact(slices.Sorted(slices.Values(b.IDs)))
	switch {
	case len(ids) == 0 || len(ids) > maxBulk:
		s.fail(w, r, badRequest(fmt.Sprintf("ids: give 1..%d exception ids", maxBulk)))
		return
	case b.State != store.StateAcknowledged && b.State != store.StateResolved:
		s.fail(w, r, badRequest("state: use acknowledged or resolved"))
		return
	}
	note(r, "state=%s comment=%q ids=%v", b.State, b.Comment, ids)
	seen, err := s.st.Exceptions(r.Context(), store.ExceptionFilter{IDs: ids, Stores: scope(r), Limit: len(ids)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var ok []int64
	for _, e := range seen {
		ok = append(ok, e.ID)
	}
	if len(ok) > 0 {
		if _, err := s.st.UpdateExceptions(r.Context(), ok, b.State, principal(r).String(), b.Comment); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	res := make([]bulkResult, len(ids))
	for i, id := range ids {
		res[i] = bulkResult{ID: id, Status: http.StatusOK, State: b.State}
		if !slices.Contains(ok, id) {
			res[i] = bulkResult{ID: id, Status: http.StatusNotFound, Error: fmt.Sprintf("exception %d: %s", id, store.ErrNotFound)}
		}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"results": res, "changed": len(ok), "not_found": len(ids) - len(ok)})
}

// replayException serves POST /api/v1/exceptions/{id}/replay: for a missing_receipts
// exception it asks the store's agent to send the missing receipts again and acknowledges the
// exception with a comment naming the command (its optional body {"comment":…} is added).
// When the receipts arrive, the next close of the day no longer finds the gap.
func (s *Server) replayException(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var b struct {
		Comment string `json:"comment"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&b); err != nil && err != io.EOF {
		s.fail(w, r, badRequest(`body: want nothing or {"comment":…}: `+err.Error()))
		return
	}
	e, err := s.scopedException(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	date, term, gap, ok := reconcile.MissingReceipts(e)
	if !ok {
		s.fail(w, r, badRequest(fmt.Sprintf("replay: only %s exceptions name receipts to replay; this is %s", reconcile.ReasonMissingReceipts, e.Reason)))
		return
	}
	cmd, err := s.replayer.Replay(r.Context(), e.Store, protocol.Command{Terminal: term, BusinessDate: date, FromReceipt: gap[0], ToReceipt: gap[1]})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	comment := fmt.Sprintf("replay of terminal %s receipts %d..%d of %s requested: command %s", term, gap[0], gap[1], date, cmd)
	if b.Comment != "" {
		comment += "; " + b.Comment
	}
	note(r, "command=%s", cmd)
	if e, err = s.st.UpdateException(r.Context(), id, store.StateAcknowledged, principal(r).String(), comment); err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"exception": e, "command": cmd})
}

// exceptionsQueue is the data of the exceptions page.
type exceptionsQueue struct {
	Store, Reason, State, Age string
	Stores, Reasons           []string
	States                    []string
	Exceptions                []exceptionView
	Next                      string // the next page's URL, "" on the last
	CanAct                    bool
}

// pageSize is how many exceptions a page of the queue lists.
const pageSize = 50

// exceptionsPage serves /exceptions: the queue, newest first, filtered by the query's store,
// reason, state (default open; "any" for all) and age_hours, pageSize a page.
func (s *Server) exceptionsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if !q.Has("state") {
		state = store.StateOpen
	}
	fq := url.Values{}
	for k, v := range q {
		fq[k] = v
	}
	fq.Set("state", state)
	fq.Del("limit") // pages are of pageSize
	if state == "any" {
		fq.Del("state")
	}
	f, list, err := s.listExceptions(r, fq, pageSize)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stores, err := s.listStores(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.exceptionCounts(r, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := exceptionsQueue{Store: f.Store, Reason: f.Reason, State: state, Age: q.Get("age_hours"), CanAct: principal(r).Role >= auth.Operator,
		States: []string{store.StateOpen, store.StateAcknowledged, store.StateResolved, store.StateReposted, "any"}}
	for _, si := range stores {
		d.Stores = append(d.Stores, si.ID)
	}
	for _, c := range counts {
		if !slices.Contains(d.Reasons, c.Reason) {
			d.Reasons = append(d.Reasons, c.Reason)
		}
	}
	slices.Sort(d.Reasons)
	for _, e := range list {
		v, err := s.view(r.Context(), e)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.Exceptions = append(d.Exceptions, v)
	}
	if len(list) == f.Limit {
		q.Set("before_id", strconv.FormatInt(list[len(list)-1].ID, 10))
		d.Next = "/exceptions?" + q.Encode()
	}
	s.render(w, r, "exceptions", d)
}

// exceptionDetail is the data of an exception's page.
type exceptionDetail struct {
	E       exceptionView
	History []store.ExceptionEvent
	Posting *store.Posting
	CanAct  bool
}

// PageTitle names the exception.
func (d exceptionDetail) PageTitle() string { return fmt.Sprintf("Exception %d", d.E.ID) }

// exceptionPage serves /exceptions/{id}: the exception, its posting, its history and, for
// operators, its actions.
func (s *Server) exceptionPage(w http.ResponseWriter, r *http.Request) {
	e, h, err := s.historyOf(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := exceptionDetail{E: e, History: h, CanAct: principal(r).Role >= auth.Operator}
	if e.PostingID != 0 {
		p, err := s.st.Posting(r.Context(), e.PostingID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.Posting = &p
	}
	s.render(w, r, "exceptions.detail", d)
}
