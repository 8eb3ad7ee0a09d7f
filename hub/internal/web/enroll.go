package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// EnrollStore is what the enrolment endpoint changes.
type EnrollStore interface {
	// RedeemEnrollToken uses a token once and gives its store the new password hashes
	// (store.ErrNotFound, ErrTokenUsed, ErrTokenExpired, ErrStoreNotActive).
	RedeemEnrollToken(ctx context.Context, hash, from string, now time.Time, passwordHash, mosquittoHash string) (string, error)
}

// EnrollOptions say what an enrolled agent is told.
type EnrollOptions struct {
	// BrokerURL is the broker URL agents use (hub.yaml broker.agent_url, or derived).
	BrokerURL string
	// HubURL is the hub's HTTP URL as agents reach it (http.public_url, or derived).
	HubURL string
	// ExternalBroker: the hub does not serve MQTT itself; a new password works only once the
	// operator has exported the password file to the broker and reloaded it.
	ExternalBroker bool
}

// EnrollResponse is the answer of POST /api/v1/enroll: everything an agent needs to connect.
type EnrollResponse struct {
	Store    string `json:"store"`
	Broker   string `json:"broker"`
	Username string `json:"username"`
	Password string `json:"password"`
	HubURL   string `json:"hub_url"`
	// ActionNeeded is what an operator must still do before the password works ("" nothing).
	ActionNeeded string `json:"action_needed,omitempty"`
}

// ExternalBrokerAction is EnrollResponse.ActionNeeded with an external broker.
const ExternalBrokerAction = "the hub uses an external broker: an operator must run `lanebridge-hub export mosquitto --out DIR` and reload Mosquitto before this password works"

const badEnrollToken = "unknown enrolment token; ask for a new one (`lanebridge-hub stores enroll-token STORE`)"

// enroll redeems a one-time enrolment token: POST /api/v1/enroll {"token":…}. The route is
// public; the token is the credential. Only its SHA-256 is looked up (the secret is never
// compared byte by byte), attempts are throttled per client address like logins, and every
// attempt is audited. The store's password is rotated: the answer carries the new one.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Token == "" || len(body.Token) > 256 {
		s.fail(w, r, badRequest(`body: want {"token":"…"}`))
		return
	}
	const action = "POST /api/v1/enroll"
	key := "enroll-ip:" + clientIP(r)
	if wait := s.throttle.Try(key); wait > 0 {
		s.record(r, "enroll", action, "", "throttled")
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		s.writeJSON(w, http.StatusTooManyRequests, apiError{"too many failed enrolment attempts; try again later"})
		return
	}
	pw := creds.NewPassword()
	id, err := s.st.RedeemEnrollToken(r.Context(), auth.HashSecret(body.Token), clientIP(r), s.now(), creds.Hash(pw), creds.MosquittoHash(pw))
	actor := "enroll"
	if id != "" {
		actor = "enroll:" + id
	}
	var msg string
	code := http.StatusGone
	switch {
	case err == nil:
	case errors.Is(err, store.ErrTokenUsed):
		msg = "this enrolment token was already used; ask for a new one (`lanebridge-hub stores enroll-token " + id + "`)"
	case errors.Is(err, store.ErrTokenExpired):
		msg = "this enrolment token has expired; ask for a new one (`lanebridge-hub stores enroll-token " + id + "`)"
	case errors.Is(err, store.ErrStoreNotActive):
		code, msg = http.StatusForbidden, "store "+id+" is disabled; enable it first (`lanebridge-hub stores enable "+id+"`)"
	case errors.Is(err, store.ErrNotFound):
		code, msg = http.StatusUnauthorized, badEnrollToken
	default:
		s.fail(w, r, err)
		return
	}
	if err != nil {
		s.record(r, actor, action, "", strconv.Itoa(code))
		s.writeJSON(w, code, apiError{msg})
		return
	}
	s.throttle.Succeed(key)
	resp := EnrollResponse{Store: id, Broker: s.enrollOpts.BrokerURL, Username: id, Password: pw, HubURL: s.enrollOpts.HubURL}
	detail := "credentials rotated"
	if s.enrollOpts.ExternalBroker {
		resp.ActionNeeded = ExternalBrokerAction
		detail += "; external broker: export mosquitto and reload needed"
		s.log.Warn("store enrolled with a new password: export it to the external broker", "store", id,
			"fix", "lanebridge-hub export mosquitto --out DIR, then reload Mosquitto")
	} else {
		s.log.Info("store enrolled", "store", id, "remote", clientIP(r))
	}
	s.record(r, actor, action, detail, "200")
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, http.StatusOK, resp)
}
