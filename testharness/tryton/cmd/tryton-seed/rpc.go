package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// rpc is a minimal Tryton JSON-RPC caller. The hub's client
// (hub/internal/erp/tryton) is internal to the hub, so the harness carries
// this small copy of the protocol: login, session header, Decimal and date.
type rpc struct {
	http *http.Client
	url  string
	auth string
	ctx  map[string]any
	id   int
}

func dial(ctx context.Context, baseURL, db, user, password string) (*rpc, error) {
	r := &rpc{http: &http.Client{Timeout: 120 * time.Second},
		url: strings.TrimRight(baseURL, "/") + "/" + db + "/"}
	var res []any
	if err := r.raw(ctx, "common.db.login", []any{user, map[string]any{"password": password}, "en"}, &res); err != nil {
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	if len(res) != 2 {
		return nil, fmt.Errorf("login %s: unexpected result %v", user, res)
	}
	r.auth = "Session " + base64.StdEncoding.EncodeToString(
		[]byte(fmt.Sprintf("%s:%v:%v", user, res[0], res[1])))
	if err := r.refresh(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// refresh reloads the user's preferences, which become the call context.
func (r *rpc) refresh(ctx context.Context) error {
	var prefs map[string]any
	if err := r.raw(ctx, "model.res.user.get_preferences", []any{true, map[string]any{}}, &prefs); err != nil {
		return fmt.Errorf("preferences: %w", err)
	}
	r.ctx = prefs
	return nil
}

// call invokes method with params and the preferences context appended.
func (r *rpc) call(ctx context.Context, method string, out any, params ...any) error {
	return r.raw(ctx, method, append(params, r.ctx), out)
}

func (r *rpc) raw(ctx context.Context, method string, params []any, out any) error {
	r.id++
	body, err := json.Marshal(map[string]any{"id": r.id, "method": method, "params": params})
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %.300s", method, resp.StatusCode, data)
	}
	var res struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("%s: decode: %w", method, err)
	}
	if len(res.Error) > 0 && string(res.Error) != "null" {
		return fmt.Errorf("%s: tryton error: %.500s", method, res.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res.Result, out); err != nil {
		return fmt.Errorf("%s: decode result: %w", method, err)
	}
	return nil
}

func dec(s string) map[string]string { return map[string]string{"__class__": "Decimal", "decimal": s} }

func day(t time.Time) map[string]any {
	return map[string]any{"__class__": "date", "year": t.Year(), "month": int(t.Month()), "day": t.Day()}
}

// one searches model with domain and returns the first id, or 0.
func (r *rpc) one(ctx context.Context, model string, domain ...any) (int64, error) {
	var ids []int64
	if err := r.call(ctx, "model."+model+".search", &ids, domain, 0, 1, []any{[]any{"id", "ASC"}}); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return ids[0], nil
}

// create creates one record of model and returns its id.
func (r *rpc) create(ctx context.Context, model string, values map[string]any) (int64, error) {
	var ids []int64
	if err := r.call(ctx, "model."+model+".create", &ids, []any{values}); err != nil {
		return 0, err
	}
	if len(ids) != 1 {
		return 0, fmt.Errorf("create %s: ids %v", model, ids)
	}
	return ids[0], nil
}
