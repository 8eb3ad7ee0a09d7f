package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// httpAnswer is one HTTP exchange's outcome: status, headers and the body (at most 1 MiB).
type httpAnswer struct {
	status int
	header http.Header
	body   []byte
}

// call sends one JSON request (body nil: none) and reads the answer; an error is a transport
// failure (channel unreachable), not an HTTP status.
func call(ctx context.Context, c *http.Client, method, url string, headers map[string]string, body any) (httpAnswer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return httpAnswer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return httpAnswer{}, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		return httpAnswer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return httpAnswer{}, fmt.Errorf("read answer of %s %s: %w", method, url, err)
	}
	return httpAnswer{res.StatusCode, res.Header, b}, nil
}

// excerpt is the start of an answer's body, for error messages.
func (a httpAnswer) excerpt() string {
	b := a.body
	if len(b) > 200 {
		b = b[:200]
	}
	return fmt.Sprintf("HTTP %d: %s", a.status, bytes.TrimSpace(b))
}

// retryAfter reads a Retry-After header in seconds (decimals allowed, as Shopify sends them).
func retryAfter(h http.Header) time.Duration {
	f, err := strconv.ParseFloat(h.Get("Retry-After"), 64)
	if err != nil || f <= 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// newHTTPClient is the connectors' client: no overall timeout (the Pusher bounds each call).
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}}
}
