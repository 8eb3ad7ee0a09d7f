package tryton

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMinorToDecimal(t *testing.T) {
	tests := []struct {
		in   int64
		want decimal
	}{
		{0, "0.00"}, {1, "0.01"}, {1999, "19.99"}, {-250, "-2.50"}, {100000, "1000.00"},
	}
	for _, tt := range tests {
		if got := minorToDecimal(tt.in); got != tt.want {
			t.Errorf("minorToDecimal(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecimalToMinor(t *testing.T) {
	tests := []struct {
		in      decimal
		want    int64
		wantErr bool
	}{
		{"18.99", 1899, false},
		{"18.9900", 1899, false},
		{"-18.99", -1899, false},
		{"2", 200, false},
		{"0", 0, false},
		{"19.995", 0, true},
		{"abc", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := decimalToMinor(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("decimalToMinor(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"2", 2, false}, {"-1", -1, false}, {"0.750", 0.75, false},
		{"1e3", 0, true}, {"", 0, true}, {"2 x", 0, true}, {"NaN", 0, true},
	}
	for _, tt := range tests {
		got, err := parseQuantity(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseQuantity(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatQuantity(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{{0, "0"}, {97, "97"}, {-3, "-3"}, {0.75, "0.75"}}
	for _, tt := range tests {
		if got := formatQuantity(tt.in); got != tt.want {
			t.Errorf("formatQuantity(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDateJSON(t *testing.T) {
	d := date{time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC)}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back date
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if y, m, dd := back.Date(); y != 2026 || m != 11 || dd != 26 {
		t.Fatalf("round trip of %s = %v", b, back)
	}
	if !strings.Contains(string(b), `"__class__":"date"`) {
		t.Fatalf("Marshal = %s, want Tryton's date class", b)
	}
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		raw       string
		kind, msg string
		permanent bool
		unauth    bool
	}{
		{`["UserError",["The sale \"1\" has no line.","Add a line",""]]`, "UserError", `The sale "1" has no line.: Add a line`, true, false},
		{`["UserWarning",["key","Stock is low.",""]]`, "UserWarning", "Stock is low.", true, false},
		{`["ConcurrencyException","Records were modified"]`, "ConcurrencyException", "Records were modified", false, false},
		{`["division by zero","Traceback ..."]`, "ServerError", "division by zero", false, false},
		{`["LoginException",["password","Password",""]]`, "", "", false, true},
		{`"weird"`, "ServerError", `"weird"`, false, false},
	}
	for _, tt := range tests {
		err := decodeError("model.sale.sale.quote", json.RawMessage(tt.raw))
		if tt.unauth {
			if !errors.Is(err, ErrUnauthorized) {
				t.Errorf("decodeError(%s) = %v, want ErrUnauthorized", tt.raw, err)
			}
			continue
		}
		var te *Error
		if !errors.As(err, &te) {
			t.Fatalf("decodeError(%s) = %T %v, want *Error", tt.raw, err, err)
		}
		if te.Kind != tt.kind || !strings.Contains(te.Error(), tt.msg) || te.Permanent() != tt.permanent {
			t.Errorf("decodeError(%s) = kind %q %q permanent %v; want %q, containing %q, permanent %v",
				tt.raw, te.Kind, te.Error(), te.Permanent(), tt.kind, tt.msg, tt.permanent)
		}
	}
}

// fakeTryton answers login, preferences and one model method, and expires
// the first session after one model call to exercise the re-login path.
type fakeTryton struct {
	mu       sync.Mutex
	logins   int
	sessions map[string]int // Authorization header → remaining calls
	contexts []map[string]any
}

func (f *fakeTryton) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     int64             `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if r.URL.Path != "/db/" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := func(v any) { _ = json.NewEncoder(w).Encode(map[string]any{"id": req.ID, "result": v}) }
	if req.Method == "common.db.login" {
		var user string
		var pw map[string]string
		_ = json.Unmarshal(req.Params[0], &user)
		_ = json.Unmarshal(req.Params[1], &pw)
		if user != "admin" || pw["password"] != "secret" {
			_ = json.NewEncoder(w).Encode(map[string]any{"id": req.ID,
				"error": []any{"LoginException", []any{"password", "Password", "password"}}})
			return
		}
		f.logins++
		session := "s" + string(rune('0'+f.logins))
		auth := "Session " + base64.StdEncoding.EncodeToString([]byte("admin:1:"+session))
		f.sessions[auth] = 2 // get_preferences + one call
		reply([]any{1, session})
		return
	}
	left, ok := f.sessions[r.Header.Get("Authorization")]
	if !ok || left == 0 {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	f.sessions[r.Header.Get("Authorization")] = left - 1
	var ctx map[string]any
	_ = json.Unmarshal(req.Params[len(req.Params)-1], &ctx)
	if req.Method != "model.res.user.get_preferences" {
		f.contexts = append(f.contexts, ctx)
	}
	switch req.Method {
	case "model.res.user.get_preferences":
		reply(map[string]any{"company": 1, "language": "en"})
	case "model.sale.sale.search":
		reply([]int64{42})
	case "model.sale.sale.quote":
		_ = json.NewEncoder(w).Encode(map[string]any{"id": req.ID,
			"error": []any{"UserError", []any{"The sale has no line.", "", ""}}})
	default:
		http.Error(w, "forbidden", http.StatusForbidden)
	}
}

func TestClientSessionAndErrors(t *testing.T) {
	f := &fakeTryton{sessions: map[string]int{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx := context.Background()

	if _, err := Dial(ctx, srv.URL, "db", "admin", "wrong"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Dial with a wrong password = %v, want ErrUnauthorized", err)
	}
	c, err := Dial(ctx, srv.URL+"/", "db", "admin", "secret")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	for i := range 3 { // the session expires after each call: re-login each time
		id, found, err := c.FindPosting(ctx, "S001|T1|2026-11-26|42|sale")
		if err != nil || !found || id != 42 {
			t.Fatalf("FindPosting #%d = %d, %v, %v; want 42, true, nil", i, id, found, err)
		}
	}
	if f.logins != 3 {
		t.Errorf("logins = %d, want 3 (one per expired session)", f.logins)
	}
	for _, ctx := range f.contexts {
		if ctx["company"] != float64(1) {
			t.Errorf("call context %v lacks the user's company", ctx)
		}
	}
	err = c.Call(ctx, "model.sale.sale.quote", nil, nil, []int64{42})
	var te *Error
	if !errors.As(err, &te) || te.Message != "The sale has no line." || !te.Permanent() {
		t.Fatalf("quote = %v, want the permanent UserError with Tryton's message", err)
	}
}
