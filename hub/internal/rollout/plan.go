// Package rollout plans and runs rollouts of signed agent releases: the stores a release
// matches are put into cumulative waves; the engine offers the release to a store of the
// current wave when it is online, inside its maintenance window and its backlog is drained,
// advances a wave once every store in it is healthy or has failed, and halts the rollout by
// itself when the failures cross its threshold.
package rollout

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// DefaultChannel is the channel of an agent that reports none.
const DefaultChannel = "stable"

// DefaultWindow is the maintenance window of a store without one (rollouts.maintenance_window):
// night hours, outside the trading of most stores.
const DefaultWindow = "Mon-Sun 02:00-05:00"

// Target is one wave of a --waves list: a cumulative count of stores, or a percentage of them.
type Target struct {
	Count   int
	Percent float64 // > 0: a percentage
	Text    string
}

// Of returns how many of n stores the target reaches (a percentage rounds up, at most n).
func (t Target) Of(n int) int {
	if t.Percent > 0 {
		return min(n, int(math.Ceil(t.Percent*float64(n)/100-1e-9)))
	}
	return min(n, t.Count)
}

// ParseWaves reads "1,10%,50%,100%": cumulative targets, non-decreasing, the last 100%.
func ParseWaves(spec string) ([]Target, error) {
	var out []Target
	for _, f := range strings.Split(spec, ",") {
		t, err := parseTarget(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--waves %q: %w (e.g. 1,10%%,50%%,100%%)", spec, err)
		}
		out = append(out, t)
	}
	if len(out) > 20 {
		return nil, fmt.Errorf("--waves %q: at most 20 waves", spec)
	}
	if l := out[len(out)-1]; l.Percent != 100 {
		return nil, fmt.Errorf("--waves %q: the last wave must be 100%% so that every matching store is reached", spec)
	}
	for i := 1; i < len(out); i++ {
		a, b := out[i-1], out[i]
		if a.Percent > 0 && b.Percent > 0 && b.Percent < a.Percent || a.Percent == 0 && b.Percent == 0 && b.Count < a.Count {
			return nil, fmt.Errorf("--waves %q: waves are cumulative, %s after %s goes back", spec, b.Text, a.Text)
		}
	}
	return out, nil
}

func parseTarget(s string) (Target, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v > 100 || math.IsNaN(v) {
			return Target{}, fmt.Errorf("%q is not a percentage 0 < p <= 100", s)
		}
		return Target{Percent: v, Text: s}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Target{}, fmt.Errorf("%q is neither a store count >= 1 nor a percentage", s)
	}
	return Target{Count: n, Text: s}, nil
}

// ParseMaxFailures reads "5%" or a count ("3"); Allowed returns how many failures of n stores
// a rollout tolerates: it halts when there are more.
func ParseMaxFailures(s string) (Target, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || v > 100 || math.IsNaN(v) {
			return Target{}, fmt.Errorf("--max-failures %q: not a percentage 0..100", s)
		}
		return Target{Percent: v, Text: s}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return Target{}, fmt.Errorf("--max-failures %q: use a percentage (5%%) or a count of stores (0, 3)", s)
	}
	return Target{Count: n, Text: s}, nil
}

// Allowed is the failures tolerated among n stores: failures above it halt the rollout.
func (t Target) Allowed(n int) float64 {
	if t.Text != "" && strings.HasSuffix(t.Text, "%") {
		return t.Percent * float64(n) / 100
	}
	return float64(t.Count)
}

// Filter narrows a rollout to an os, arch and channel ("" : any).
type Filter struct{ OS, Arch, Channel string }

// ErrNoStores is returned by Plan when no store matches.
var ErrNoStores = errors.New("no store matches the release")

// Plan assigns the stores that match a release of version (active, reporting an os/arch/channel
// that one of releases was published for, running a version below it) to waves; it returns
// the waves with their cumulative store counts and the stores in id order. Stores that report
// no os or arch (agents before self-update), a version that is not semantic, or one below the
// release's min_from are left out and listed in skipped with the reason.
func Plan(version string, f Filter, targets []Target, stores []store.StoreInfo, releases []store.Release) (waves []store.Wave, out []store.RolloutStore, skipped []string, err error) {
	byKey := map[[3]string]store.Release{}
	for _, r := range releases {
		if r.Version == version && (f.OS == "" || f.OS == r.OS) && (f.Arch == "" || f.Arch == r.Arch) && (f.Channel == "" || f.Channel == r.Channel) {
			byKey[[3]string{r.OS, r.Arch, r.Channel}] = r
		}
	}
	if len(byKey) == 0 {
		return nil, nil, nil, fmt.Errorf("release %s is not published for %s (see `lanebridge-hub releases list`)", version, f)
	}
	slices.SortFunc(stores, func(a, b store.StoreInfo) int { return cmp.Compare(a.ID, b.ID) })
	for _, si := range stores {
		st := si.Status
		switch {
		case si.State != store.StoreActive:
			continue
		case st == nil || st.OS == "" || st.Arch == "":
			skipped = append(skipped, si.ID+": reports no os/arch (never seen, or an agent without self-update)")
			continue
		}
		rel, ok := byKey[[3]string{st.OS, st.Arch, cmp.Or(st.Channel, DefaultChannel)}]
		if !ok {
			continue
		}
		c, cerr := protocol.CompareVersions(st.Version, version)
		if cerr != nil {
			skipped = append(skipped, fmt.Sprintf("%s: runs %q, not a semantic version", si.ID, st.Version))
			continue
		}
		if c >= 0 {
			continue
		}
		if rel.MinFrom != "" {
			if c, err := protocol.CompareVersions(st.Version, rel.MinFrom); err == nil && c < 0 {
				skipped = append(skipped, fmt.Sprintf("%s: runs %s, below the release's min_from %s (roll out an intermediate version first)", si.ID, st.Version, rel.MinFrom))
				continue
			}
		}
		out = append(out, store.RolloutStore{Store: si.ID, Release: rel.ID, FromVersion: st.Version})
	}
	if len(out) == 0 {
		return nil, nil, skipped, fmt.Errorf("%w %s for %s (all on it or newer, offline since before os/arch reporting, or none enrolled)", ErrNoStores, version, f)
	}
	prev := 0
	for i, t := range targets {
		n := max(prev, t.Of(len(out)))
		waves = append(waves, store.Wave{Wave: i, Target: t.Text, Stores: n})
		for j := prev; j < n; j++ {
			out[j].Wave = i
		}
		prev = n
	}
	return waves, out, skipped, nil
}

func (f Filter) String() string {
	return fmt.Sprintf("os %s, arch %s, channel %s", cmp.Or(f.OS, "any"), cmp.Or(f.Arch, "any"), cmp.Or(f.Channel, "any"))
}

// BinaryPath is the hub path an agent downloads a release's binary from (Command.URL).
func BinaryPath(r store.Release) string {
	return fmt.Sprintf("/api/v1/agent/releases/%s/%s/%s/binary?channel=%s", r.Version, r.OS, r.Arch, r.Channel)
}
