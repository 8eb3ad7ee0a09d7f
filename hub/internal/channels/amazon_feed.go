package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The Amazon connector's batch path (api: feed): one JSON_LISTINGS_FEED per SetStock through
// the Feeds API v2021-06-30 — createFeedDocument, upload the feed to the returned URL,
// createFeed, poll getFeed until DONE, then getFeedDocument and download the processing
// report. Each level is one message (messageId = its position + 1) patching
// fulfillment_availability; an ERROR issue for a messageId rejects only that SKU, the others
// are set. Documented default limits (developer-docs.amazon.com/sp-api/docs/feeds-api-rate-limits):
// createFeed 0.0083/s burst 15, createFeedDocument 0.5/s burst 15, getFeed 2/s burst 15,
// getFeedDocument 0.0222/s burst 10. A 429 before createFeed is the call's *RateLimitError
// (nothing submitted); after it, the connector waits the hint and asks again while ctx allows,
// since the feed is already on its way.
const feedsAPI = "/feeds/2021-06-30/"

type feedReport struct {
	Issues []struct {
		MessageID int    `json:"messageId"`
		Code      string `json:"code"`
		Severity  string `json:"severity"`
		Message   string `json:"message"`
	} `json:"issues"`
}

// feedCall is one Feeds API request; after (true: the feed is submitted) waits out 429s.
func (a *Amazon) feedCall(ctx context.Context, method, u string, body any, after bool, into any) error {
	for {
		ans, err := call(ctx, a.http, method, u, map[string]string{"x-amz-access-token": a.o.Token}, body)
		if err != nil {
			return err
		}
		switch {
		case ans.status == http.StatusTooManyRequests:
			rl := a.rateLimited(ans)
			if !after {
				return rl
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (waiting out %v)", ctx.Err(), rl)
			case <-time.After(rl.RetryAfter):
			}
			continue
		case ans.status == http.StatusUnauthorized || ans.status == http.StatusForbidden:
			return fmt.Errorf("amazon refused the access token (check the connector's token_file): %s", ans.excerpt())
		case ans.status < 200 || ans.status > 299:
			return fmt.Errorf("amazon: %s %s: %s", method, u, ans.excerpt())
		}
		if into == nil {
			return nil
		}
		if err := json.Unmarshal(ans.body, into); err != nil {
			return fmt.Errorf("amazon: %s %s: answer is not JSON: %w", method, u, err)
		}
		return nil
	}
}

func (a *Amazon) setFeed(ctx context.Context, levels []Level) ([]Result, error) {
	out := make([]Result, len(levels))
	units := make([]int64, len(levels))
	var msgs []map[string]any
	for i, l := range levels {
		out[i].SKU = l.SKU
		n, err := Units(l.Available)
		if err != nil {
			out[i].Err = rejected("%v", err)
			continue
		}
		units[i] = n
		msgs = append(msgs, map[string]any{"messageId": i + 1, "sku": l.SKU, "operationType": "PATCH", "productType": a.o.ProductType,
			"patches": []any{map[string]any{"op": "replace", "path": "/attributes/fulfillment_availability",
				"value": []any{map[string]any{"fulfillment_channel_code": "DEFAULT", "quantity": n}}}}})
	}
	if len(msgs) == 0 {
		return out, nil
	}
	base := a.o.URL + feedsAPI
	var doc struct{ FeedDocumentID, URL string }
	ct := "application/json; charset=UTF-8"
	if err := a.feedCall(ctx, http.MethodPost, base+"documents", map[string]string{"contentType": ct}, false, &doc); err != nil {
		return nil, fmt.Errorf("amazon: createFeedDocument: %w", err)
	}
	feed := map[string]any{"header": map[string]string{"sellerId": a.o.SellerID, "version": "2.0"}, "messages": msgs}
	up, err := call(ctx, a.http, http.MethodPut, doc.URL, map[string]string{"Content-Type": ct}, feed)
	if err != nil || up.status != http.StatusOK {
		if err == nil {
			err = fmt.Errorf("%s", up.excerpt())
		}
		return nil, fmt.Errorf("amazon: upload feed document: %w", err)
	}
	var created struct{ FeedID string }
	if err := a.feedCall(ctx, http.MethodPost, base+"feeds", map[string]any{"feedType": "JSON_LISTINGS_FEED",
		"marketplaceIds": []string{a.o.MarketplaceID}, "inputFeedDocumentId": doc.FeedDocumentID}, false, &created); err != nil {
		return nil, fmt.Errorf("amazon: createFeed: %w", err)
	}
	var f struct{ ProcessingStatus, ResultFeedDocumentID string }
	for f.ProcessingStatus != "DONE" {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("amazon: feed %s not processed yet: %w", created.FeedID, ctx.Err())
		case <-time.After(a.o.FeedPoll):
		}
		if err := a.feedCall(ctx, http.MethodGet, base+"feeds/"+url.PathEscape(created.FeedID), nil, true, &f); err != nil {
			return nil, fmt.Errorf("amazon: getFeed %s: %w", created.FeedID, err)
		}
		if f.ProcessingStatus == "FATAL" || f.ProcessingStatus == "CANCELLED" {
			return nil, fmt.Errorf("amazon: feed %s is %s (its processing report %s says why)", created.FeedID, f.ProcessingStatus, f.ResultFeedDocumentID)
		}
	}
	var rdoc struct{ URL string }
	if err := a.feedCall(ctx, http.MethodGet, base+"documents/"+url.PathEscape(f.ResultFeedDocumentID), nil, true, &rdoc); err != nil {
		return nil, fmt.Errorf("amazon: getFeedDocument %s: %w", f.ResultFeedDocumentID, err)
	}
	ans, err := call(ctx, a.http, http.MethodGet, rdoc.URL, nil, nil)
	if err != nil || ans.status != http.StatusOK {
		if err == nil {
			err = fmt.Errorf("%s", ans.excerpt())
		}
		return nil, fmt.Errorf("amazon: download processing report of feed %s: %w", created.FeedID, err)
	}
	var rep feedReport
	if err := json.Unmarshal(ans.body, &rep); err != nil {
		return nil, fmt.Errorf("amazon: processing report of feed %s is not JSON: %w", created.FeedID, err)
	}
	issues := map[int][]string{}
	for _, is := range rep.Issues {
		if is.Severity == "ERROR" && is.MessageID >= 1 && is.MessageID <= len(levels) {
			issues[is.MessageID-1] = append(issues[is.MessageID-1], is.Code+" "+is.Message)
		}
	}
	for i := range out {
		switch {
		case out[i].Err != nil:
		case issues[i] != nil:
			out[i].Err = rejected("feed %s: %s", created.FeedID, strings.Join(issues[i], "; "))
		default:
			out[i].Shown = strconv.FormatInt(units[i], 10)
		}
	}
	return out, nil
}
