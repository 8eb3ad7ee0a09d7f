package app

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/config"
)

// The local endpoint serves profiling only with debug: true.
func TestPprofOnlyWithDebug(t *testing.T) {
	for _, debug := range []bool{false, true} {
		a := &agent{cfg: &config.Config{Debug: debug}}
		rec := httptest.NewRecorder()
		a.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if got := rec.Code == http.StatusOK; got != debug {
			t.Errorf("debug %v: GET /debug/pprof/ = %d", debug, rec.Code)
		}
	}
}
