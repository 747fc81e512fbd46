package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/procs"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/workflows"
)

// Sections 7, 8 and 9 weigh Cutover's orchestration against a raw Temporal
// activity chain with the same number of activities and timers, on the same
// dev server: one release alone (chain), many at once (concurrency), and an
// approve right after a worker is SIGKILLed (sigkill). Cutover runs on two
// cutover-worker processes, the raw chain on two processes of this benchmark
// (`bench -raw-worker`), each pair on its own task queue.

// leanPlan is a release on the memory providers whose only waits are the
// soak (its guard runs leanSoak) and the standby timer: leanIdeal in all.
const leanPlan = `providers:
  environment: {type: memory}
  traffic: {type: memory}
  analysis: {type: memory}
  migrations: {type: memory}
plan:
  - provision
  - migrate: {phase: expand}
  - validate
  - setWeight: 10
  - soak: {duration: 5s, interval: 1s}
  - setWeight: 50
  - analysis: {window: 1s}
  - promote
  - standby: {duration: 5s}
  - migrate: {phase: contract}
  - decommission
`

const (
	leanSoak    = 5 * time.Second
	leanStandby = 5 * time.Second
	leanIdeal   = leanSoak + leanStandby
	// leanActivities is the release's activities: Resolve, Preflight,
	// Provision, Migrate, Validate, SetWeight, Guard, SetWeight, Compare,
	// SetWeight (promote), Migrate, Decommission. The chain section checks
	// it against the first release's history.
	leanActivities = 12
)

// approvalPlan waits at an approval gate, for the sigkill section.
const approvalPlan = `providers:
  environment: {type: memory}
  traffic: {type: memory}
  analysis: {type: memory}
plan:
  - provision
  - validate
  - setWeight: 10
  - approval: {timeout: 5m}
  - promote
  - decommission
`

const (
	leanQueue = "bench-lean"
	rawQueue  = "bench-raw"
	rawName   = "RawChain"
	rawStep   = "RawStep"
)

// RawInput is the raw chain: activities, one of which sleeps for Sleep at
// SleepAt, and a timer of Timer before the last two.
type RawInput struct {
	Activities int           `json:"activities"`
	SleepAt    int           `json:"sleepAt"`
	Sleep      time.Duration `json:"sleep"`
	Timer      time.Duration `json:"timer"`
}

// RawChain is what a hand-written Temporal workflow of the same shape does.
func RawChain(ctx workflow.Context, in RawInput) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for i := range in.Activities {
		if i == in.Activities-2 {
			if err := workflow.Sleep(ctx, in.Timer); err != nil {
				return err
			}
		}
		d := time.Duration(0)
		if i == in.SleepAt {
			d = in.Sleep
		}
		if err := workflow.ExecuteActivity(ctx, rawStep, d).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// runRawWorker is `bench -raw-worker ADDRESS`: a worker for the raw chain
// until SIGTERM.
func runRawWorker(address string) error {
	c, err := client.Dial(client.Options{HostPort: address, Logger: nil})
	if err != nil {
		return err
	}
	defer c.Close()
	w := worker.New(c, rawQueue, worker.Options{StickyScheduleToStartTimeout: time.Second})
	w.RegisterWorkflowWithOptions(RawChain, workflow.RegisterOptions{Name: rawName})
	w.RegisterActivityWithOptions(func(ctx context.Context, d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}, activity.RegisterOptions{Name: rawStep})
	stop := make(chan any)
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		close(stop)
	}()
	return w.Run(stop)
}

// leanCluster is a dev server, two cutover workers and two raw workers.
type leanCluster struct {
	ps        *procs.Group
	dir       string
	address   string
	server    *procs.Proc
	workers   []*procs.Proc // cutover-worker
	raws      []*procs.Proc // bench -raw-worker
	workerBin string
	env       []string
	tc        client.Client
	rc        *releases.Client
}

func startLeanCluster(ctx context.Context, bins *binaries, ps *procs.Group) (*leanCluster, error) {
	c := &leanCluster{ps: ps}
	var err error
	if c.workerBin, err = bins.worker(); err != nil {
		return nil, err
	}
	temporalBin, err := bins.temporal()
	if err != nil {
		return nil, err
	}
	if c.dir, err = os.MkdirTemp("", "cutover-bench-lean-"); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	uiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	c.address = fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port), "--ui-port", fmt.Sprint(uiPort),
		"--db-filename", filepath.Join(c.dir, "temporal.db"), "--log-level", "warn", "--headless"}
	for _, sa := range []string{"CutoverApp=Keyword", "CutoverVersion=Keyword", "CutoverStage=Keyword", "CutoverTrafficPercent=Int", "CutoverOutcome=Keyword"} {
		args = append(args, "--search-attribute", sa)
	}
	if c.server, err = ps.Start("temporal dev server", nil, temporalBin, args...); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 60*time.Second, "the Temporal dev server", c.server, func() bool {
		tc, err := client.Dial(client.Options{HostPort: c.address})
		if err != nil {
			return false
		}
		defer tc.Close()
		_, err = tc.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err == nil
	}); err != nil {
		return nil, err
	}
	c.env = []string{"TEMPORAL_ADDRESS=" + c.address, "TEMPORAL_NAMESPACE=default", "CUTOVER_TASK_QUEUE=" + leanQueue, "CUTOVER_DEV=true"}
	for range 2 {
		if err := c.addWorker(ctx); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for i := range 2 {
		p, err := ps.Start(fmt.Sprintf("raw worker %d", i), nil, self, "-raw-worker", c.address)
		if err != nil {
			return nil, err
		}
		c.raws = append(c.raws, p)
	}
	tcfg := temporalconn.Config{Address: c.address, Namespace: "default", TaskQueue: leanQueue}
	if c.tc, err = temporalconn.Dial(ctx, tcfg, nil, nil); err != nil {
		return nil, err
	}
	c.rc = releases.New(c.tc, tcfg)
	return c, nil
}

func (c *leanCluster) addWorker(ctx context.Context) error {
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	w, err := c.ps.Start(fmt.Sprintf("cutover-worker %d", len(c.workers)), append(append([]string{}, c.env...), "CUTOVER_HTTP_ADDR="+httpAddr), c.workerBin)
	if err != nil {
		return err
	}
	c.workers = append(c.workers, w)
	return waitFor(ctx, 30*time.Second, "the worker's /healthz", w, func() bool { return answers2xx("http://" + httpAddr + "/healthz") })
}

func (c *leanCluster) close() {
	if c.tc != nil {
		c.tc.Close()
	}
	for _, p := range append(slices.Clone(c.raws), c.workers...) {
		p.Stop(35 * time.Second)
	}
	c.server.Stop(10 * time.Second)
	_ = os.RemoveAll(c.dir)
}

// wfRun is one workflow: its ID and run ID, and the server's start and close.
type wfRun struct {
	id, runID    string
	start, close time.Time
	events       int
}

func (r wfRun) took() time.Duration { return r.close.Sub(r.start) }

// startRelease starts one release of app with plan.
func (c *leanCluster) startRelease(ctx context.Context, app, plan string) (wfRun, error) {
	rel, err := spec.Parse([]byte(fmt.Sprintf("app: %s\nversion: 2.0.0\n", app)+plan), nil)
	if err != nil {
		return wfRun{}, err
	}
	// Known, so that Start asks no list query for it, as the raw chain does not.
	rel.PreviousVersion = "1.0.0"
	st, err := c.rc.Start(ctx, rel, releases.Origin{By: "bench", Via: "api"})
	if err != nil {
		return wfRun{}, err
	}
	return wfRun{id: st.WorkflowID, runID: st.RunID}, nil
}

func (c *leanCluster) startRaw(ctx context.Context, id string) (wfRun, error) {
	wr, err := c.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: rawQueue}, rawName,
		RawInput{Activities: leanActivities, SleepAt: 6, Sleep: leanSoak, Timer: leanStandby})
	if err != nil {
		return wfRun{}, err
	}
	return wfRun{id: id, runID: wr.GetRunID()}, nil
}

// finish waits for the run to close and reads its times and event count.
func (c *leanCluster) finish(ctx context.Context, r wfRun, events bool) (wfRun, error) {
	if err := c.tc.GetWorkflow(ctx, r.id, r.runID).Get(ctx, nil); err != nil {
		return r, fmt.Errorf("%s: %w", r.id, err)
	}
	d, err := c.tc.DescribeWorkflowExecution(ctx, r.id, r.runID)
	if err != nil {
		return r, err
	}
	info := d.GetWorkflowExecutionInfo()
	if info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		return r, fmt.Errorf("%s ended %s", r.id, info.GetStatus())
	}
	r.start, r.close = info.GetStartTime().AsTime(), info.GetCloseTime().AsTime()
	r.events = int(info.GetHistoryLength())
	if events {
		if st, err := c.rc.Status(ctx, strings.TrimPrefix(r.id, "release/")); err == nil && st.Outcome != workflows.OutcomePromoted {
			return r, fmt.Errorf("%s ended %s (%s)", r.id, st.Outcome, st.Reason)
		}
	}
	return r, nil
}

// activitiesOf counts the activities a run scheduled.
func (c *leanCluster) activitiesOf(ctx context.Context, r wfRun) (int, error) {
	it := c.tc.GetWorkflowHistory(ctx, r.id, r.runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0, err
		}
		if ev.GetEventType() == enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
			n++
		}
	}
	return n, nil
}

// benchChain runs one Cutover release and one raw chain at a time, in turns.
func benchChain(ctx context.Context, cfg config, c *leanCluster) (string, error) {
	var cut, raw []wfRun
	for i := range cfg.chainRuns {
		r, err := c.startRelease(ctx, "chain", leanPlan)
		if err == nil {
			r, err = c.finish(ctx, r, true)
		}
		if err != nil {
			return "", err
		}
		if i == 0 {
			n, err := c.activitiesOf(ctx, r)
			if err != nil {
				return "", err
			}
			if n != leanActivities {
				return "", fmt.Errorf("the release ran %d activities; the raw chain runs %d: update leanActivities", n, leanActivities)
			}
		}
		cut = append(cut, r)
		w, err := c.startRaw(ctx, fmt.Sprintf("raw-chain-%d", i))
		if err == nil {
			w, err = c.finish(ctx, w, false)
		}
		if err != nil {
			return "", err
		}
		raw = append(raw, w)
		logf("chain %d/%d: cutover %s (%d events), raw %s (%d events)", i+1, cfg.chainRuns, fd(r.took()), r.events, fd(w.took()), w.events)
	}
	over := func(rs []wfRun) []time.Duration {
		var d []time.Duration
		for _, r := range rs {
			d = append(d, r.took()-leanIdeal)
		}
		slices.Sort(d)
		return d
	}
	co, ro := over(cut), over(raw)
	var b strings.Builder
	b.WriteString("## 7. Overhead vs a raw Temporal chain\n\n")
	fmt.Fprintf(&b, "Reproduce: `make build temporal && go run ./bench -sections chain -chain-runs %d`\n\n", cfg.chainRuns)
	fmt.Fprintf(&b, "One dev server; two `cutover-worker` processes run a release on the memory providers (no delays; "+
		"provision, migrate, validate, setWeight 10, soak 5s, setWeight 50, analysis, promote, standby 5s, migrate, decommission: "+
		"%d activities, of which the soak's guard lasts 5s, and one 5s timer), and two worker processes of the benchmark run a raw "+
		"chain of the same shape (%d activities in sequence, one sleeping 5s, one 5s timer), one run at a time, in turns. "+
		"*Overhead* is the workflow's close time minus its start time (as the server recorded them) minus the 10s of waits.\n\n",
		leanActivities, leanActivities)
	b.WriteString("| | runs | overhead p50 | overhead p90 | history events |\n|---|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| Cutover release | %d | %s | %s | %d |\n", len(cut), fd(percentile(co, 50)), fd(percentile(co, 90)), cut[0].events)
	fmt.Fprintf(&b, "| raw chain | %d | %s | %s | %d |\n", len(raw), fd(percentile(ro, 50)), fd(percentile(ro, 90)), raw[0].events)
	fmt.Fprintf(&b, "\nCutover / raw: overhead p50 %.2f×, p90 %.2f× (target: at most 1.2×).\n\n",
		float64(percentile(co, 50))/float64(percentile(ro, 50)), float64(percentile(co, 90))/float64(percentile(ro, 90)))
	return b.String(), nil
}

// rssSampler keeps the largest resident set of each process it watches, and
// the CPU time each kind used from its start to its end.
type rssSampler struct {
	mu    sync.Mutex
	peak  map[string]int64 // KiB
	procs map[string][]*procs.Proc
	cpu0  map[string]time.Duration
	stop  chan struct{}
	done  chan struct{}
}

func sampleRSS(byName map[string][]*procs.Proc) *rssSampler {
	s := &rssSampler{peak: map[string]int64{}, procs: byName, cpu0: cpuOf(byName), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			for name, ps := range byName {
				for _, p := range ps {
					if kb := procStatusKiB(p.Pid(), "VmRSS"); kb > 0 {
						s.mu.Lock()
						s.peak[name] = max(s.peak[name], kb)
						s.mu.Unlock()
					}
				}
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// end stops sampling and returns the peaks and the CPU time used.
func (s *rssSampler) end() (map[string]int64, map[string]time.Duration) {
	close(s.stop)
	<-s.done
	cpu := cpuOf(s.procs)
	for k, v := range s.cpu0 {
		cpu[k] -= v
	}
	return s.peak, cpu
}

// cpuOf is the user and system CPU time of each kind's processes so far.
func cpuOf(byName map[string][]*procs.Proc) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, ps := range byName {
		for _, p := range ps {
			out[name] += cpuTimeOf(p.Pid())
		}
	}
	return out
}

// procStatusKiB is a field of a process's /proc status in KiB (VmRSS, the
// resident set; VmHWM, its peak), 0 when unknown.
func procStatusKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// level is one concurrency level of one kind of workflow.
type level struct {
	kind     string
	n        int
	makespan time.Duration
	p50, p99 time.Duration
	rss      map[string]int64
	cpu      map[string]time.Duration
	// events is the mean history length; timeouts the workflow task
	// timeouts of all runs, and timedOut how many runs had any.
	events             float64
	timeouts, timedOut int
}

// runLevel starts n workflows at once (start calls 50 at a time) and waits
// for them all.
func (c *leanCluster) runLevel(ctx context.Context, kind string, n int) (level, error) {
	lv := level{kind: kind, n: n}
	sampler := sampleRSS(map[string][]*procs.Proc{"cutover workers": c.workers, "raw workers": c.raws, "server": {c.server}})
	runs := make([]wfRun, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			var r wfRun
			var err error
			if kind == "cutover" {
				r, err = c.startRelease(ctx, fmt.Sprintf("load-%d", i), leanPlan)
			} else {
				r, err = c.startRaw(ctx, fmt.Sprintf("raw-load-%d", i))
			}
			<-sem
			if err == nil {
				r, err = c.finish(ctx, r, false)
			}
			runs[i], errs[i] = r, err
		})
	}
	wg.Wait()
	lv.rss, lv.cpu = sampler.end()
	if err := errors.Join(errs...); err != nil {
		return lv, err
	}
	for _, r := range runs {
		lv.events += float64(r.events) / float64(n)
		t, err := c.taskTimeouts(ctx, r)
		if err != nil {
			return lv, err
		}
		lv.timeouts += len(t)
		if len(t) > 0 {
			lv.timedOut++
		}
	}
	first, last := runs[0].start, runs[0].close
	var took []time.Duration
	for _, r := range runs {
		if r.start.Before(first) {
			first = r.start
		}
		if r.close.After(last) {
			last = r.close
		}
		took = append(took, r.took())
	}
	slices.Sort(took)
	lv.makespan, lv.p50, lv.p99 = last.Sub(first), percentile(took, 50), percentile(took, 99)
	return lv, nil
}

func benchConcurrency(ctx context.Context, cfg config, c *leanCluster) (string, error) {
	var rows []level
	for _, n := range cfg.levels {
		for _, kind := range []string{"cutover", "raw"} {
			logf("concurrency: %d %s workflows at once", n, kind)
			lv, err := c.runLevel(ctx, kind, n)
			if err != nil {
				return "", fmt.Errorf("%d %s: %w", n, kind, err)
			}
			logf("  makespan %s, p50 %s, p99 %s, peak RSS %v KiB, CPU %v, %.1f events, %d task timeouts in %d runs",
				fd(lv.makespan), fd(lv.p50), fd(lv.p99), lv.rss, lv.cpu, lv.events, lv.timeouts, lv.timedOut)
			rows = append(rows, lv)
		}
	}
	var levels []string
	for _, n := range cfg.levels {
		levels = append(levels, strconv.Itoa(n))
	}
	var b strings.Builder
	b.WriteString("## 8. Concurrency\n\n")
	fmt.Fprintf(&b, "Reproduce: `make build temporal && go run ./bench -sections concurrency -levels %s`\n\n", strings.Join(levels, ","))
	fmt.Fprintf(&b, "The cluster of section 7: n releases of n apps (section 7's plan; ideally %s each) started at once "+
		"(50 start calls in flight), then n raw chains; each row waits for all its workflows to end. *Makespan* runs from "+
		"the first start to the last close, *release time* from a workflow's start to its close, as the server recorded them. "+
		"*Peak RSS* is the largest resident set seen (every 0.5s) of either worker of the kind that ran, and of the dev server; "+
		"*CPU* the CPU time the two workers and the server used during the row; *events* the mean history length; "+
		"*task timeouts* the workflow task timeouts in all histories (a sticky queue's 1s schedule-to-start, or a task "+
		"started but not completed in 10s), with how many runs had any.\n\n", fd(leanIdeal))
	b.WriteString("| n | workflow | makespan | p50 | p99 | ideal | peak worker RSS | peak server RSS | worker CPU | server CPU | events | task timeouts (runs) |\n" +
		"|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, lv := range rows {
		wk, wcpu := lv.rss["cutover workers"], lv.cpu["cutover workers"]
		if lv.kind == "raw" {
			wk, wcpu = lv.rss["raw workers"], lv.cpu["raw workers"]
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %d MB | %d MB | %s | %s | %.0f | %d (%d) |\n", lv.n, lv.kind, fd(lv.makespan), fd(lv.p50), fd(lv.p99),
			fd(leanIdeal), wk/1024, lv.rss["server"]/1024, fd(wcpu), fd(lv.cpu["server"]), lv.events, lv.timeouts, lv.timedOut)
	}
	b.WriteString("\nCutover's makespan over the raw chain's at the same n: ")
	for i := 0; i+1 < len(rows); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d: %.2f×", rows[i].n, float64(rows[i].makespan)/float64(rows[i+1].makespan))
	}
	b.WriteString(" (target at 1,000: at most 1.2×; worker RSS at most 300 MB).\n\n")
	return b.String(), nil
}

// benchSigkill measures an approve sent right after the worker that ran the
// release last (the one whose sticky queue holds its next task) is SIGKILLed:
// -kills runs for each of -kill-gaps.
func benchSigkill(ctx context.Context, cfg config, c *leanCluster) (string, error) {
	type row struct {
		gap  time.Duration
		took []time.Duration
		why  []string
	}
	var rows []row
	for g, gap := range cfg.killGaps {
		rw := row{gap: gap}
		for i := range cfg.kills {
			d, why, err := c.approveAfterKill(ctx, fmt.Sprintf("kill-%d-%d", g, i), gap)
			if err != nil {
				return "", err
			}
			logf("sigkill %d/%d, gap %s: approve answered %s; workflow task timeouts: %s", i+1, cfg.kills, gap, fd(d), why)
			rw.took, rw.why = append(rw.took, d), append(rw.why, why)
		}
		rows = append(rows, rw)
	}
	var gaps []string
	for _, g := range cfg.killGaps {
		gaps = append(gaps, g.String())
	}
	var b strings.Builder
	b.WriteString("## 9. Approve after a worker SIGKILL\n\n")
	fmt.Fprintf(&b, "Reproduce: `make build temporal && go run ./bench -sections sigkill -kills %d -kill-gaps %s`\n\n", cfg.kills, strings.Join(gaps, ","))
	b.WriteString("The cluster of section 7 (workers with the default `--sticky-schedule-to-start-timeout` of 1s). A release " +
		"waits at its approval gate; the worker that ran its last workflow task (named in the history), whose sticky queue its next " +
		"task goes to, is SIGKILLed, and once it has exited the `approve` update is sent after the *gap*; *answered* is the time " +
		"until the update returns. A new worker replaces the dead one before the next run. The task timeouts are those the " +
		"history shows: `scheduletostart` is the sticky queue's 1s passing with no poller, after which any worker takes the task. " +
		"An approve sent in the milliseconds between the signal and the process's exit, while its sockets are still open, can be " +
		"handed to the dying worker's sticky poll: the task then waits out its start-to-close timeout (10s, seen as `starttoclose`).\n\n")
	b.WriteString("| gap | runs | p50 | max | min | each run (its workflow task timeouts) |\n|---:|---:|---:|---:|---:|---|\n")
	for _, rw := range rows {
		sorted := slices.Clone(rw.took)
		slices.Sort(sorted)
		var each []string
		for i, d := range rw.took {
			e := fd(d)
			if rw.why[i] != "" {
				e += " (" + rw.why[i] + ")"
			}
			each = append(each, e)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", rw.gap, len(rw.took), fd(percentile(sorted, 50)), fd(sorted[len(sorted)-1]), fd(sorted[0]), strings.Join(each, ", "))
	}
	b.WriteString("\nTarget: at most 1.5s.\n\n")
	return b.String(), nil
}

// approveAfterKill starts a release of app, SIGKILLs the worker that holds its
// sticky queue once it waits for approval, waits gap after the worker has
// exited, approves, and returns how long the approve took to answer and the
// workflow task timeouts the history shows.
func (c *leanCluster) approveAfterKill(ctx context.Context, app string, gap time.Duration) (time.Duration, string, error) {
	r, err := c.startRelease(ctx, app, approvalPlan)
	if err != nil {
		return 0, "", err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := c.rc.Status(ctx, app)
		if err == nil && st.Waiting == "approval" {
			break
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("%s never reached its approval gate", app)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid, err := c.lastWorkerPid(ctx, r)
	if err != nil {
		return 0, "", err
	}
	k := slices.IndexFunc(c.workers, func(p *procs.Proc) bool { return p.Pid() == pid })
	if k < 0 {
		return 0, "", fmt.Errorf("no worker of pid %d ran %s", pid, app)
	}
	c.workers[k].Kill() // returns once the process has exited
	time.Sleep(gap)
	begin := time.Now()
	if _, err := c.rc.Decide(ctx, app, workflows.UpdateApprove, workflows.Decision{By: "bench-approver", Reason: "bench", Via: "api"}, ""); err != nil {
		return 0, "", err
	}
	took := time.Since(begin)
	c.workers = slices.Delete(c.workers, k, k+1)
	if err := c.addWorker(ctx); err != nil {
		return 0, "", err
	}
	if _, err := c.finish(ctx, r, true); err != nil {
		return 0, "", err
	}
	timeouts, err := c.taskTimeouts(ctx, r)
	if err != nil {
		return 0, "", err
	}
	return took, strings.Join(timeouts, "+"), nil
}

// lastWorkerPid is the process ID of the worker that completed the run's last
// workflow task: the SDK's identity is "pid@host@".
func (c *leanCluster) lastWorkerPid(ctx context.Context, r wfRun) (int, error) {
	it := c.tc.GetWorkflowHistory(ctx, r.id, r.runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	identity := ""
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0, err
		}
		if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			identity = a.GetIdentity()
		}
	}
	pid, err := strconv.Atoi(strings.SplitN(identity, "@", 2)[0])
	if err != nil {
		return 0, fmt.Errorf("worker identity %q names no pid", identity)
	}
	return pid, nil
}

// benchLean runs the sections of this file that cfg asks for on one cluster.
func benchLean(ctx context.Context, cfg config, bins *binaries, ps *procs.Group, chain, concurrency, sigkill bool) (string, error) {
	c, err := startLeanCluster(ctx, bins, ps)
	if err != nil {
		return "", err
	}
	defer c.close()
	var b strings.Builder
	for _, s := range []struct {
		on  bool
		run func(context.Context, config, *leanCluster) (string, error)
	}{{chain, benchChain}, {concurrency, benchConcurrency}, {sigkill, benchSigkill}} {
		if !s.on {
			continue
		}
		part, err := s.run(ctx, cfg, c)
		if err != nil {
			return "", err
		}
		b.WriteString(part)
	}
	return b.String(), nil
}

// taskTimeouts lists the run's workflow task timeouts by type.
func (c *leanCluster) taskTimeouts(ctx context.Context, r wfRun) ([]string, error) {
	it := c.tc.GetWorkflowHistory(ctx, r.id, r.runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []string
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		if a := ev.GetWorkflowTaskTimedOutEventAttributes(); a != nil {
			out = append(out, strings.ToLower(strings.TrimPrefix(a.GetTimeoutType().String(), "TIMEOUT_TYPE_")))
		}
	}
	return out, nil
}
