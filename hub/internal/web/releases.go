package web

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// ReleaseStore is what the release, rollout and agent download endpoints read.
type ReleaseStore interface {
	// Releases lists releases newest first ("" : every version).
	Releases(ctx context.Context, version string) ([]store.Release, error)
	Rollouts(ctx context.Context, state string) ([]store.Rollout, error)
	// Rollout returns store.ErrNotFound for an unknown id.
	Rollout(ctx context.Context, id int64) (store.Rollout, error)
	// Credentials returns a store's credentials (store.ErrNotFound if unknown).
	Credentials(ctx context.Context, id string) (store.Credential, error)
}

// downloads limits concurrent binary downloads: max in all, one per store.
type downloads struct {
	slots chan struct{}
	mu    sync.Mutex
	busy  map[string]bool
}

func newDownloads(max int) *downloads {
	return &downloads{slots: make(chan struct{}, cmp.Or(max, 20)), busy: map[string]bool{}}
}

// acquire takes a slot for store; "" when granted, else why not (the caller answers 429/503).
func (d *downloads) acquire(id string) (code int, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy[id] {
		return http.StatusTooManyRequests, "this store is already downloading a release; one download per store at a time"
	}
	select {
	case d.slots <- struct{}{}:
		d.busy[id] = true
		return 0, ""
	default:
		return http.StatusServiceUnavailable, "the hub is serving its maximum of concurrent downloads (rollouts.max_downloads); retry later"
	}
}

func (d *downloads) release(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.busy, id)
	<-d.slots
}

var reGoName = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// routesReleases registers the release and rollout API, the /rollouts page and the agents'
// binary download.
func (s *Server) routesReleases(o Options) {
	s.releasesDir = o.ReleasesDir
	s.downloads = newDownloads(o.MaxDownloads)
	s.handle("GET /api/v1/releases", auth.Viewer, s.releases)
	s.handle("GET /api/v1/rollouts", auth.Viewer, s.rollouts)
	s.handle("GET /api/v1/rollouts/{id}", auth.Viewer, s.rolloutInfo)
	s.handle("GET /rollouts", auth.Viewer, s.rolloutsPage)
	s.handle("GET /api/v1/agent/releases/{version}/{os}/{arch}/binary", auth.Agent, s.releaseBinary)
}

func (s *Server) releases(w http.ResponseWriter, r *http.Request) {
	list, err := s.st.Releases(r.Context(), "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"releases": append([]store.Release{}, list...)})
}

// rolloutView is a rollout as the API and page show it: the stores the principal may see, and
// counts of their states per wave.
type rolloutView struct {
	store.Rollout
	// Counts is, per wave, the number of the principal's stores in each state.
	Counts []map[string]int `json:"counts"`
}

func (s *Server) viewRollout(r *http.Request, ro store.Rollout) rolloutView {
	v := rolloutView{Rollout: ro, Counts: make([]map[string]int, len(ro.Waves))}
	for i := range v.Counts {
		v.Counts[i] = map[string]int{}
	}
	v.Stores = slices.DeleteFunc(slices.Clone(ro.Stores), func(rs store.RolloutStore) bool { return mayStore(r, rs.Store) != nil })
	for _, rs := range v.Stores {
		if rs.Wave < len(v.Counts) {
			v.Counts[rs.Wave][rs.State]++
		}
	}
	return v
}

func (s *Server) loadRollouts(r *http.Request) ([]rolloutView, error) {
	list, err := s.st.Rollouts(r.Context(), "")
	if err != nil {
		return nil, err
	}
	out := []rolloutView{}
	for _, ro := range list {
		full, err := s.st.Rollout(r.Context(), ro.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, s.viewRollout(r, full))
	}
	return out, nil
}

// rollouts is GET /api/v1/rollouts: every rollout, newest first, with its waves and the
// states of the principal's stores in it.
func (s *Server) rollouts(w http.ResponseWriter, r *http.Request) {
	list, err := s.loadRollouts(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"rollouts": list})
}

func (s *Server) rolloutInfo(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		s.fail(w, r, badRequest("id: not a rollout id"))
		return
	}
	ro, err := s.st.Rollout(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, s.viewRollout(r, ro))
}

type rolloutsPage struct {
	Rollouts []rolloutView
	Releases []store.Release
}

func (s *Server) rolloutsPage(w http.ResponseWriter, r *http.Request) {
	list, err := s.loadRollouts(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rels, err := s.st.Releases(r.Context(), "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "rollouts", rolloutsPage{list, rels})
}

// releaseBinary serves GET /api/v1/agent/releases/{version}/{os}/{arch}/binary?channel=C to a
// store's agent (HTTP Basic, its broker credentials). Any active store of the fleet may
// download any published release: the binary is signed and no secret, and tying downloads to
// rollouts would break an agent's retry after its rollout ended. The path's values only
// select a row; the file served is the one the release names in the releases directory.
// Downloads are capped (rollouts.max_downloads in all, one per store) and streamed with
// Content-Length and Range support.
func (s *Server) releaseBinary(w http.ResponseWriter, r *http.Request) {
	version, goos, arch := r.PathValue("version"), r.PathValue("os"), r.PathValue("arch")
	if _, err := protocol.ParseSemver(version); err != nil {
		s.fail(w, r, badRequest("version: "+err.Error()))
		return
	}
	if !reGoName.MatchString(goos) || !reGoName.MatchString(arch) {
		s.fail(w, r, badRequest("os/arch: not a GOOS/GOARCH pair"))
		return
	}
	channel := r.URL.Query().Get("channel")
	if channel == "" {
		channel = "stable"
	}
	list, err := s.st.Releases(r.Context(), version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(list, func(rel store.Release) bool { return rel.OS == goos && rel.Arch == arch && rel.Channel == channel })
	if i < 0 {
		s.fail(w, r, fmt.Errorf("release %s %s/%s on %s: %w", version, goos, arch, channel, store.ErrNotFound))
		return
	}
	rel := list[i]
	if s.releasesDir == "" || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(rel.File) {
		s.fail(w, r, fmt.Errorf("release %d: no releases directory or a bad file name %q", rel.ID, rel.File))
		return
	}
	id := principal(r).Name
	if code, msg := s.downloads.acquire(id); code != 0 {
		w.Header().Set("Retry-After", "30")
		s.writeJSON(w, code, apiError{msg})
		return
	}
	defer s.downloads.release(id)
	f, err := os.Open(filepath.Join(s.releasesDir, rel.File))
	if err != nil {
		s.fail(w, r, fmt.Errorf("release %d binary: %w", rel.ID, err))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() != rel.Size {
		s.fail(w, r, fmt.Errorf("release %d binary: size on disk differs from the manifest's %d (%v)", rel.ID, rel.Size, err))
		return
	}
	// The server's write timeout fits API answers, not a large binary to a slow store link:
	// allow 10 minutes plus a minute per 8 MiB.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10*time.Minute + time.Duration(rel.Size/(8<<20))*time.Minute))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Lanebridge-SHA256", rel.SHA256)
	h.Set("Cache-Control", "no-store")
	s.log.Info("release download", "store", id, "version", version, "os", goos, "arch", arch, "channel", channel)
	http.ServeContent(w, r, "", rel.PublishedAt, f)
}
