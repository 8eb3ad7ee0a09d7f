package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

const (
	// SessionCookie carries the id of an operator's login session.
	SessionCookie = "lanebridge_session"
	// maxBody caps every request body.
	maxBody = 1 << 20
	// touchEvery is how stale a session's last-seen time may get before a request renews it,
	// so that not every request writes.
	touchEvery = time.Minute
	// csp forbids inline and foreign script and style and framing by other sites.
	csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// ServeHTTP refuses foreign Host names, sets the security headers and caps the body before
// routing; the routes authenticate (handle).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r.Host) {
		s.writeJSON(w, http.StatusMisdirectedRequest, apiError{fmt.Sprintf("host %q is not served here; add it to http.hosts in hub.yaml", r.Host)})
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	s.mux.ServeHTTP(w, r)
}

// hostAllowed reports whether host (the Host header) names this hub: its name, or name:port,
// is in the hosts list.
func (s *Server) hostAllowed(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	for _, a := range s.hosts {
		if strings.EqualFold(a, name) || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

type principalKey struct{}

// authn is what guard learnt about a request: who, and the session if it came with a cookie.
type authn struct {
	p    *auth.Principal
	se   *store.Session
	note *string // what a change's handler adds to its audit entry
}

// note adds to the audit entry of a change (its state, a comment).
func note(r *http.Request, format string, a ...any) {
	if an, ok := r.Context().Value(principalKey{}).(authn); ok && an.note != nil {
		*an.note = fmt.Sprintf(format, a...)
	}
}

// principal is the authenticated principal of a request that passed guard.
func principal(r *http.Request) *auth.Principal {
	if a, ok := r.Context().Value(principalKey{}).(authn); ok {
		return a.p
	}
	return &auth.Principal{Kind: "anonymous"} // only on public routes, which act on nothing
}

// scope is the stores a request may see: nil for every store.
func scope(r *http.Request) []string {
	if ids := principal(r).Stores; len(ids) > 0 {
		return ids
	}
	return nil
}

// mayStore returns a not-found error for a store the request's principal may not see, so
// that it cannot learn whether the store exists.
func mayStore(r *http.Request, id string) error {
	if !principal(r).MayStore(id) {
		return fmt.Errorf("store %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// listStores lists the stores the request's principal may see.
func (s *Server) listStores(r *http.Request) ([]store.StoreInfo, error) {
	list, err := s.st.ListStores(r.Context())
	list = slices.DeleteFunc(list, func(si store.StoreInfo) bool { return mayStore(r, si.ID) != nil })
	if list == nil {
		list = []store.StoreInfo{}
	}
	return list, err
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// guard authenticates (Bearer token or session cookie), authorises by role, checks CSRF on
// changes made with a cookie, audits changes and runs h with the principal in the context.
func (s *Server) guard(pattern string, role auth.Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, se, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if p == nil {
			s.unauthorized(w, r)
			return
		}
		change := unsafeMethod(r.Method)
		deny := func(msg string) {
			if change {
				s.record(r, p.String(), pattern, "", strconv.Itoa(http.StatusForbidden)+" "+msg)
			}
			s.writeJSON(w, http.StatusForbidden, apiError{msg})
		}
		if (p.Kind == auth.KindStore) != (role == auth.Agent) {
			// A store's credentials open the agent routes only, and only they do.
			deny(fmt.Sprintf("forbidden: %s may not use this route", p))
			return
		}
		if p.Role < role {
			deny(fmt.Sprintf("forbidden: this needs the %s role; %s has %s", role, p, p.Role))
			return
		}
		if change && se != nil {
			if msg := checkCSRF(r, se); msg != "" {
				deny(msg)
				return
			}
		}
		detail := r.URL.RawQuery
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, authn{p, se, &detail}))
		if !change {
			h(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		s.record(r, p.String(), pattern, detail, strconv.Itoa(sw.code))
	}
}

// checkCSRF returns why a change carried by a session cookie is refused, or "": it needs the
// session's CSRF token in X-CSRF-Token and a same-origin Origin (or Referer).
func checkCSRF(r *http.Request, se *store.Session) string {
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(se.CSRFToken)) != 1 {
		return "forbidden: missing or wrong X-CSRF-Token (GET /api/v1/session returns it)"
	}
	if !sameOrigin(r, true) {
		return "forbidden: cross-origin request (Origin or Referer is not this hub)"
	}
	return ""
}

// sameOrigin reports whether the request's Origin, or else its Referer, is this hub. Without
// either header the answer is need.
func sameOrigin(r *http.Request, need bool) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return !need
	}
	u, err := url.Parse(o)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return err == nil && u.Scheme == scheme && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// authenticate returns the request's principal, and its session when it came with a cookie;
// nil without valid credentials. A request with an Authorization header is judged by it alone.
func (s *Server) authenticate(r *http.Request) (*auth.Principal, *store.Session, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		if strings.HasPrefix(h, "Basic ") {
			return s.authenticateStore(r)
		}
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			return nil, nil, nil
		}
		k, err := s.st.TokenByHash(ctx, auth.HashSecret(tok))
		if errors.Is(err, store.ErrNotFound) || (err == nil && !k.ExpiresAt.IsZero() && !s.now().Before(k.ExpiresAt)) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		return principalOf(auth.KindToken, k.Name, k.Role, k.Stores), nil, nil
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil, nil
	}
	id := auth.HashSecret(c.Value)
	se, err := s.st.Session(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if !se.Operator.DisabledAt.IsZero() || now.Sub(se.SeenAt) >= s.idle || now.Sub(se.CreatedAt) >= s.absolute {
		if err := s.st.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, nil, err
		}
		return nil, nil, nil
	}
	if now.Sub(se.SeenAt) >= touchEvery {
		if err := s.st.TouchSession(ctx, id, now); err != nil {
			return nil, nil, err
		}
	}
	return principalOf(auth.KindUser, se.Operator.Name, se.Operator.Role, se.Operator.Stores), &se, nil
}

// authenticateStore checks HTTP Basic credentials of a store's agent: user the store id,
// password its broker password (the current one, or the previous one during its rotation
// grace), of an active store. A store without a password (removed, or enrolled without one
// yet) gets nothing. Store passwords are 32 random bytes, unguessable like API tokens, so
// failures are not throttled (a store behind a shared address is not locked out by another).
func (s *Server) authenticateStore(r *http.Request) (*auth.Principal, *store.Session, error) {
	id, pw, ok := r.BasicAuth()
	if !ok || pw == "" || protocol.ValidateStoreID(id) != nil {
		return nil, nil, nil
	}
	c, err := s.st.Credentials(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		creds.Verify(creds.Hash("x"), pw) // as slow as a known store
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	match := false
	for _, h := range c.Valid(s.now()) {
		match = creds.Verify(h, pw) || match
	}
	if !match {
		return nil, nil, nil
	}
	return &auth.Principal{Kind: auth.KindStore, Name: id, Role: auth.Agent, Stores: []string{id}}, nil, nil
}

// principalOf builds a principal; a stored role that does not parse (a damaged row) gets
// auth.None, which no guarded route admits.
func principalOf(kind, name, role string, stores []string) *auth.Principal {
	rl, _ := auth.ParseRole(role)
	return &auth.Principal{Kind: kind, Name: name, Role: rl, Stores: stores}
}

const unauthorizedMsg = "authentication required: log in at /login or send Authorization: Bearer TOKEN"

// unauthorized answers 401: JSON, or for a browser asking for a page, HTML that sends it to
// the login page (a meta refresh and a link: no script).
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="lanebridge-hub"`)
	if r.Method == http.MethodGet && (r.URL.Path == "/" || strings.Contains(r.Header.Get("Accept"), "text/html")) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=/login">`+
			`<title>Log in</title></head><body><p>Authentication required: <a href="/login">log in</a>.</p></body></html>`)
		return
	}
	s.writeJSON(w, http.StatusUnauthorized, apiError{unauthorizedMsg})
}

// record appends to the audit log; a failure is logged, as the action already happened.
func (s *Server) record(r *http.Request, actor, action, detail, outcome string) {
	e := store.AuditEntry{At: s.now(), Actor: actor, Action: action, Target: r.URL.Path, Detail: detail,
		Remote: clientIP(r), Outcome: outcome}
	if err := s.st.AddAudit(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.Error("audit log write failed", "actor", actor, "action", action, "err", err)
	}
}

// clientIP is the address the request came from (no proxy headers are trusted).
func clientIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

type sessionInfo struct {
	CSRFToken string    `json:"csrf_token"`
	Username  string    `json:"username"`
	Role      auth.Role `json:"role"`
}

const badLogin = "wrong username or password"

// login checks a username and password (throttled per user and per client address) and
// starts a session: POST /api/v1/session {"username":…,"password":…}.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r, false) { // login CSRF: another site logging the browser in
		s.writeJSON(w, http.StatusForbidden, apiError{"forbidden: cross-origin login"})
		return
	}
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Username == "" || len(body.Username) > 128 || len(body.Password) > 1024 {
		s.fail(w, r, badRequest(`body: want {"username":…,"password":…}`))
		return
	}
	ctx, actor := r.Context(), "user:"+body.Username
	keys := []string{"user:" + body.Username, "ip:" + clientIP(r)}
	if wait := s.throttle.Try(keys...); wait > 0 {
		s.record(r, actor, "login", "", "throttled")
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		s.writeJSON(w, http.StatusTooManyRequests, apiError{"too many failed logins; try again later"})
		return
	}
	o, err := s.st.Operator(ctx, body.Username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	var ok bool
	if err == nil {
		ok = auth.VerifyPassword(o.PasswordHash, body.Password) && o.DisabledAt.IsZero()
	} else {
		auth.VerifyNobody(body.Password) // as slow as a known user: no user enumeration by timing
	}
	p := principalOf(auth.KindUser, o.Name, o.Role, o.Stores)
	if !ok || p.Role == auth.None {
		s.record(r, actor, "login", "", "failed")
		s.writeJSON(w, http.StatusUnauthorized, apiError{badLogin})
		return
	}
	s.throttle.Succeed(keys...)
	id, now := auth.NewSessionID(), s.now()
	se := store.Session{IDHash: auth.HashSecret(id), CSRFToken: auth.NewCSRFToken(), CreatedAt: now, SeenAt: now, Operator: o}
	if err := s.st.AddSession(ctx, se); err != nil {
		s.fail(w, r, err)
		return
	}
	s.record(r, actor, "login", "", "ok")
	if _, err := s.st.PruneSessions(ctx, now.Add(-s.idle), now.Add(-s.absolute)); err != nil {
		s.log.Warn("prune expired sessions", "err", err)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(s.absolute / time.Second)})
	s.writeJSON(w, http.StatusOK, sessionInfo{se.CSRFToken, o.Name, p.Role})
}

// session returns the current principal and, for a session, its CSRF token.
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	a, _ := r.Context().Value(principalKey{}).(authn)
	info := sessionInfo{Username: a.p.Name, Role: a.p.Role}
	if a.se != nil {
		info.CSRFToken = a.se.CSRFToken
	}
	s.writeJSON(w, http.StatusOK, info)
}

// logout ends the request's session and clears its cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if a, _ := r.Context().Value(principalKey{}).(authn); a.se != nil {
		if err := s.st.DeleteSession(r.Context(), a.se.IDHash); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// audit lists the audit log, newest first: GET /api/v1/audit?limit=&before_id=.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, before := 100, int64(0)
	var err error
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			s.fail(w, r, badRequest("limit: must be 1..1000"))
			return
		}
	}
	if v := q.Get("before_id"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil || before < 1 {
			s.fail(w, r, badRequest("before_id: not a positive integer"))
			return
		}
	}
	list, err := s.st.Audit(r.Context(), before, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := map[string]any{"entries": append([]store.AuditEntry{}, list...)}
	if len(list) == limit {
		resp["next_before_id"] = list[len(list)-1].ID
	}
	s.writeJSON(w, http.StatusOK, resp)
}
