package store

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"time"
	"unicode/utf8"
)

// Operator is a person who logs in to the console and API.
type Operator struct {
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	Stores       []string  `json:"stores,omitempty"` // empty: every store
	PasswordHash string    `json:"-"`                // argon2id, PHC string
	CreatedAt    time.Time `json:"created_at"`
	DisabledAt   time.Time `json:"disabled_at,omitzero"` // zero: enabled
}

// APIToken is a bearer token for programs; only its hash is kept.
type APIToken struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Stores    []string  `json:"stores,omitempty"`
	Hash      string    `json:"-"` // SHA-256, hex
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: never
}

// Session is a login session, found by the hash of its id, with its operator as now stored.
type Session struct {
	IDHash    string
	CSRFToken string
	CreatedAt time.Time
	SeenAt    time.Time
	Operator  Operator
}

// AuditEntry is one line of the audit log: a login attempt or a state change.
type AuditEntry struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`   // "user:ana", "token:ci", or the name tried at a login
	Action  string    `json:"action"`  // "login", "POST /api/v1/exceptions/{id}", ...
	Target  string    `json:"target"`  // the path or object acted on
	Detail  string    `json:"detail"`  // these three capped at MaxAuditDetail bytes
	Remote  string    `json:"remote"`  // client address
	Outcome string    `json:"outcome"` // "ok", "denied", an HTTP status, ...
}

// MaxAuditDetail caps an audit entry's detail.
const MaxAuditDetail = 1024

func encodeStores(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	b, _ := json.Marshal(ids) // strings always marshal
	return string(b)
}

// storesDest scans a stores column into *ids.
type storesDest struct{ ids *[]string }

func (d storesDest) Scan(v any) error {
	*d.ids = nil
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	case nil:
	default:
		return fmt.Errorf("scan stores: unexpected %T", v)
	}
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), d.ids)
}

const operatorCols = `o.name, o.role, o.stores, o.password_hash, o.created_at, o.disabled_at`

func operatorDest(o *Operator) []any {
	return []any{&o.Name, &o.Role, storesDest{&o.Stores}, &o.PasswordHash, scanTime{&o.CreatedAt}, scanTime{&o.DisabledAt}}
}

// AddOperator adds an operator (ErrExists if the name is taken).
func (s *DB) AddOperator(ctx context.Context, o Operator) error {
	err := s.insertNew(ctx, `INSERT INTO operators (name, role, stores, password_hash, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, o.Name, o.Role, encodeStores(o.Stores), o.PasswordHash, s.now())
	return wrapf(err, "add operator %s", o.Name)
}

// Operator returns one operator (ErrNotFound if unknown).
func (s *DB) Operator(ctx context.Context, name string) (Operator, error) {
	var o Operator
	err := s.readRow(ctx, `SELECT `+operatorCols+` FROM operators o WHERE o.name = ?`, []any{name}, operatorDest(&o)...)
	return o, wrapf(err, "operator %s", name)
}

// Operators lists every operator by name.
func (s *DB) Operators(ctx context.Context) ([]Operator, error) {
	var out []Operator
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT `+operatorCols+` FROM operators o ORDER BY o.name`)
		out, err = scanAll(rs, err, func(r rows, o *Operator) error { return r.Scan(operatorDest(o)...) })
		return err
	})
	return out, wrapf(err, "list operators")
}

// changeOperator runs an UPDATE of one operator (ErrNotFound if unknown) and ends its sessions.
func (s *DB) changeOperator(ctx context.Context, name, set string, args ...any) error {
	return s.write(ctx, func(t tx) error {
		n, err := t.exec(ctx, `UPDATE operators SET `+set+` WHERE name = ?`, append(args, name)...)
		if err == nil && n == 0 {
			return ErrNotFound
		}
		if err == nil {
			_, err = t.exec(ctx, `DELETE FROM sessions WHERE username = ?`, name)
		}
		return err
	})
}

// DisableOperator disables an operator and ends their sessions (ErrNotFound if unknown).
func (s *DB) DisableOperator(ctx context.Context, name string) error {
	return wrapf(s.changeOperator(ctx, name, `disabled_at = ?`, s.now()), "disable operator %s", name)
}

// SetOperatorPassword replaces an operator's password hash and ends their sessions.
func (s *DB) SetOperatorPassword(ctx context.Context, name, hash string) error {
	return wrapf(s.changeOperator(ctx, name, `password_hash = ?`, hash), "set password of %s", name)
}

const tokenCols = `name, role, stores, hash, created_at, expires_at`

func tokenDest(k *APIToken) []any {
	return []any{&k.Name, &k.Role, storesDest{&k.Stores}, &k.Hash, scanTime{&k.CreatedAt}, scanTime{&k.ExpiresAt}}
}

// AddToken adds an API token (ErrExists if the name is taken).
func (s *DB) AddToken(ctx context.Context, k APIToken) error {
	err := s.insertNew(ctx, `INSERT INTO api_tokens (name, hash, role, stores, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, k.Name, k.Hash, k.Role, encodeStores(k.Stores), s.now(), s.ts(k.ExpiresAt))
	return wrapf(err, "add token %s", k.Name)
}

// TokenByHash returns the token with this hash (ErrNotFound if none).
func (s *DB) TokenByHash(ctx context.Context, hash string) (APIToken, error) {
	var k APIToken
	err := s.readRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, []any{hash}, tokenDest(&k)...)
	return k, wrapf(err, "token")
}

// Tokens lists every API token by name.
func (s *DB) Tokens(ctx context.Context) ([]APIToken, error) {
	var out []APIToken
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY name`)
		out, err = scanAll(rs, err, func(r rows, k *APIToken) error { return r.Scan(tokenDest(k)...) })
		return err
	})
	return out, wrapf(err, "list tokens")
}

// RevokeToken deletes a token (ErrNotFound if unknown); it stops working at once.
func (s *DB) RevokeToken(ctx context.Context, name string) error {
	return wrapf(s.deleteOne(ctx, `DELETE FROM api_tokens WHERE name = ?`, name), "revoke token %s", name)
}

// deleteOne runs a DELETE that must remove a row (ErrNotFound if not).
func (s *DB) deleteOne(ctx context.Context, q string, args ...any) error {
	n, err := s.exec(ctx, q, args...)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return err
}

// AddSession stores a new session of s.Operator.Name.
func (s *DB) AddSession(ctx context.Context, se Session) error {
	_, err := s.exec(ctx, `INSERT INTO sessions (id_hash, username, csrf_token, created_at, seen_at) VALUES (?, ?, ?, ?, ?)`,
		se.IDHash, se.Operator.Name, se.CSRFToken, s.ts(se.CreatedAt), s.ts(se.SeenAt))
	return wrapf(err, "add session of %s", se.Operator.Name)
}

// Session returns the session with this id hash and its operator (ErrNotFound if none).
func (s *DB) Session(ctx context.Context, idHash string) (Session, error) {
	var se Session
	err := s.readRow(ctx, `SELECT s.id_hash, s.csrf_token, s.created_at, s.seen_at, `+operatorCols+`
		FROM sessions s JOIN operators o ON o.name = s.username WHERE s.id_hash = ?`, []any{idHash},
		append([]any{&se.IDHash, &se.CSRFToken, scanTime{&se.CreatedAt}, scanTime{&se.SeenAt}}, operatorDest(&se.Operator)...)...)
	return se, wrapf(err, "session")
}

// TouchSession records that the session was used at.
func (s *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE sessions SET seen_at = ? WHERE id_hash = ?`, s.ts(at), idHash)
	return wrapf(err, "touch session")
}

// DeleteSession ends a session (ErrNotFound if none).
func (s *DB) DeleteSession(ctx context.Context, idHash string) error {
	return wrapf(s.deleteOne(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash), "delete session")
}

// PruneSessions deletes the sessions last seen before seenBefore or created before
// createdBefore (expired ones nobody presents again) and returns how many.
func (s *DB) PruneSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int64, error) {
	n, err := s.exec(ctx, `DELETE FROM sessions WHERE seen_at < ? OR created_at < ?`, s.ts(seenBefore), s.ts(createdBefore))
	return n, wrapf(err, "prune sessions")
}

// AddAudit appends an entry to the audit log (At zero: now; Actor, Target and Detail capped
// at MaxAuditDetail bytes).
func (s *DB) AddAudit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = clock.Now()
	}
	for _, f := range []*string{&e.Actor, &e.Target, &e.Detail} {
		*f = capBytes(*f, MaxAuditDetail)
	}
	_, err := s.exec(ctx, `INSERT INTO audit (at, actor, action, target, detail, remote, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		s.ts(e.At), e.Actor, e.Action, e.Target, e.Detail, e.Remote, e.Outcome)
	return wrapf(err, "add audit %s %s", e.Actor, e.Action)
}

// capBytes shortens s to at most n bytes, on a rune boundary.
func capBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Audit lists audit entries newest first, with ids below beforeID (0: from the newest), at
// most limit (1000 when limit <= 0).
func (s *DB) Audit(ctx context.Context, beforeID int64, limit int) ([]AuditEntry, error) {
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	var out []AuditEntry
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT id, at, actor, action, target, detail, remote, outcome FROM audit
			WHERE id < ? ORDER BY id DESC LIMIT ?`, beforeID, limitOr(limit, defaultRecordsLimit))
		out, err = scanAll(rs, err, func(r rows, e *AuditEntry) error {
			return r.Scan(&e.ID, scanTime{&e.At}, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Remote, &e.Outcome)
		})
		return err
	})
	return out, wrapf(err, "audit log")
}
