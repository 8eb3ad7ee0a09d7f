package channelsim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Feeds API part of the Amazon simulator (Selling Partner API Feeds v2021-06-30, feed type
// JSON_LISTINGS_FEED):
//
//	POST /feeds/2021-06-30/documents            {"contentType"} → 201 {"feedDocumentId","url"}
//	PUT  <url>                                  the feed document (pre-signed: no token)
//	POST /feeds/2021-06-30/feeds                {"feedType","marketplaceIds","inputFeedDocumentId"} → 202 {"feedId"}
//	GET  /feeds/2021-06-30/feeds/{feedId}       {"feedId","feedType","processingStatus","resultFeedDocumentId"?}
//	GET  /feeds/2021-06-30/documents/{id}       {"feedDocumentId","url"} of the processing report
//	GET  <url>                                  the report: {"header","issues":[{"messageId","code","severity","message"}],"summary"}
//
// The feed: {"header":{"sellerId","version":"2.0"},"messages":[{"messageId","sku","operationType":"PATCH",
// "productType","patches":[{"op":"replace","path":"/attributes/fulfillment_availability","value":[…]}]}]}.
// A message for an unknown SKU or with a bad patch gets an ERROR issue and only that message
// is not applied; a header for another seller makes the whole feed FATAL.
//
// Rate limits are the documented defaults per operation (developer-docs.amazon.com/sp-api/docs/
// feeds-api-rate-limits): createFeed 0.0083/s burst 15, createFeedDocument 0.5/s burst 15,
// getFeed 2/s burst 15, getFeedDocument 0.0222/s burst 10; a 429 QuotaExceeded carries
// x-amzn-RateLimit-Limit. Simulator assumption: a feed is DONE FeedDelay after createFeed
// (default 1 s; real feeds commonly take minutes, and Amazon gives no figure).
type feedOp struct {
	rate, burst, tokens float64
	last                time.Time
}

type simFeed struct {
	id, doc, report string
	status          string
}

// feedState is the Feeds API's part of the simulator; the caller holds mu.
type feedState struct {
	FeedDelay time.Duration
	ops       map[string]*feedOp
	docs      map[string][]byte
	feeds     map[string]*simFeed
	n         int
	created   int // feeds accepted by createFeed
}

func newFeedState() feedState {
	ops := map[string]*feedOp{}
	for name, l := range map[string][2]float64{"createFeed": {0.0083, 15}, "createFeedDocument": {0.5, 15},
		"getFeed": {2, 15}, "getFeedDocument": {0.0222, 10}} {
		ops[name] = &feedOp{rate: l[0], burst: l[1], tokens: l[1]}
	}
	return feedState{FeedDelay: time.Second, ops: ops, docs: map[string][]byte{}, feeds: map[string]*simFeed{}}
}

// SetFeedLimit sets one Feeds API operation's rate (a second) and burst.
func (a *Amazon) SetFeedLimit(op string, rate, burst float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fs.ops[op] = &feedOp{rate: rate, burst: burst, tokens: burst}
}

// SetFeedDelay sets how long a feed takes to be processed.
func (a *Amazon) SetFeedDelay(d time.Duration) { a.mu.Lock(); a.fs.FeedDelay = d; a.mu.Unlock() }

// Feeds returns how many feeds createFeed accepted.
func (a *Amazon) Feeds() int { a.mu.Lock(); defer a.mu.Unlock(); return a.fs.created }

// admitOp runs op's token bucket; the caller holds mu.
func (a *Amazon) admitOp(w http.ResponseWriter, op string) bool {
	b := a.fs.ops[op]
	now := time.Now()
	if !b.last.IsZero() {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	a.arrive()
	w.Header().Set("x-amzn-RateLimit-Limit", strconv.FormatFloat(b.rate, 'f', -1, 64))
	if b.tokens < 1 {
		a.limit(time.Duration(float64(time.Second) / b.rate))
		return false
	}
	b.tokens--
	return true
}

const docPrefix = "/_sim/feed-docs/"

// feedDocument serves the pre-signed upload and download URLs (no token, as on S3).
func (a *Amazon) feedDocument(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, docPrefix)
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.fs.docs[id]
	switch {
	case !ok:
		http.Error(w, "NoSuchKey", http.StatusNotFound)
	case r.Method == http.MethodPut:
		b, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.fs.docs[id] = b
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(a.fs.docs[id])
	default:
		http.Error(w, "MethodNotAllowed", http.StatusMethodNotAllowed)
	}
}

// newDoc makes an empty feed document; the caller holds mu.
func (a *Amazon) newDoc(host string) map[string]string {
	a.fs.n++
	id := fmt.Sprintf("amzn1.tortuga.sim.%d", a.fs.n)
	a.fs.docs[id] = nil
	return map[string]string{"feedDocumentId": id, "url": "http://" + host + docPrefix + id}
}

// feeds serves /feeds/2021-06-30/…; the token was checked.
func (a *Amazon) feeds(w http.ResponseWriter, r *http.Request) {
	res := strings.TrimPrefix(r.URL.Path, "/feeds/2021-06-30/")
	op := ""
	switch {
	case r.Method == http.MethodPost && res == "documents":
		op = "createFeedDocument"
	case r.Method == http.MethodPost && res == "feeds":
		op = "createFeed"
	case r.Method == http.MethodGet && strings.HasPrefix(res, "feeds/"):
		op = "getFeed"
	case r.Method == http.MethodGet && strings.HasPrefix(res, "documents/"):
		op = "getFeedDocument"
	default:
		writeJSON(w, http.StatusNotFound, spErrors("NotFound", "Resource not found."))
		return
	}
	var in struct {
		ContentType         string   `json:"contentType"`
		FeedType            string   `json:"feedType"`
		MarketplaceIDs      []string `json:"marketplaceIds"`
		InputFeedDocumentID string   `json:"inputFeedDocumentId"`
	}
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, spErrors("InvalidInput", "Request has missing or invalid parameters and cannot be parsed."))
			return
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.admitOp(w, op) {
		writeJSON(w, http.StatusTooManyRequests, spErrors("QuotaExceeded", "You exceeded your quota for the requested resource."))
		return
	}
	switch op {
	case "createFeedDocument":
		if !strings.HasPrefix(in.ContentType, "application/json") {
			writeJSON(w, http.StatusBadRequest, spErrors("InvalidInput", "contentType must be application/json for JSON_LISTINGS_FEED."))
			return
		}
		writeJSON(w, http.StatusCreated, a.newDoc(r.Host))
	case "createFeed":
		doc, ok := a.fs.docs[in.InputFeedDocumentID]
		if in.FeedType != "JSON_LISTINGS_FEED" || len(in.MarketplaceIDs) != 1 || in.MarketplaceIDs[0] != a.Marketplace || !ok || doc == nil {
			writeJSON(w, http.StatusBadRequest, spErrors("InvalidInput", "Invalid feedType, marketplaceIds or inputFeedDocumentId (was the document uploaded?)."))
			return
		}
		a.fs.created++
		f := &simFeed{id: strconv.Itoa(50000 + a.fs.created), doc: in.InputFeedDocumentID, status: "IN_QUEUE"}
		a.fs.feeds[f.id] = f
		host := r.Host
		time.AfterFunc(a.fs.FeedDelay, func() { a.process(f, host) })
		writeJSON(w, http.StatusAccepted, map[string]string{"feedId": f.id})
	case "getFeed":
		f, ok := a.fs.feeds[strings.TrimPrefix(res, "feeds/")]
		if !ok {
			writeJSON(w, http.StatusNotFound, spErrors("NotFound", "Feed not found."))
			return
		}
		out := map[string]any{"feedId": f.id, "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": []string{a.Marketplace}, "processingStatus": f.status}
		if f.report != "" {
			out["resultFeedDocumentId"] = f.report
		}
		writeJSON(w, http.StatusOK, out)
	case "getFeedDocument":
		id := strings.TrimPrefix(res, "documents/")
		if _, ok := a.fs.docs[id]; !ok {
			writeJSON(w, http.StatusNotFound, spErrors("NotFound", "Feed document not found."))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"feedDocumentId": id, "url": "http://" + r.Host + docPrefix + id})
	}
}

type feedIssue struct {
	MessageID int    `json:"messageId,omitempty"`
	Code      string `json:"code"`
	Severity  string `json:"severity"`
	Message   string `json:"message"`
}

// process applies a feed's messages and writes its processing report.
func (a *Amazon) process(f *simFeed, host string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var in struct {
		Header struct {
			SellerID string `json:"sellerId"`
			Version  string `json:"version"`
		} `json:"header"`
		Messages []struct {
			MessageID     int          `json:"messageId"`
			SKU           string       `json:"sku"`
			OperationType string       `json:"operationType"`
			ProductType   string       `json:"productType"`
			Patches       stockPatches `json:"patches"`
		} `json:"messages"`
	}
	var issues []feedIssue
	accepted := 0
	if err := json.Unmarshal(a.fs.docs[f.doc], &in); err != nil || in.Header.SellerID != a.SellerID || in.Header.Version != "2.0" {
		issues = append(issues, feedIssue{Code: "100001", Severity: "ERROR", Message: "The feed header or JSON is invalid (sellerId, version 2.0)."})
		f.status = "FATAL"
	} else {
		for _, m := range in.Messages {
			p := m.Patches
			switch {
			case !a.known[m.SKU]:
				issues = append(issues, feedIssue{m.MessageID, "8541", "ERROR", "SKU " + m.SKU + " does not match any listing."})
			case m.OperationType != "PATCH" || m.ProductType == "" || !p.valid():
				issues = append(issues, feedIssue{m.MessageID, "4000001", "ERROR", "The provided value for 'fulfillment_availability' is invalid."})
			default:
				a.shown[m.SKU] = *p[0].Value[0].Quantity
				a.sets[m.SKU]++
				accepted++
			}
		}
		f.status = "DONE"
	}
	if issues == nil {
		issues = []feedIssue{}
	}
	report, _ := json.Marshal(map[string]any{
		"header": map[string]string{"sellerId": a.SellerID, "version": "2.0", "feedId": f.id},
		"issues": issues,
		"summary": map[string]int{"errors": len(issues), "warnings": 0, "messagesProcessed": len(in.Messages),
			"messagesAccepted": accepted, "messagesInvalid": len(in.Messages) - accepted},
	})
	d := a.newDoc(host)
	a.fs.docs[d["feedDocumentId"]] = report
	f.report = d["feedDocumentId"]
}
