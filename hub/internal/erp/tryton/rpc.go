package tryton

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnauthorized is returned when Tryton refuses the credentials.
var ErrUnauthorized = errors.New("tryton: unauthorized")

// Error is an error reported by Tryton itself. Kind is "UserError" or
// "UserWarning" for business rule violations (a permanent rejection: retrying
// the same document fails the same way), "ConcurrencyException", or
// "ServerError" for anything else (a bug or a transient failure).
type Error struct {
	Method      string
	Kind        string
	Message     string
	Description string
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return fmt.Sprintf("tryton %s: %s: %s", e.Method, e.Kind, msg)
}

// Permanent reports whether the error is a business rule violation that a
// retry of the same request cannot fix.
func (e *Error) Permanent() bool { return e.Kind == "UserError" || e.Kind == "UserWarning" }

// Client speaks Tryton's JSON-RPC on behalf of one user of one database.
// It is safe for concurrent use. It logs in again once when a session expires.
type Client struct {
	http     *http.Client
	url      string // baseURL + "/" + db + "/"
	user     string
	password string
	nextID   atomic.Int64

	mu      sync.Mutex
	auth    string         // Authorization header value
	context map[string]any // user preferences, sent with every model call

	cacheMu      sync.Mutex
	warehouses   map[string]int64   // store code → warehouse location id
	productCache map[string]product // SKU → product
	customer     *party
}

// Dial logs in to database db of the Tryton server at baseURL
// (e.g. "http://127.0.0.1:18000") and loads the user's preferences (company)
// as the context of later calls.
func Dial(ctx context.Context, baseURL, db, user, password string) (*Client, error) {
	c := &Client{
		http:         &http.Client{Timeout: 60 * time.Second},
		url:          strings.TrimRight(baseURL, "/") + "/" + db + "/",
		user:         user,
		password:     password,
		warehouses:   map[string]int64{},
		productCache: map[string]product{},
	}
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) login(ctx context.Context) error {
	var res []json.RawMessage
	params := []any{c.user, map[string]any{"password": c.password}, "en"}
	if err := c.do(ctx, "", "common.db.login", params, &res); err != nil {
		var te *Error
		if errors.As(err, &te) && te.Kind == "LoginException" {
			return fmt.Errorf("login %s: %w", c.user, ErrUnauthorized)
		}
		return fmt.Errorf("login %s: %w", c.user, err)
	}
	if len(res) != 2 {
		return fmt.Errorf("login %s: %w", c.user, ErrUnauthorized)
	}
	var uid int64
	var session string
	if err := json.Unmarshal(res[0], &uid); err != nil {
		return fmt.Errorf("login %s: user id: %w", c.user, err)
	}
	if err := json.Unmarshal(res[1], &session); err != nil {
		return fmt.Errorf("login %s: session: %w", c.user, err)
	}
	auth := "Session " + base64.StdEncoding.EncodeToString(
		[]byte(fmt.Sprintf("%s:%d:%s", c.user, uid, session)))
	var prefs map[string]any
	if err := c.do(ctx, auth, "model.res.user.get_preferences", []any{true, map[string]any{}}, &prefs); err != nil {
		return fmt.Errorf("load preferences of %s: %w", c.user, err)
	}
	c.mu.Lock()
	c.auth, c.context = auth, prefs
	c.mu.Unlock()
	return nil
}

// Context returns a copy of the context sent with model calls.
func (c *Client) Context() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]any, len(c.context))
	for k, v := range c.context {
		m[k] = v
	}
	return m
}

// Call invokes method (e.g. "model.sale.sale.search") with params and the
// client's context appended as the last parameter, decoding the result into
// out (which may be nil). extra entries are merged into the context.
func (c *Client) Call(ctx context.Context, method string, out any, extra map[string]any, params ...any) error {
	for attempt := 0; ; attempt++ {
		tctx := c.Context()
		for k, v := range extra {
			tctx[k] = v
		}
		c.mu.Lock()
		auth := c.auth
		c.mu.Unlock()
		err := c.do(ctx, auth, method, append(append([]any{}, params...), tctx), out)
		if errors.Is(err, ErrUnauthorized) && attempt == 0 {
			if lerr := c.login(ctx); lerr != nil {
				return fmt.Errorf("%s: %w", method, lerr)
			}
			continue
		}
		return err
	}
}

type rpcRequest struct {
	ID     int64  `json:"id"`
	Method string `json:"method"`
	Params []any  `json:"params"`
}

type rpcResponse struct {
	ID     int64           `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func (c *Client) do(ctx context.Context, auth, method string, params []any, out any) error {
	body, err := json.Marshal(rpcRequest{ID: c.nextID.Add(1), Method: method, Params: params})
	if err != nil {
		return fmt.Errorf("%s: encode: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: read response: %w", method, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s: HTTP %d: %w", method, resp.StatusCode, ErrUnauthorized)
	default:
		return fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, truncate(data, 300))
	}
	var r rpcResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: decode response: %w", method, err)
	}
	if len(r.Error) > 0 && string(r.Error) != "null" {
		return decodeError(method, r.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return fmt.Errorf("%s: decode result %s: %w", method, truncate(r.Result, 200), err)
	}
	return nil
}

// decodeError turns Tryton's error member into an *Error. Tryton sends
// ["UserError", [message, description, domain]] for business errors,
// ["UserWarning", [name, message, description]] for warnings,
// ["LoginException", [...]] and ["ConcurrencyException", message], and
// [str(exception), traceback] for anything else.
func decodeError(method string, raw json.RawMessage) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) == 0 {
		return &Error{Method: method, Kind: "ServerError", Message: truncate(raw, 300)}
	}
	var kind string
	_ = json.Unmarshal(parts[0], &kind)
	e := &Error{Method: method, Kind: kind}
	var args []json.RawMessage
	if len(parts) > 1 {
		_ = json.Unmarshal(parts[1], &args)
	}
	str := func(i int) string {
		if i >= len(args) {
			return ""
		}
		var s string
		_ = json.Unmarshal(args[i], &s)
		return s
	}
	switch kind {
	case "UserError":
		e.Message, e.Description = str(0), str(1)
	case "UserWarning":
		e.Message, e.Description = str(1), str(2)
	case "LoginException":
		e.Message = "login required"
		return fmt.Errorf("%s: %w", e.Error(), ErrUnauthorized)
	case "ConcurrencyException":
		if len(parts) > 1 {
			_ = json.Unmarshal(parts[1], &e.Message)
		}
	default:
		e.Kind, e.Message = "ServerError", kind
	}
	return e
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
