package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AmazonOptions configure an Amazon connector (Selling Partner API, Listings Items 2021-08-01).
type AmazonOptions struct {
	Channel       string
	URL           string // the SP-API endpoint, e.g. https://sellingpartnerapi-eu.amazon.com
	Token         string // LWA access token (x-amz-access-token)
	SellerID      string
	MarketplaceID string
	ProductType   string // default PRODUCT
	API           string // listings (default: one patchListingsItem per SKU) or feed (JSON_LISTINGS_FEED)
	Batch         int    // feed: messages a feed, default 1000, at most 10000
	// FeedPoll is how often getFeed is polled while a feed is processed (default 1s).
	FeedPoll time.Duration
	Rate     float64
	Burst    int
}

// Amazon sets stock with one patchListingsItem per SKU (fulfillment_availability quantity on
// the DEFAULT, merchant-fulfilled channel). The documented default rate is 5 requests a second
// with a burst of 10; a 429 carries x-amzn-RateLimit-Limit (requests per second) and no
// Retry-After, so the connector waits one request's worth at that rate. An answer with status
// INVALID (an unknown SKU, a blocked listing) is a rejection of that SKU only.
type Amazon struct {
	o    AmazonOptions
	http *http.Client
}

// NewAmazon makes an Amazon connector.
func NewAmazon(o AmazonOptions) (*Amazon, error) {
	if o.URL == "" || o.Token == "" || o.SellerID == "" || o.MarketplaceID == "" {
		return nil, errors.New("amazon connector needs url, a token, seller_id and marketplace_id")
	}
	if o.ProductType == "" {
		o.ProductType = "PRODUCT"
	}
	switch o.API {
	case "", "listings":
		o.API = "listings"
		if o.Rate <= 0 { // 90 % of the documented 5/s and burst 10: headroom for clock jitter
			o.Rate = 4.5
		}
		if o.Burst <= 0 {
			o.Burst = 9
		}
	case "feed":
		if o.Batch <= 0 {
			o.Batch = 1000
		}
		if o.Batch > 10000 {
			return nil, fmt.Errorf("amazon connector: batch %d: use 1..10000 messages a feed", o.Batch)
		}
		if o.FeedPoll <= 0 {
			o.FeedPoll = time.Second
		}
		if o.Rate <= 0 { // 90 % of createFeed's documented 0.0083/s (one feed every 2 minutes)
			o.Rate = 0.0075
		}
		if o.Burst <= 0 { // 90 % of getFeedDocument's burst of 10 (createFeed's is 15): one report per feed
			o.Burst = 9
		}
	default:
		return nil, fmt.Errorf("amazon connector: api %q: use listings or feed", o.API)
	}
	o.URL = strings.TrimRight(o.URL, "/")
	return &Amazon{o: o, http: newHTTPClient()}, nil
}

func (a *Amazon) Name() string { return a.o.Channel }

func (a *Amazon) Limits() Limits {
	if a.o.API == "feed" { // one feed, whatever the number of SKUs
		return Limits{Rate: a.o.Rate, Burst: a.o.Burst, MaxBatch: a.o.Batch, CallsPerLevel: 0}
	}
	return Limits{Rate: a.o.Rate, Burst: a.o.Burst, MaxBatch: 50, CallsPerLevel: 1}
}

// rateLimited builds the wait of a 429 from x-amzn-RateLimit-Limit.
func (a *Amazon) rateLimited(ans httpAnswer) *RateLimitError {
	wait := time.Second
	if r, err := strconv.ParseFloat(ans.header.Get("x-amzn-RateLimit-Limit"), 64); err == nil && r > 0 {
		wait = time.Duration(float64(time.Second) / r)
	}
	return &RateLimitError{RetryAfter: wait, Detail: ans.excerpt()}
}

func (a *Amazon) SetStock(ctx context.Context, levels []Level) ([]Result, error) {
	if a.o.API == "feed" {
		return a.setFeed(ctx, levels)
	}
	out := make([]Result, len(levels))
	var limited *RateLimitError
	for i, l := range levels {
		out[i].SKU = l.SKU
		if limited != nil {
			out[i].Err = limited
			continue
		}
		units, err := Units(l.Available)
		if err != nil {
			out[i].Err = rejected("%v", err)
			continue
		}
		u := a.o.URL + "/listings/2021-08-01/items/" + url.PathEscape(a.o.SellerID) + "/" + url.PathEscape(l.SKU) +
			"?marketplaceIds=" + url.QueryEscape(a.o.MarketplaceID)
		body := map[string]any{"productType": a.o.ProductType, "patches": []any{map[string]any{
			"op": "replace", "path": "/attributes/fulfillment_availability",
			"value": []any{map[string]any{"fulfillment_channel_code": "DEFAULT", "quantity": units}}}}}
		ans, err := call(ctx, a.http, http.MethodPatch, u, map[string]string{"x-amz-access-token": a.o.Token}, body)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("amazon: patch listing: %w", err)
			}
			out[i].Err = err
			continue
		}
		switch {
		case ans.status == http.StatusTooManyRequests:
			limited = a.rateLimited(ans)
			out[i].Err = limited
		case ans.status == http.StatusUnauthorized || ans.status == http.StatusForbidden:
			return nil, fmt.Errorf("amazon refused the access token (check the connector's token_file): %s", ans.excerpt())
		case ans.status == http.StatusBadRequest || ans.status == http.StatusNotFound:
			out[i].Err = rejected("%s", ans.excerpt())
		case ans.status != http.StatusOK:
			out[i].Err = fmt.Errorf("amazon: %s", ans.excerpt())
		default:
			var sub struct {
				Status string `json:"status"`
				Issues []struct {
					Code, Message, Severity string
				} `json:"issues"`
			}
			if err := json.Unmarshal(ans.body, &sub); err != nil {
				out[i].Err = fmt.Errorf("amazon: answer is not a submission: %w", err)
				continue
			}
			if sub.Status != "ACCEPTED" {
				var msgs []string
				for _, is := range sub.Issues {
					msgs = append(msgs, is.Code+" "+is.Message)
				}
				out[i].Err = rejected("listing %s: %s", sub.Status, strings.Join(msgs, "; "))
				continue
			}
			out[i].Shown = strconv.FormatInt(units, 10)
		}
	}
	return out, nil
}
