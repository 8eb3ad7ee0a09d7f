// Package fanin is a fan-in load harness: many simulated stores against one real
// lanebridge-hub (embedded broker + SQLite), in one process.
//
// The agent's spool and uplink live in agent/internal, which Go's internal rule keeps out of
// testharness, and 1,000 real lanebridge-agent processes are too heavy for this machine. So each
// store here is a lightweight emulator speaking the exact wire protocol (package protocol):
// its own paho connection (client id lanebridge-agent-STORE, clean session, QoS 1, keepalive
// 15 s, as the agent), a retained online status, record batches on up/records built with
// protocol.AppendBatch from sealed records, cumulative acks on down/acks (resend_from honoured),
// at most 8 batches in flight. Its spool is in memory, not bbolt: this measures the hub.
//
// Latency is capture → ack received: from the record's CapturedAt (set when it is made) to the
// arrival of the ack covering it, which the hub publishes only after the apply committed; it
// is therefore an upper bound of capture → applied (it includes the ack's trip back).
package fanin

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// Config is one run.
type Config struct {
	HubBin   string        // path of lanebridge-hub
	Dir      string        // work directory (hub data, logs)
	Stores   int           // simulated stores
	Rate     float64       // records per second per store; 0: idle agents (connect, status, nothing else)
	Duration time.Duration // how long records are made (idle: how long connections are held)
	Pprof    string        // optional hub --pprof address
	// DrainTimeout bounds the wait for the last acks after the load (default 60 s).
	DrainTimeout time.Duration
	Log          io.Writer // progress lines; nil discards
}

// Result is what a run measured.
type Result struct {
	Stores          int
	Provision       time.Duration // enrolling the stores (CLI stores add loop)
	ConnectTime     time.Duration // all agents connected
	Made, Acked     int64
	P50, P99, Max   time.Duration // capture → ack received
	BacklogStart    float64       // mean unacknowledged records over the first third
	BacklogEnd      float64       // ... and over the last third
	BacklogMax      int64
	HubCPU          float64 // CPU-seconds over the load phase
	HubRSS, HubPeak int64   // bytes: at the end of the load phase, and the peak
	HubRSSIdle      int64   // bytes: before any agent connected
	Elapsed         time.Duration
	HubRecords      map[string]int64 // per store, from the hub's API (filled by Verify)
	Sent            map[string]int64 // per store, records made
	AckedBy         map[string]int64 // per store, applied_through acknowledged
	Drained         bool             // every record made was acknowledged before the drain timeout
	hubHTTP, token  string
	dataDir         string
}

// RaiseFDLimit lifts this process's open-file limit to its hard limit (each agent holds one
// socket; the hub is a child and inherits it).
func RaiseFDLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	r.Cur = r.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("setrlimit nofile %d: %w", r.Max, err)
	}
	return r.Cur, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func storeID(i int) string { return fmt.Sprintf("F%05d", i+1) }

// Run provisions the stores, starts the hub, runs the load and returns the figures; the hub is
// left running for Verify and stopped by the returned stop function.
func Run(ctx context.Context, cfg Config) (res *Result, stop func(), err error) {
	logf := func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", a...)
		}
	}
	if _, err := RaiseFDLimit(); err != nil {
		return nil, nil, err
	}
	data := filepath.Join(cfg.Dir, "hub")
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	mqttAddr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	res = &Result{Stores: cfg.Stores, hubHTTP: httpAddr, dataDir: data, Sent: map[string]int64{}, AckedBy: map[string]int64{}}
	// Provision: one `stores add` per store (the only enrolment path; its cost is reported).
	t0 := time.Now()
	passwords := make([]string, cfg.Stores)
	// The first one creates the database; then 4 at a time (SQLite serialises the writes,
	// the processes' start-up runs in parallel).
	enrol := func(i int) error {
		out, err := hubCLI(cfg.HubBin, "stores", "add", storeID(i), "--data", data, "--broker-url", "tcp://"+mqttAddr, "--create")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(out, "\n") {
			if p, ok := strings.CutPrefix(l, "  password: "); ok {
				passwords[i] = strings.TrimSpace(p)
			}
		}
		if passwords[i] == "" {
			return fmt.Errorf("stores add %s printed no password", storeID(i))
		}
		return nil
	}
	if err := enrol(0); err != nil {
		return nil, nil, err
	}
	next := atomic.Int64{}
	next.Store(1)
	perr := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Stores {
					perr <- nil
					return
				}
				if err := enrol(i); err != nil {
					next.Store(int64(cfg.Stores))
					perr <- err
					return
				}
			}
		}()
	}
	var provErr error
	for range 4 {
		provErr = cmp.Or(provErr, <-perr)
	}
	if provErr != nil {
		return nil, nil, provErr
	}
	res.Provision = time.Since(t0)
	logf("provisioned %d stores in %v (%.1f ms each)", cfg.Stores, res.Provision.Round(time.Millisecond), float64(res.Provision.Milliseconds())/float64(max(cfg.Stores, 1)))
	tok, err := hubCLI(cfg.HubBin, "tokens", "add", "--name", "fanin", "--role", "admin", "--data", data)
	if err != nil {
		return nil, nil, err
	}
	res.token, _, _ = strings.Cut(tok, "\n")

	args := []string{"serve", "--data", data, "--http", httpAddr, "--mqtt", mqttAddr}
	if cfg.Pprof != "" {
		args = append(args, "--pprof", cfg.Pprof)
	}
	logFile, err := os.Create(filepath.Join(cfg.Dir, "hub.log"))
	if err != nil {
		return nil, nil, err
	}
	hub := exec.Command(cfg.HubBin, args...)
	hub.Stdout, hub.Stderr = logFile, logFile
	if err := hub.Start(); err != nil {
		logFile.Close()
		return nil, nil, fmt.Errorf("start hub: %w", err)
	}
	stop = func() {
		_ = hub.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = hub.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = hub.Process.Kill()
			<-done
		}
		logFile.Close()
	}
	if err := waitHealthy(ctx, httpAddr); err != nil {
		stop()
		return nil, nil, err
	}
	pid := hub.Process.Pid
	res.HubRSSIdle = procRSS(pid)

	// Connect every agent.
	hist := newHist()
	agents := make([]*agent, cfg.Stores)
	t1 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Stores)
	sem := make(chan struct{}, 64)
	for i := range agents {
		agents[i] = newAgent(storeID(i), passwords[i], "tcp://"+mqttAddr, uint64(i+1), hist)
		wg.Add(1)
		sem <- struct{}{}
		go func(a *agent) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := a.connect(); err != nil {
				errs <- err
			}
		}(agents[i])
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, a := range agents {
			if a.c != nil {
				a.c.Disconnect(100)
			}
		}
	}()
	if err := <-errs; err != nil {
		stop()
		return nil, nil, err
	}
	res.ConnectTime = time.Since(t1)
	logf("connected %d agents in %v", cfg.Stores, res.ConnectTime.Round(time.Millisecond))

	// Load.
	cpu0 := procCPU(pid)
	loadCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	if cfg.Rate > 0 {
		for i, a := range agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Spread the stores' ticks over one period.
				period := time.Duration(float64(time.Second) / cfg.Rate)
				time.Sleep(period * time.Duration(i) / time.Duration(len(agents)))
				a.produce(loadCtx, period)
			}()
		}
	}
	var backlog []int64
	start := time.Now()
	tick := time.NewTicker(time.Second)
sample:
	for {
		select {
		case <-loadCtx.Done():
			break sample
		case <-tick.C:
		}
		var b int64
		for _, a := range agents {
			b += a.unacked()
		}
		backlog = append(backlog, b)
		res.BacklogMax = max(res.BacklogMax, b)
		rss := procRSS(pid)
		res.HubPeak = max(res.HubPeak, rss)
		if len(backlog)%10 == 0 {
			logf("t=%3.0fs backlog %d, acked %d, hub rss %.0f MiB, cpu %.1f s", time.Since(start).Seconds(), b, hist.count(), float64(rss)/(1<<20), procCPU(pid)-cpu0)
		}
	}
	tick.Stop()
	res.Elapsed = time.Since(start)
	wg.Wait()
	res.HubCPU = procCPU(pid) - cpu0
	res.HubRSS = procRSS(pid)
	res.HubPeak = max(res.HubPeak, res.HubRSS)
	// Drain: wait (bounded) for the last acks, so every record made is accounted for.
	deadline := time.Now().Add(cmp.Or(cfg.DrainTimeout, 60*time.Second))
	for time.Now().Before(deadline) {
		var b int64
		for _, a := range agents {
			b += a.unacked()
		}
		if b == 0 {
			res.Drained = true
			break
		}
		for _, a := range agents {
			a.publish() // what was made in the last tick, or must be resent
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, a := range agents {
		a.mu.Lock()
		res.Made += int64(a.seq)
		res.Sent[a.store] = int64(a.seq)
		res.AckedBy[a.store] = int64(a.acked)
		a.mu.Unlock()
	}
	res.Acked = hist.count()
	res.P50, res.P99, res.Max = hist.quantile(0.50), hist.quantile(0.99), hist.maxDur()
	if n := len(backlog); n >= 3 {
		res.BacklogStart, res.BacklogEnd = mean(backlog[:n/3]), mean(backlog[n-n/3:])
	}
	return res, stop, nil
}

func mean(xs []int64) float64 {
	var s float64
	for _, x := range xs {
		s += float64(x)
	}
	return s / float64(len(xs))
}

// Verify reads each store's record count from the hub's API into res.HubRecords and returns
// an error naming the stores whose count is wrong: after a full drain it must equal what was
// made; otherwise it must lie between what was acknowledged and what was made.
func (res *Result) Verify() error {
	res.HubRecords = map[string]int64{}
	var bad []string
	for i := range res.Stores {
		id := storeID(i)
		req, _ := http.NewRequest(http.MethodGet, "http://"+res.hubHTTP+"/api/v1/stores/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+res.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var si struct {
			Records int64 `json:"records"`
		}
		err = json.NewDecoder(resp.Body).Decode(&si)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("store %s: %s: %v", id, resp.Status, err)
		}
		res.HubRecords[id] = si.Records
		// Drained: exactly what was made. Not drained (the hub fell behind): nothing acknowledged
		// is missing and nothing is there twice (at most what was made).
		if res.Drained && si.Records != res.Sent[id] || si.Records < res.AckedBy[id] || si.Records > res.Sent[id] {
			bad = append(bad, fmt.Sprintf("%s: hub has %d, made %d, acknowledged %d", id, si.Records, res.Sent[id], res.AckedBy[id]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d stores differ: %s", len(bad), strings.Join(bad[:min(5, len(bad))], "; "))
	}
	return nil
}

// String prints the figures.
func (res *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stores %d, provision %v, connect %v\n", res.Stores, res.Provision.Round(time.Millisecond), res.ConnectTime.Round(time.Millisecond))
	fmt.Fprintf(&b, "load %v: made %d, acked %d (%.0f records/s)\n", res.Elapsed.Round(time.Second), res.Made, res.Acked, float64(res.Acked)/res.Elapsed.Seconds())
	fmt.Fprintf(&b, "capture→ack p50 %v, p99 %v, max %v\n", res.P50, res.P99, res.Max)
	fmt.Fprintf(&b, "backlog: mean first third %.0f, last third %.0f, max %d\n", res.BacklogStart, res.BacklogEnd, res.BacklogMax)
	if !res.Drained {
		fmt.Fprintf(&b, "NOT DRAINED: %d records still unacknowledged at the drain timeout\n", res.Made-res.Acked)
	}
	fmt.Fprintf(&b, "hub: cpu %.1f s (%.0f%% of one core), rss %.0f MiB (peak %.0f MiB; %.0f MiB before the agents connected, %.1f KiB per agent at the end)\n",
		res.HubCPU, 100*res.HubCPU/res.Elapsed.Seconds(), float64(res.HubRSS)/(1<<20), float64(res.HubPeak)/(1<<20),
		float64(res.HubRSSIdle)/(1<<20), float64(res.HubRSS-res.HubRSSIdle)/1024/float64(max(res.Stores, 1)))
	return b.String()
}

func hubCLI(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("lanebridge-hub %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func waitHealthy(ctx context.Context, addr string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("hub not healthy on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// procCPU is utime+stime of pid in seconds (/proc/PID/stat, USER_HZ 100).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return math.NaN()
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

// procRSS is VmRSS of pid in bytes.
func procRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// hist counts latencies in 100 µs buckets up to 120 s (beyond: the last bucket).
type hist struct {
	b   []atomic.Int64
	n   atomic.Int64
	max atomic.Int64
}

const bucket = 100 * time.Microsecond

func newHist() *hist { return &hist{b: make([]atomic.Int64, int(120*time.Second/bucket)+1)} }

func (h *hist) add(d time.Duration) {
	i := min(int(d/bucket), len(h.b)-1)
	h.b[max(i, 0)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *hist) count() int64          { return h.n.Load() }
func (h *hist) maxDur() time.Duration { return time.Duration(h.max.Load()) }
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(n)))
	var c int64
	for i := range h.b {
		if c += h.b[i].Load(); c >= want {
			return time.Duration(i+1) * bucket
		}
	}
	return time.Duration(len(h.b)) * bucket
}

// agent emulates one store's uplink (see the package comment).
type agent struct {
	store, password, broker, epoch string
	gen                            *sim.Generator
	hist                           *hist
	c                              mqtt.Client

	mu       sync.Mutex
	seq      uint64            // last made
	sent     uint64            // last published
	acked    uint64            // applied_through
	pending  map[uint64][]byte // made, not acked: wire bytes
	madeAt   map[uint64]time.Time
	inflight int
	wake     chan struct{}
}

const (
	maxInflight = 8
	batchSize   = 256
)

func newAgent(store, password, broker string, seed uint64, h *hist) *agent {
	return &agent{store: store, password: password, broker: broker, hist: h,
		epoch:   fmt.Sprintf("fanin-%s-%d", store, time.Now().UnixNano()),
		gen:     sim.New("T1", time.Now().UTC().Format("2006-01-02"), seed, nil, 1),
		pending: map[uint64][]byte{}, madeAt: map[uint64]time.Time{}, wake: make(chan struct{}, 1)}
}

func (a *agent) connect() error {
	o := mqtt.NewClientOptions().AddBroker(a.broker).
		SetClientID("lanebridge-agent-" + a.store).SetUsername(a.store).SetPassword(a.password).
		SetCleanSession(true).SetOrderMatters(false).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(30 * time.Second).SetKeepAlive(15 * time.Second).SetPingTimeout(5 * time.Second)
	a.c = mqtt.NewClient(o)
	if t := a.c.Connect(); !t.WaitTimeout(60*time.Second) || t.Error() != nil {
		return fmt.Errorf("agent %s connect: %v", a.store, cmpErr(t.Error(), "timed out"))
	}
	if t := a.c.Subscribe(protocol.AcksTopic(a.store), 1, a.onAck); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		return fmt.Errorf("agent %s subscribe: %v", a.store, cmpErr(t.Error(), "timed out"))
	}
	st, _ := json.Marshal(protocol.Status{V: protocol.Version, Store: a.store, State: "online", Version: "fanin", Clock: time.Now().UTC(), Epoch: a.epoch})
	if t := a.c.Publish(protocol.StatusTopic(a.store), 1, true, st); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		return fmt.Errorf("agent %s status: %v", a.store, cmpErr(t.Error(), "timed out"))
	}
	return nil
}

func cmpErr(err error, s string) error {
	if err != nil {
		return err
	}
	return errors.New(s)
}

func (a *agent) unacked() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(a.seq - a.acked)
}

// produce makes one record per period until ctx ends, and publishes what is unsent.
func (a *agent) produce(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.make()
		case <-a.wake:
		}
		a.publish()
	}
}

func (a *agent) make() {
	r := a.gen.Next()
	a.mu.Lock()
	a.seq++
	r.Store, r.Epoch, r.Seq, r.CapturedAt = a.store, a.epoch, a.seq, time.Now().UTC()
	r.Seal()
	w, _ := json.Marshal(r) // a generated record always encodes
	a.pending[a.seq], a.madeAt[a.seq] = w, r.CapturedAt
	a.mu.Unlock()
}

func (a *agent) publish() {
	for {
		a.mu.Lock()
		if a.inflight >= maxInflight || a.sent >= a.seq {
			a.mu.Unlock()
			return
		}
		var recs [][]byte
		first := a.sent + 1
		for s := first; s <= a.seq && len(recs) < batchSize; s++ {
			recs = append(recs, a.pending[s])
		}
		a.sent = first + uint64(len(recs)) - 1
		a.inflight++
		a.mu.Unlock()
		payload := protocol.AppendBatch(nil, protocol.BatchHeader{Store: a.store, Epoch: a.epoch}, recs)
		tok := a.c.Publish(protocol.RecordsTopic(a.store), 1, false, payload)
		go func() {
			tok.Wait()
			a.mu.Lock()
			a.inflight--
			if tok.Error() != nil { // resend from the first unacked on the next tick
				a.sent = a.acked
			}
			a.mu.Unlock()
			select {
			case a.wake <- struct{}{}:
			default:
			}
		}()
	}
}

func (a *agent) onAck(_ mqtt.Client, m mqtt.Message) {
	var ack protocol.Ack
	if err := json.Unmarshal(m.Payload(), &ack); err != nil || ack.Epoch != a.epoch {
		return
	}
	now := time.Now()
	a.mu.Lock()
	for s := a.acked + 1; s <= ack.AppliedThrough && s <= a.seq; s++ {
		a.hist.add(now.Sub(a.madeAt[s]))
		delete(a.madeAt, s)
		delete(a.pending, s)
	}
	a.acked = max(a.acked, min(ack.AppliedThrough, a.seq))
	if ack.ResendFrom > 0 && ack.ResendFrom-1 < a.sent {
		a.sent = max(ack.ResendFrom-1, a.acked)
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}
