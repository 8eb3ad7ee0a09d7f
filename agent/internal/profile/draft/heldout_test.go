package draft_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/profile/draft"
	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/receiptgen"
)

// verdict compares a parse result with the truth.
type verdict struct {
	right         bool   // the record is what the receipt says
	silentlyWrong bool   // parsed without a flag, and wrong about money
	why           string // what differs
}

func judge(r profile.Result, want protocol.Record) verdict {
	if r.Err != nil {
		return verdict{why: "quarantined: " + r.Err.Error()}
	}
	got := r.Record
	diffs := moneyDiffs(got, &want)
	other := otherDiffs(got, &want)
	v := verdict{right: len(r.Flags) == 0 && len(diffs) == 0 && len(other) == 0}
	v.silentlyWrong = len(r.Flags) == 0 && len(diffs) > 0
	v.why = strings.Join(append(append(diffs, other...), r.Flags...), "; ")
	return v
}

func moneyDiffs(got, want *protocol.Record) []string {
	var d []string
	ne := func(what string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			d = append(d, fmt.Sprintf("%s %v, want %v", what, g, w))
		}
	}
	if want.Kind.IsReport() {
		if got.Z == nil {
			return []string{"no Z"}
		}
		ne("gross", got.Z.Gross, want.Z.Gross)
		ne("net", got.Z.Net, want.Z.Net)
		ne("refunds", got.Z.Refunds.Amount, want.Z.Refunds.Amount)
		ne("voids", got.Z.Voids.Amount, want.Z.Voids.Amount)
		return d
	}
	ne("total", got.Total, want.Total)
	ne("change", got.Change, want.Change)
	var gl, wl []string
	for _, l := range got.Lines {
		if !l.Voided {
			gl = append(gl, fmt.Sprint(l.Amount))
		}
	}
	for _, l := range want.Lines {
		wl = append(wl, fmt.Sprint(l.Amount))
	}
	ne("line amounts", gl, wl)
	tenders := func(r *protocol.Record) string {
		var s []string
		for _, t := range r.Tenders {
			s = append(s, fmt.Sprintf("%s %d", t.Type, t.Amount))
		}
		return strings.Join(s, ",")
	}
	ne("tenders", tenders(got), tenders(want))
	tax := func(r *protocol.Record) (n int64) {
		for _, t := range r.Taxes {
			n += t.Amount
		}
		return n
	}
	ne("tax", tax(got), tax(want))
	return d
}

func otherDiffs(got, want *protocol.Record) []string {
	var d []string
	ne := func(what string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			d = append(d, fmt.Sprintf("%s %v, want %v", what, g, w))
		}
	}
	ne("kind", got.Kind, want.Kind)
	ne("date", got.BusinessDate, want.BusinessDate)
	if want.Receipt != "" {
		ne("receipt", strings.TrimLeft(got.Receipt, "0"), strings.TrimLeft(want.Receipt, "0"))
	}
	if want.Kind.IsReport() {
		if got.Z != nil {
			ne("refund count", got.Z.Refunds.Count, want.Z.Refunds.Count)
			ne("void count", got.Z.Voids.Count, want.Z.Voids.Count)
			ne("no-sale count", got.Z.NoSaleCount, want.Z.NoSaleCount)
		}
		return d
	}
	var gl, wl []string
	for _, l := range got.Lines {
		if !l.Voided {
			gl = append(gl, l.Description+" × "+l.Quantity)
		}
	}
	for _, l := range want.Lines {
		wl = append(wl, l.Description+" × "+l.Quantity)
	}
	ne("lines", gl, wl)
	return d
}

func parseAll(t *testing.T, p *profile.Profile, stream []byte) []profile.Result {
	t.Helper()
	ps := p.NewParser("T1")
	return append(ps.Feed(stream, time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)), ps.Close()...)
}

// TestDraftHeldOut drafts a profile from five receipts of a layout the draft code was not
// written against, then parses another day of that layout and compares every record with
// the truth: at least 90 % right, and none parsed unflagged with wrong money.
func TestDraftHeldOut(t *testing.T) {
	layouts := append(append(receiptgen.Layouts(), receiptgen.FrozenLayouts()...), receiptgen.UnseenLayouts()...)
	for _, l := range layouts {
		t.Run(l.Name, func(t *testing.T) { heldOut(t, l, 90) })
	}
}

// TestDraftBlindLayouts runs the same on layouts written when the draft code was final: nothing
// may be silently wrong about money; the share parsed right is held to the figure measured on
// the first run (a regression guard, not a bar they were tuned to).
func TestDraftBlindLayouts(t *testing.T) {
	// First run: cafe-fr 2 of 41 right, kedai-my 0 of 41 (see receiptgen.BlindLayouts); after
	// the data-driven guesses that followed (change by Σtenders − total, a return title by the
	// sign of the total, a receipt number by its sequence, "2 x item"): 40 and 18 of 41.
	floors := map[string]float64{"cafe-fr": 97, "kedai-my": 43}
	for _, l := range receiptgen.BlindLayouts() {
		t.Run(l.Name, func(t *testing.T) { heldOut(t, l, floors[l.Name]) })
	}
}

// TestDraftFinalLayouts measures the draft blind on layouts written after its last change:
// nothing silently wrong about money, and the share right held to the first run's figure.
func TestDraftFinalLayouts(t *testing.T) {
	// First run: 2 of 41 right (see receiptgen.FinalLayouts); 40 after the changes it led to.
	floors := map[string]float64{"tienda-es": 97}
	for _, l := range receiptgen.FinalLayouts() {
		t.Run(l.Name, func(t *testing.T) { heldOut(t, l, floors[l.Name]) })
	}
}

// TestDraftLastLayouts: the same, on the last two layouts, written after every change to the
// draft and never used to change it; their floors are their first-run figures.
func TestDraftLastLayouts(t *testing.T) {
	// First run: super-nl 37 of 41 right (a void title GEANNULEERD and 3 receipts whose date
	// line differs from the sample's, quarantined); quan-vn 0 of 41 (Vietnamese is not in the
	// keyword table: no total found, every receipt quarantined). None silently wrong.
	floors := map[string]float64{"super-nl": 90, "quan-vn": 0}
	for _, l := range receiptgen.LastLayouts() {
		t.Run(l.Name, func(t *testing.T) { heldOut(t, l, floors[l.Name]) })
	}
}

func heldOut(t *testing.T, l *receiptgen.Layout, floor float64) {
	{
		{
			sampleDay := l.Generate(1, 30)
			sample := sampleDay.Stream(0, 5)
			y, err := draft.Draft(sample, draft.Options{Dialect: l.Dialect, CodePage: l.CodePage, Name: l.Name, Source: "5 receipts of day 1"})
			if err != nil {
				t.Fatalf("Draft: %v", err)
			}
			if dir := os.Getenv("LANEBRIDGE_DRAFT_OUT"); dir != "" {
				_ = os.WriteFile(filepath.Join(dir, l.Name+".yaml"), y, 0o644)
				_ = os.WriteFile(filepath.Join(dir, l.Name+"-sample.bin"), sample, 0o644)
			}
			p, err := profile.Load(bytes.NewReader(y))
			if err != nil {
				t.Fatalf("the draft does not load: %v\n%s", err, y)
			}
			day := l.Generate(2, 40) // the held-out day
			stream := day.Stream(0, len(day.Receipts))
			if dir := os.Getenv("LANEBRIDGE_DRAFT_OUT"); dir != "" {
				_ = os.WriteFile(filepath.Join(dir, l.Name+"-day2.bin"), stream, 0o644)
			}
			res := parseAll(t, p, stream)
			if len(res) != len(day.Truth) {
				for i, r := range res {
					t.Logf("result %d: err %v rec %+v", i, r.Err, r.Record)
				}
				t.Fatalf("%d results for %d receipts\n%s", len(res), len(day.Truth), y)
			}
			right, silent, flagged, quarantined, cleanWrong := 0, 0, 0, 0, 0
			for i, r := range res {
				v := judge(r, day.Truth[i])
				switch {
				case v.right:
					right++
				case r.Err != nil:
					quarantined++
				case len(r.Flags) == 0:
					cleanWrong++ // not flagged, money right, something else (a quantity, a kind) wrong
				default:
					flagged++
				}
				if v.silentlyWrong {
					silent++
					t.Errorf("receipt %d (%s) parsed unflagged with wrong money: %s\n%s", i, day.Truth[i].Kind, v.why, r.Raw)
				} else if !v.right {
					t.Logf("receipt %d (%s) not right: %s", i, day.Truth[i].Kind, v.why)
				}
			}
			pct := 100 * float64(right) / float64(len(res))
			t.Logf("%s: %d receipts, %d right (%.1f %%), %d flagged, %d quarantined, %d unflagged with money right but another field wrong, %d silently wrong about money",
				l.Name, len(res), right, pct, flagged, quarantined, cleanWrong-silent, silent)
			if pct < floor {
				t.Errorf("%.1f %% parsed right, want ≥ %.0f %%\n%s", pct, floor, y)
			}
		}
	}
}
