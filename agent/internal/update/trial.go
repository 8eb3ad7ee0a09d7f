package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/selfupdate"

	"github.com/lanebridge/lanebridge/protocol"
)

// Pending phases.
const (
	PhaseTrial   = "trial"   // the staged binary runs as the old process's child; target untouched
	PhaseSwapped = "swapped" // the binary at the target path is the new one, not yet healthy
)

// MaxStarts is how many starts the new binary gets after the swap to report healthy before
// the old one is restored.
const MaxStarts = 3

// Pending is update-pending.json: an update between its trial and its first healthy start.
type Pending struct {
	Phase     string    `json:"phase"`
	CommandID string    `json:"command_id"`
	Version   string    `json:"version"` // the new version
	From      string    `json:"from"`    // the version it replaces
	Target    string    `json:"target"`  // the executable path being updated
	Old       string    `json:"old"`     // where the previous binary is kept (selfupdate OldSavePath)
	Staged    string    `json:"staged"`  // the verified download
	Starts    int       `json:"starts"`  // starts of the new binary after the swap
	Started   time.Time `json:"started"`
}

// Action is what Startup asks the caller to do.
type Action int

const (
	Run     Action = iota // start the agent
	ExecOld               // the previous binary was restored at the target path: exec it
)

func (u *Updater) removeStaged() {
	if m, _ := filepath.Glob(u.path("update-*.bin")); len(m) > 0 {
		for _, f := range m {
			_ = os.Remove(f)
		}
	}
	if m, _ := filepath.Glob(u.path("update-*.minisig")); len(m) > 0 {
		for _, f := range m {
			_ = os.Remove(f)
		}
	}
	_ = os.Remove(u.path(healthyFile))
	_ = os.Remove(u.path(trialErrorFile))
}

// Startup runs before the agent starts. A trial child reads its pending file; the new binary
// after a swap counts its start (and restores the old binary after MaxStarts); a plain start
// records its version as run and clears leftovers of an interrupted update.
func (u *Updater) Startup() (Action, error) {
	if pf := os.Getenv(TrialEnv); pf != "" {
		var p Pending
		if err := readJSON(pf, &p); err != nil {
			return Run, fmt.Errorf("update trial: pending file %s: %w", pf, err)
		}
		// A binary published under another version than the one stamped into it must not pass:
		// swapped in, it would start as that other version (possibly below the highest run) and
		// take the update for an interrupted one. The reason goes to the parent in a file.
		if c, err := protocol.CompareVersions(u.o.Version, p.Version); err != nil || c != 0 {
			reason := fmt.Sprintf("the release binary reports version %s, not %s: it was published under the wrong --version", u.o.Version, p.Version)
			_ = writeFile(filepath.Join(filepath.Dir(pf), trialErrorFile), []byte(reason), 0o600)
			return Run, fmt.Errorf("update trial: %s", reason)
		}
		u.mu.Lock()
		u.trial = &p
		u.mu.Unlock()
		return Run, nil
	}
	var p Pending
	err := readJSON(u.path(pendingFile), &p)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		u.o.Log.Error("update: unreadable pending file; ignoring it", "file", u.path(pendingFile), "err", err)
		_ = os.Remove(u.path(pendingFile))
	case p.Phase == PhaseSwapped && p.Version == u.o.Version:
		p.Starts++
		if p.Starts > MaxStarts {
			return ExecOld, u.Revert(&p, fmt.Sprintf("%s did not report healthy in %d starts after the swap", p.Version, MaxStarts))
		}
		if err := writeJSON(u.path(pendingFile), p); err != nil {
			return Run, fmt.Errorf("update: %w", err)
		}
		u.mu.Lock()
		u.post = &p
		u.mu.Unlock()
		u.o.Log.Info("update: first starts of the new binary", "version", p.Version, "start", p.Starts, "of", MaxStarts)
		return Run, nil
	default:
		// The old binary runs: the trial (or the swap) was interrupted by a restart or power
		// cut, before the new binary took over. The target was never changed (or was restored).
		u.report(protocol.UpdateReport{CommandID: p.CommandID, Version: p.Version, From: u.o.Version, State: protocol.UpdateFailed,
			Detail: fmt.Sprintf("the update to %s was interrupted (agent restarted during its %s); still running %s", p.Version, p.Phase, u.o.Version)})
		_ = os.Remove(u.path(pendingFile))
	}
	u.removeStaged()
	return Run, u.recordRun()
}

// recordRun raises the highest version run to the running one.
func (u *Updater) recordRun() error {
	if _, err := protocol.ParseSemver(u.o.Version); err != nil {
		return nil
	}
	u.mu.Lock()
	h := u.st.Highest
	u.mu.Unlock()
	if h != "" {
		if c, err := protocol.CompareVersions(u.o.Version, h); err == nil && c <= 0 {
			return nil
		}
	}
	if err := u.saveState(func(s *state) { s.Highest = u.o.Version }); err != nil {
		return fmt.Errorf("update: record the version run: %w", err)
	}
	return nil
}

// PostSwap reports whether this is the new binary after a swap, not yet healthy, and the time
// it has to become healthy.
func (u *Updater) PostSwap() (*Pending, time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.post == nil || u.ok {
		return nil, 0
	}
	p := *u.post
	return &p, u.o.HealthTimeout
}

// Healthy is called by the agent once it is healthy: spool open, capture running, hub reachable
// or spool writable. A trial child writes the marker its parent waits for; the new binary
// after a swap completes the update.
func (u *Updater) Healthy() error {
	u.mu.Lock()
	if u.ok {
		u.mu.Unlock()
		return nil
	}
	u.ok = true
	trial, post := u.trial, u.post
	u.mu.Unlock()
	switch {
	case trial != nil:
		pf := os.Getenv(TrialEnv)
		return writeFile(filepath.Join(filepath.Dir(pf), healthyFile), fmt.Appendf(nil, "%s %d\n", trial.Version, os.Getpid()), 0o600)
	case post != nil:
		if err := u.saveState(func(s *state) { s.Highest = u.o.Version }); err != nil {
			return err
		}
		u.report(protocol.UpdateReport{CommandID: post.CommandID, Version: post.Version, From: post.From, State: protocol.UpdateHealthy,
			Detail: fmt.Sprintf("healthy after %d start(s); previous binary kept at %s", post.Starts, post.Old)})
		u.mu.Lock()
		u.post = nil
		u.mu.Unlock()
		_ = os.Remove(u.path(pendingFile))
		u.removeStaged()
	}
	return nil
}

// Revert restores the previous binary after a failed swap (the caller execs it) and records
// the version as rolled back.
func (u *Updater) Revert(p *Pending, reason string) error {
	if err := restore(p.Old, p.Target); err != nil {
		u.report(protocol.UpdateReport{CommandID: p.CommandID, Version: p.Version, From: p.From, State: protocol.UpdateFailed,
			Detail: fmt.Sprintf("%s; restoring %s from %s failed: %v", reason, p.Target, p.Old, err)})
		return fmt.Errorf("update: restore the previous binary: %w", err)
	}
	u.fail(p, reason)
	return nil
}

// fail records p's version as rolled back (never retried) and clears the pending update.
func (u *Updater) fail(p *Pending, reason string) {
	if err := u.saveState(func(s *state) {
		if !containsStr(s.Failed, p.Version) {
			s.Failed = append(s.Failed, p.Version)
		}
	}); err != nil {
		u.o.Log.Error("update: cannot save the update state", "err", err)
	}
	u.report(protocol.UpdateReport{CommandID: p.CommandID, Version: p.Version, From: p.From, State: protocol.UpdateRolledBack, Detail: reason})
	_ = os.Remove(u.path(pendingFile))
	u.removeStaged()
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// restore puts old back at target. On Windows the running target is moved aside first.
func restore(old, target string) error {
	if _, err := os.Stat(old); err != nil {
		return err
	}
	if err := os.Rename(old, target); err != nil {
		aside := target + ".failed"
		_ = os.Remove(aside)
		if err2 := os.Rename(target, aside); err2 != nil {
			return err
		}
		if err := os.Rename(old, target); err != nil {
			_ = os.Rename(aside, target)
			return err
		}
	}
	syncDir(filepath.Dir(target))
	return nil
}

// ErrRestart (Windows) asks the caller to exit non-zero: the service's recovery action
// (restart on failure, set by `service install`) starts the binary now at the target path.
var ErrRestart = errors.New("update: exit so the service manager restarts the agent on the new binary")

// ErrRolledBack reports an update whose trial failed: the old agent runs on.
var ErrRolledBack = errors.New("update rolled back")

// Install runs the staged binary as a trial child (args: its command line, e.g. run --config
// PATH; its output goes to logw) and, once it reports healthy, stops it, swaps it in and hands
// over (Handover: on unix it does not return). The agent must be stopped (spool closed). On a
// failed trial it returns an error wrapping ErrRolledBack and the caller starts the agent again.
//
// ctx ending (the agent is being stopped) ends the trial without blaming the release: the
// child is stopped, the update reported failed (the hub may offer it again) and Install
// returns ErrRolledBack; the caller sees ctx done and stops.
func (u *Updater) Install(ctx context.Context, st *Staged, args []string, logw io.Writer) error {
	m := st.Manifest
	p := &Pending{Phase: PhaseTrial, CommandID: st.CommandID, Version: m.Version, From: u.o.Version, Target: u.o.Exe,
		Old: u.o.Exe + ".old", Staged: st.Path, Started: u.o.Now().UTC()}
	if err := writeJSON(u.path(pendingFile), p); err != nil {
		u.report(protocol.UpdateReport{CommandID: p.CommandID, Version: p.Version, From: p.From, State: protocol.UpdateFailed, Detail: "write the pending file: " + err.Error()})
		return fmt.Errorf("%w: %v", ErrRolledBack, err)
	}
	_ = os.Remove(u.path(healthyFile))
	_ = os.Remove(u.path(trialErrorFile))
	u.report(protocol.UpdateReport{CommandID: p.CommandID, Version: p.Version, From: p.From, State: protocol.UpdateTrial})

	reason := u.trialRun(ctx, p, st.Path, args, logw)
	if ctx.Err() != nil {
		u.report(protocol.UpdateReport{CommandID: p.CommandID, Version: p.Version, From: p.From, State: protocol.UpdateFailed,
			Detail: "the agent was stopped during the trial; the previous binary stays"})
		_ = os.Remove(u.path(pendingFile))
		u.removeStaged()
		return fmt.Errorf("%w: stopped during the trial", ErrRolledBack)
	}
	if reason != "" {
		u.fail(p, reason)
		return fmt.Errorf("%w: %s", ErrRolledBack, reason)
	}

	// Healthy: swap. The pending file says "swapped" first: a crash before the swap completes
	// finds the old binary at the target path, which clears the update (Startup).
	p.Phase = PhaseSwapped
	if err := writeJSON(u.path(pendingFile), p); err != nil {
		u.fail(p, "write the pending file: "+err.Error())
		return fmt.Errorf("%w: %v", ErrRolledBack, err)
	}
	if err := u.swap(st, p); err != nil {
		reason := "swap failed: " + err.Error()
		if rerr := selfupdate.RollbackError(err); rerr != nil {
			reason += fmt.Sprintf("; restoring the previous binary failed too (%v): %s may be missing", rerr, p.Target)
		}
		u.report(protocol.UpdateReport{CommandID: p.CommandID, Version: p.Version, From: p.From, State: protocol.UpdateFailed, Detail: reason})
		_ = os.Remove(u.path(pendingFile))
		u.removeStaged()
		return fmt.Errorf("%w: %s", ErrRolledBack, reason)
	}
	u.o.Log.Info("update: swapped; handing over to the new binary", "version", p.Version, "target", p.Target, "old", p.Old)
	return handover(p.Target, args)
}

// swap applies the staged binary with selfupdate: checksum and minisign verifier both set, the
// previous binary kept at p.Old.
func (u *Updater) swap(st *Staged, p *Pending) error {
	bin, err := os.ReadFile(st.Path)
	if err != nil {
		return err
	}
	keyText, err := st.Key.MarshalText()
	if err != nil {
		return err
	}
	v := selfupdate.NewVerifier()
	if err := v.LoadFromFile(st.SigPath, string(keyText)); err != nil {
		return fmt.Errorf("load the binary signature: %w", err)
	}
	return selfupdate.Apply(bytes.NewReader(bin), selfupdate.Options{
		TargetPath: p.Target, OldSavePath: p.Old, Checksum: st.SHA256, Verifier: v, TargetMode: 0o755,
	})
}

// trialRun starts the staged binary as a child and waits for its healthy marker; "" on
// success (the child stopped gracefully), else the reason the trial failed (child killed).
func (u *Updater) trialRun(ctx context.Context, p *Pending, bin string, args []string, logw io.Writer) string {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(withoutTrialEnv(os.Environ()), TrialEnv+"="+u.path(pendingFile))
	cmd.Stdout, cmd.Stderr = logw, logw
	trialSysProc(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "trial: " + err.Error()
	}
	if err := cmd.Start(); err != nil {
		return fmt.Sprintf("%s could not start: %v", p.Version, err)
	}
	u.o.Log.Info("update: trial started", "version", p.Version, "pid", cmd.Process.Pid, "health_timeout", u.o.HealthTimeout)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(u.o.HealthTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	want := fmt.Sprintf("%s %d", p.Version, cmd.Process.Pid)
	stopChild := func(within time.Duration) {
		stdin.Close() // the child stops gracefully when its stdin closes
		select {
		case err := <-exited:
			if err != nil {
				u.o.Log.Warn("update: trial child exited with an error", "err", exitText(err))
			}
		case <-time.After(within):
			_ = cmd.Process.Kill()
			<-exited
			u.o.Log.Warn("update: trial child did not stop in time; killed", "within", within)
		}
	}
	for {
		select {
		case <-ctx.Done():
			stopChild(10 * time.Second) // inside the service stop timeout (15s)
			return "stopped"
		case err := <-exited:
			reason := fmt.Sprintf("%s exited during its trial before reporting healthy (%v)", p.Version, exitText(err))
			if b, _ := os.ReadFile(u.path(trialErrorFile)); len(b) > 0 {
				reason += ": " + strings.TrimSpace(string(b[:min(len(b), 512)]))
			}
			return reason
		case <-deadline.C:
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Sprintf("%s did not report healthy within %s (update.health_timeout); killed", p.Version, u.o.HealthTimeout)
		case <-tick.C:
			b, _ := os.ReadFile(u.path(healthyFile))
			if strings.TrimSpace(string(b)) != want {
				continue
			}
			u.o.Log.Info("update: trial healthy; stopping it", "version", p.Version)
			stopChild(20 * time.Second)
			return ""
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func withoutTrialEnv(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, TrialEnv+"=") {
			out = append(out, e)
		}
	}
	return out
}

// ExecTarget runs the restored previous binary in this process's place (see handover).
func ExecTarget(target string, args []string) error { return handover(target, args) }
