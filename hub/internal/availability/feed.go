package availability

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The webhook feed: each subscriber of availability.webhooks gets POSTs of
// {"version":N,"items":[…]} (the API's shape: the SKUs changed since what it was last sent,
// their latest figures), signed with its shared secret:
//
//	X-Lanebridge-Signature: t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(secret, "UNIX_SECONDS." + body))
//
// A receiver recomputes the MAC over the raw body ([Verify]) and refuses a timestamp older than
// its tolerance, so a captured request cannot be replayed later. A subscriber's cursor is kept
// in the store and moves only on a 2xx answer; failures are retried with back-off (1 s doubling
// to 5 min, ±20 %). The feed runs beside ingest and never holds it up: it is woken by Changed and
// reads committed figures.

// SignatureHeader carries the feed's signature.
const SignatureHeader = "X-Lanebridge-Signature"

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook timestamp outside tolerance")
)

// Sign returns the signature header value for body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against the raw body: ErrBadSignature for a body or
// timestamp that was changed, ErrStale for one older (or newer) than tolerance at now.
func Verify(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%w: header %q is not t=…,v1=…", ErrBadSignature, header)
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago", ErrStale, d.Round(time.Second))
	}
	return nil
}

// feed sends one subscriber its changes.
type feed struct {
	e       *Engine
	w       WebhookConfig
	secret  []byte
	changed <-chan struct{}
	client  *http.Client
}

const feedBatch = 500

func (f *feed) run(ctx context.Context) {
	if f.client == nil {
		f.client = &http.Client{Timeout: 15 * time.Second}
	}
	log := f.e.log.With("webhook", f.w.Name)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		more, err := f.sendOnce(ctx)
		wait := 30 * time.Second // a poll even without a change signal (another hub replica's change)
		switch {
		case err != nil:
			backoff = min(max(2*backoff, time.Second), 5*time.Minute)
			wait = time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
			log.Warn("availability webhook failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
		case more:
			backoff, wait = 0, 0
		default:
			backoff = 0
		}
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-f.changed:
			if err != nil { // a failing subscriber keeps its back-off
				select {
				case <-ctx.Done():
				case <-t.C:
				}
			}
		}
		t.Stop()
	}
}

// sendOnce sends the next batch of changes; more reports that another batch is waiting.
func (f *feed) sendOnce(ctx context.Context) (more bool, err error) {
	cur, err := f.e.st.FeedCursor(ctx, f.w.Name)
	if err != nil {
		return false, err
	}
	res, err := f.e.Figures(ctx, Query{SinceVersion: cur, Limit: feedBatch})
	if err != nil || len(res.Items) == 0 {
		return false, err
	}
	if len(f.w.Channels) > 0 {
		for i := range res.Items {
			res.Items[i].Channels = slices.DeleteFunc(res.Items[i].Channels, func(c ChannelAvail) bool { return !slices.Contains(f.w.Channels, c.Channel) })
		}
	}
	body, err := json.Marshal(res)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.w.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(f.secret, body, f.e.now()))
	resp, err := f.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false, fmt.Errorf("post: %s answered %s", f.w.URL, resp.Status)
	}
	if err := f.e.st.SetFeedCursor(ctx, f.w.Name, res.Version); err != nil {
		return false, err
	}
	return len(res.Items) == feedBatch, nil
}
