package web

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/availability"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// availFixture is the API fixture with availability: channel web on S001, market on every
// store, X on hand 10 in S001 and 4 in S002.
func availFixture(t *testing.T) *fixture { return newAvailFixture(t, Options{}) }

func newAvailFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	var cfg availability.Config
	cfg.Channels = []availability.ChannelConfig{{Name: "web", Stores: []string{"S001"}}, {Name: "market", Stores: []string{"*"}}}
	var f *fixture
	o.Availability = lazyAvail{get: func() Availability { return f.av }}
	f = newFixture(t, o)
	e, err := availability.New(f.st, cfg, availability.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.av = e
	if err := f.st.PutERPStock(context.Background(), []store.MasterItem{{SKU: "X", Price: 300, Status: protocol.ItemActive}},
		map[string]map[string]string{"S001": {"X": "10"}, "S002": {"X": "4"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return f
}

// lazyAvail lets the fixture build the engine on the store the server was built with.
type lazyAvail struct{ get func() Availability }

func (l lazyAvail) Figures(ctx context.Context, q availability.Query) (availability.Result, error) {
	return l.get().Figures(ctx, q)
}
func (l lazyAvail) Reserve(ctx context.Context, r availability.ReserveRequest) (store.Reservation, bool, error) {
	return l.get().Reserve(ctx, r)
}
func (l lazyAvail) Release(ctx context.Context, c, o string) (store.Reservation, bool, error) {
	return l.get().Release(ctx, c, o)
}
func (l lazyAvail) Fulfil(ctx context.Context, c, o string) (store.Reservation, bool, error) {
	return l.get().Fulfil(ctx, c, o)
}
func (l lazyAvail) Reservations(ctx context.Context, f store.ReservationFilter) ([]store.Reservation, error) {
	return l.get().Reservations(ctx, f)
}
func (l lazyAvail) SetSafetyStock(ctx context.Context, c, s, k, q string, rm bool) error {
	return l.get().SetSafetyStock(ctx, c, s, k, q, rm)
}
func (l lazyAvail) RecordShown(ctx context.Context, c, sku, shown string, at time.Time) error {
	return l.get().RecordShown(ctx, c, sku, shown, at)
}
func (l lazyAvail) Channels() []string { return l.get().Channels() }

func TestAvailabilityAPI(t *testing.T) {
	f := availFixture(t)
	viewer, operator := f.token(t, "v", "viewer"), f.token(t, "o", "operator")
	scoped := f.token(t, "s", "operator", "S001")
	order := `{"channel":"market","order_id":"M-1","lines":[{"sku":"X","quantity":"3"}]}`
	steps := []struct {
		method, path, body, tok string
		code                    int
		contains                []string
	}{
		{"GET", "/api/v1/availability?sku=X", "", "", 401, nil},
		{"GET", "/api/v1/availability?sku=X", "", scoped, 403, []string{"every store"}},
		{"GET", "/api/v1/availability?sku=X", "", viewer, 200, []string{`"available": "14"`, `"channel": "web"`, `"store": "S002"`}},
		{"GET", "/api/v1/availability?sku=X&channel=nope", "", viewer, 400, []string{"unknown channel"}},
		{"GET", "/api/v1/availability?since_version=x", "", viewer, 400, []string{"since_version"}},
		{"POST", "/api/v1/reservations", order, viewer, 403, []string{"operator"}},
		{"POST", "/api/v1/reservations", order, operator, 201, []string{`"state": "open"`, `"store": "S001"`}},
		{"POST", "/api/v1/reservations", order, operator, 200, []string{`"state": "open"`}},
		{"POST", "/api/v1/reservations", strings.Replace(order, `"3"`, `"4"`, 1), operator, 409, []string{"other lines"}},
		{"POST", "/api/v1/reservations", `{"channel":"market","order_id":"M-2","lines":[{"sku":"NOPE","quantity":"1"}]}`, operator, 422, []string{"item master"}},
		{"POST", "/api/v1/reservations", `{"channel":"market","order_id":"M-3","lines":[],"extra":1}`, operator, 400, nil},
		{"GET", "/api/v1/availability?sku=X&store=S001&channel=web", "", viewer, 200, []string{`"available": "11"`, `"available": "7"`}},
		{"DELETE", "/api/v1/reservations/market/M-1", "", operator, 200, []string{`"changed": true`, `"state": "released"`}},
		{"DELETE", "/api/v1/reservations/market/M-1", "", operator, 200, []string{`"changed": false`}},
		{"POST", "/api/v1/reservations/market/M-1/fulfil", "", operator, 409, []string{"released"}},
		{"DELETE", "/api/v1/reservations/market/M-404", "", operator, 404, nil},
		{"POST", "/api/v1/reservations", `{"channel":"web","order_id":"W-1","lines":[{"sku":"X","quantity":"2"}]}`, operator, 201, nil},
		{"POST", "/api/v1/reservations/web/W-1/fulfil", "", operator, 200, []string{`"state": "fulfilled"`, `"changed": true`}},
		{"POST", "/api/v1/reservations/web/W-1/fulfil", "", operator, 200, []string{`"changed": false`}},
		{"GET", "/api/v1/reservations?state=fulfilled", "", viewer, 200, []string{`"order_id": "W-1"`}},
		{"PUT", "/api/v1/availability/safety-stock", `{"channel":"web","scope":"sku","key":"X","quantity":"5"}`, operator, 200, nil},
		{"GET", "/api/v1/availability?sku=X&channel=web", "", viewer, 200, []string{`"available": "3"`}},
		{"PUT", "/api/v1/availability/safety-stock", `{"scope":"everything","quantity":"5"}`, operator, 400, []string{"scope"}},
		{"POST", "/api/v1/availability/shown", `{"channel":"web","sku":"X","shown":"8"}`, operator, 200, nil},
		{"GET", "/availability", "", viewer, 200, []string{"W-1", "fulfilled", "Inventory drift by channel"}},
	}
	for i, s := range steps {
		var hdr []string
		if s.tok != "" {
			hdr = append(hdr, bearer(s.tok))
		}
		if s.body != "" {
			hdr = append(hdr, "Content-Type: application/json")
		}
		r := f.do(t, s.method, s.path, s.body, hdr...)
		if r.code != s.code {
			t.Fatalf("step %d %s %s: %d %s, want %d", i, s.method, s.path, r.code, r.body, s.code)
		}
		for _, c := range s.contains {
			if !strings.Contains(r.body, c) {
				t.Errorf("step %d %s %s: body lacks %q:\n%s", i, s.method, s.path, c, r.body)
			}
		}
	}
	// since_version: nothing after the current version.
	var res availability.Result
	r := f.do(t, "GET", "/api/v1/availability", "", bearer(viewer))
	if err := json.Unmarshal([]byte(r.body), &res); err != nil || res.Version == 0 {
		t.Fatalf("%v %s", err, r.body)
	}
	r = f.do(t, "GET", "/api/v1/availability?since_version="+itoa(res.Version), "", bearer(viewer))
	if !strings.Contains(r.body, `"items": []`) {
		t.Errorf("since current version: %s", r.body)
	}
	// Every change is in the audit log.
	au, err := f.st.Audit(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range au {
		if strings.Contains(e.Action, "/api/v1/reservations") {
			n++
		}
	}
	if n < 10 {
		t.Errorf("%d reservation changes audited, want every one", n)
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }
