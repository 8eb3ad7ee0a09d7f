package reconcile

import (
	"context"
	"fmt"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// SummaryReader reads a store-day's summary kept at apply time (store.DB.DaySummary): a close
// that has one compares it instead of decoding every record of the day, and falls back to the
// records when the summary is not exact (recaptured receipts, returns without a receipt, sums
// that could pass int64).
type SummaryReader interface {
	DaySummary(ctx context.Context, store, date string, withERP bool) (store.DaySummary, error)
}

// CompareSummary is Compare from a store-day's summary (sum.Exact must be set): the same
// Result, reading only the day's sums, receipt gaps, Z reports, returns and the sales they
// name, posting counts and the postings not done.
func CompareSummary(storeID, date string, sum store.DaySummary, zDue, withERP bool) Result {
	res := Result{Store: storeID, BusinessDate: date, Z: map[string]Totals{}, Captured: map[string]Totals{}, Gaps: map[string][][2]int64{}, Issues: []Issue{}}
	issue := func(reason, term, key, format string, a ...any) {
		res.Issues = append(res.Issues, Issue{Reason: reason, Terminal: term, Key: date + "|" + term + "|" + key, Detail: fmt.Sprintf(format, a...)})
	}
	overflow := map[string]bool{}
	addTo := func(what string, m map[string]int64, k string, v int64) {
		s := m[k]
		if n := s + v; (v > 0 && n < s) || (v < 0 && n > s) {
			overflow[what+" "+k] = true
		} else {
			s = n
		}
		m[k] = s
	}
	for i := range sum.Z {
		zReport(&res, &sum.Z[i], addTo)
	}
	active := map[string]bool{}
	for t, ts := range sum.Terminals {
		active[t] = true
		res.Captured[t] = Totals{Tenders: ts.Tenders, Taxes: ts.Taxes, Net: ts.Net}
		// The summary is exact only when Σ|amounts| of the day stays in int64: no sum overflows.
		res.ERP.Postable += int(ts.Postable)
		res.ERP.Captured += ts.Net
	}
	for t, g := range sum.Gaps {
		res.Gaps[t] = g
	}
	sales := map[string]*protocol.Record{}
	for i := range sum.Sales {
		r := &sum.Sales[i]
		sales[r.Terminal+"|"+r.Receipt] = r
	}
	returns := make([]*protocol.Record, len(sum.Returns))
	for i := range sum.Returns {
		returns[i] = &sum.Returns[i]
	}
	dayIssues(&res, date, active, sales, returns, zDue, issue)
	if !withERP {
		res.ERP.Skipped = true
		overflowIssues(overflow, issue)
		return finish(res)
	}
	res.ERP.Postings, res.ERP.Done, res.ERP.Pending, res.ERP.Rejected = sum.ERP.Postings, sum.ERP.Done, sum.ERP.Pending, sum.ERP.Rejected
	res.ERP.Posted = sum.ERP.Posted
	for _, u := range sum.Unposted {
		if u.Missing {
			issue(ReasonPostingMissing, u.Terminal, u.Receipt+"|"+string(u.Kind), "%s receipt %s has no posting in the outbox", u.Kind, u.Receipt)
		} else {
			issue(ReasonPostingMissing, u.Terminal, u.Receipt+"|"+string(u.Kind), "%s receipt %s is not posted yet (%s, attempts %d: %s)", u.Kind, u.Receipt, u.State, u.Attempts, u.LastError)
		}
	}
	erpIssues(&res, issue)
	overflowIssues(overflow, issue)
	return finish(res)
}
