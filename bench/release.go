package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/cutoverhq/cutover/procs"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/workflows"
)

// Sections 2 and 3 run real releases of the demo app through a real router:
// a Temporal dev server, one worker, one `cutover router` process, blue started
// by `cutover local start`, as tests/zero_downtime_test.go does.

const benchApp = "bench"

// providersYAML is the local environment of tests/zero_downtime_test.go's
// localSpec: %[1]s the demo app, %[2]s the state directory, %[3]s the router's
// admin address.
const providersYAML = `providers:
  environment:
    type: local
    settings:
      command: [%[1]q]
      instances: 2
      stateDir: %[2]q
      stopGrace: 5s
      router: {admin: "http://%[3]s", token: {env: CUTOVER_ROUTER_TOKEN}}
  traffic:
    type: local
    settings: {router: {admin: "http://%[3]s", token: {env: CUTOVER_ROUTER_TOKEN}}}
  analysis:
    type: local
    settings: {router: {admin: "http://%[3]s", token: {env: CUTOVER_ROUTER_TOKEN}}}
`

// abortPlan holds at 10% for far longer than a run: every run is aborted there.
const abortPlan = `plan:
  - provision
  - validate: {smoke: [/]}
  - setWeight: 10
  - soak: {duration: 10m}
  - setWeight: 50
  - soak: {duration: 4s, interval: 1s}
  - analysis: {window: 1s}
  - approval: {timeout: 5m}
  - promote
  - standby: {duration: 2s}
  - decommission
`

// abortSoakStep is the 1-based step of the 10% soak in abortPlan.
const abortSoakStep = 4

// promotionPlan is the demo's plan with short waits; its soaks and standby add
// up to promotionTimers.
const promotionPlan = `plan:
  - provision
  - validate: {smoke: [/]}
  - setWeight: 10
  - soak: {duration: 5s, interval: 1s}
  - setWeight: 50
  - soak: {duration: 5s, interval: 1s}
  - analysis: {window: 1s}
  - approval: {timeout: 5m}
  - promote
  - standby: {duration: 5s}
  - decommission
`

const promotionTimers = 15 * time.Second

type cluster struct {
	ps       *procs.Group
	cli      string
	demo     string
	dir      string
	stateDir string
	admin    string
	listen   string   // the router's user address
	env      []string // for the cutover CLI
	worker   *procs.Proc
	router   *router.Client
	tc       client.Client
	rc       *releases.Client
	blueSpec string
}

func (c *cluster) spec(name, version, plan string) (string, error) {
	body := fmt.Sprintf("app: %s\nversion: %s\n", benchApp, version) +
		fmt.Sprintf(providersYAML, c.demo, c.stateDir, c.admin) + plan
	path := filepath.Join(c.dir, name+"-"+version+".yaml")
	return path, os.WriteFile(path, []byte(body), 0o644)
}

func benchReleases(ctx context.Context, cfg config, bins *binaries, ps *procs.Group, doAbort, doPromotion, doDetection bool) (report string, err error) {
	c := &cluster{ps: ps}
	if c.cli, err = bins.cutover(); err != nil {
		return "", err
	}
	if c.demo, err = bins.demoApp(); err != nil {
		return "", err
	}
	workerBin, err := bins.worker()
	if err != nil {
		return "", err
	}
	temporalBin, err := bins.temporal()
	if err != nil {
		return "", err
	}
	if c.dir, err = os.MkdirTemp("", "cutover-bench-releases-"); err != nil {
		return "", err
	}
	defer os.RemoveAll(c.dir)
	c.stateDir = filepath.Join(c.dir, "state")

	// The Temporal dev server, as tests/harness StartTemporal.
	logf("starting a Temporal dev server")
	port, err := freePort()
	if err != nil {
		return "", err
	}
	uiPort, err := freePort()
	if err != nil {
		return "", err
	}
	address := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port), "--ui-port", fmt.Sprint(uiPort),
		"--db-filename", filepath.Join(c.dir, "temporal.db"), "--log-level", "warn", "--headless"}
	for _, sa := range []string{"CutoverApp=Keyword", "CutoverVersion=Keyword", "CutoverStage=Keyword", "CutoverTrafficPercent=Int", "CutoverOutcome=Keyword"} {
		args = append(args, "--search-attribute", sa)
	}
	srv, err := ps.Start("temporal dev server", nil, temporalBin, args...)
	if err != nil {
		return "", err
	}
	if err := waitFor(ctx, 60*time.Second, "the Temporal dev server", srv, func() bool {
		tc, err := client.Dial(client.Options{HostPort: address})
		if err != nil {
			return false
		}
		defer tc.Close()
		_, err = tc.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err == nil
	}); err != nil {
		return "", err
	}
	tcfg := temporalconn.Config{Address: address, Namespace: "default", TaskQueue: "bench"}
	c.env = []string{"TEMPORAL_ADDRESS=" + address, "TEMPORAL_NAMESPACE=default", "CUTOVER_TASK_QUEUE=bench", "CUTOVER_DEV=true", "CUTOVER_ROUTER_TOKEN=" + benchToken}

	// One worker.
	httpAddr, err := freeAddr()
	if err != nil {
		return "", err
	}
	c.worker, err = ps.Start("cutover-worker", append(append([]string{}, c.env...), "CUTOVER_HTTP_ADDR="+httpAddr), workerBin)
	if err != nil {
		return "", err
	}
	if err := waitFor(ctx, 30*time.Second, "the worker's /healthz", c.worker, func() bool { return answers2xx("http://" + httpAddr + "/healthz") }); err != nil {
		return "", err
	}

	// The router.
	if c.listen, err = freeAddr(); err != nil {
		return "", err
	}
	if c.admin, err = freeAddr(); err != nil {
		return "", err
	}
	rp, err := ps.Start("cutover router", []string{"CUTOVER_ROUTER_TOKEN=" + benchToken}, c.cli,
		"router", "--app", benchApp, "--listen", c.listen, "--admin", c.admin, "--health-interval", "200ms")
	if err != nil {
		return "", err
	}
	c.router = router.NewClient("http://"+c.admin, benchToken)
	if err := waitFor(ctx, 10*time.Second, "the router's admin API", rp, func() bool {
		_, err := c.router.State(ctx)
		return err == nil
	}); err != nil {
		return "", err
	}

	if c.tc, err = temporalconn.Dial(ctx, tcfg, nil, nil); err != nil {
		return "", err
	}
	defer c.tc.Close()
	c.rc = releases.New(c.tc, tcfg)

	// Blue, by `cutover local start`; every instance any release starts is
	// stopped by `cutover local stop` at the end (after the worker, so that no
	// release starts more).
	if c.blueSpec, err = c.spec("abort", "1.0.0", abortPlan); err != nil {
		return "", err
	}
	defer c.cleanup()
	if out, code, err := run(ctx, time.Minute, c.env, c.cli, "local", "start", "-f", c.blueSpec, "--version", "1.0.0"); err != nil || code != 0 {
		return "", fmt.Errorf("cutover local start: exit %d %v: %s", code, err, out)
	}
	if err := waitFor(ctx, 20*time.Second, "blue to be healthy", rp, func() bool {
		st, err := c.router.State(ctx)
		return err == nil && healthyCount(st.Pools[router.Blue]) == 2
	}); err != nil {
		return "", err
	}

	var b strings.Builder
	if doAbort {
		logf("== 2. abort latency (%d releases)", cfg.aborts)
		s, err := c.benchAbort(ctx, cfg)
		if err != nil {
			return "", fmt.Errorf("abort latency: %w", err)
		}
		b.WriteString(s)
	}
	if doPromotion {
		logf("== 3. promotion wall time (%d releases)", cfg.promotions)
		s, err := c.benchPromotion(ctx, cfg)
		if err != nil {
			return "", fmt.Errorf("promotion: %w", err)
		}
		b.WriteString(s)
	}
	if doDetection {
		logf("== 4. detection time (%d releases)", cfg.detections)
		s, err := c.benchDetection(ctx, cfg)
		if err != nil {
			return "", fmt.Errorf("detection: %w", err)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// cleanup ends a release left running by an error, stops the worker, then
// every local instance.
func (c *cluster) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	if st, err := c.status(ctx); err == nil && st.Outcome == workflows.OutcomeRunning {
		_ = c.tc.TerminateWorkflow(ctx, spec.WorkflowID(benchApp), "", "bench cleanup")
	}
	c.worker.Stop(35 * time.Second)
	logf("cleanup: worker stopped after %s", time.Since(begin).Round(time.Millisecond))
	defer func() { logf("cleanup: local instances stopped after %s", time.Since(begin).Round(time.Millisecond)) }()
	if out, code, err := run(ctx, time.Minute, c.env, c.cli, "local", "stop", "-f", c.blueSpec); err != nil || code != 0 {
		logf("cutover local stop: exit %d %v: %s", code, err, out)
	}
}

// status is releases.Client.Status bounded in time. Status can block until the
// next release ends: when that release starts between its
// DescribeWorkflowExecution (the last run, closed) and its GetWorkflow(id, ""),
// which follows the newest run and waits for its result.
func (c *cluster) status(ctx context.Context) (workflows.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return c.rc.Status(ctx, benchApp)
}

// waitStatus waits until the release process has started the workflow, then
// polls the status query every 10ms until cond holds.
func (c *cluster) waitStatus(ctx context.Context, within time.Duration, what string, rel *procs.Proc, cond func(workflows.Status) bool) (workflows.Status, error) {
	deadline := time.Now().Add(within)
	var st workflows.Status
	if rel != nil {
		if err := waitFor(ctx, within, "cutover release to start the workflow", rel, func() bool {
			return strings.Contains(rel.Output(), "started release of")
		}); err != nil {
			return st, err
		}
	}
	for {
		s, err := c.status(ctx)
		if err == nil {
			st = s
			if cond(st) {
				return st, nil
			}
		}
		if rel != nil && rel.Exited() {
			return st, fmt.Errorf("%s exited while waiting for %s; output:\n%s", rel.Name, what, tail(rel.Output(), 3000))
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("timed out after %s waiting for %s; last status: version %s stage %s step %d weights %s outcome %s reason %q; worker output:\n%s",
				within, what, st.Version, st.Stage, st.Step, st.Weights, st.Outcome, st.Reason, tail(c.worker.Output(), 4000))
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

type abortSample struct {
	weightZero time.Duration // abort started → the router reports green weight 0
	returned   time.Duration // abort started → the command returned
	polls      int           // admin API polls between abort start and weight 0
	ended      time.Duration // abort started → the release ended (cutover release --wait exited)
	reached    time.Duration // abort started → the workflow recorded the abort (its workflow task's time)
	slowest    string        // the rollback's longest step and its duration
}

func (c *cluster) benchAbort(ctx context.Context, cfg config) (string, error) {
	var samples []abortSample
	for i := 1; i <= cfg.aborts; i++ {
		s, err := c.abortOnce(ctx, i)
		if err != nil {
			return "", fmt.Errorf("run %d: %w", i, err)
		}
		logf("abort %d/%d: workflow got it after %s, router at green 0 after %s, abort returned after %s, release ended after %s (%d admin polls; longest rollback step: %s)",
			i, cfg.aborts, fd(s.reached), fd(s.weightZero), fd(s.returned), fd(s.ended), s.polls, s.slowest)
		samples = append(samples, s)
	}
	return abortReport(cfg, samples), nil
}

func (c *cluster) abortOnce(ctx context.Context, i int) (abortSample, error) {
	var s abortSample
	spec, err := c.spec("abort", "2.0.0", abortPlan)
	if err != nil {
		return s, err
	}
	rel, err := c.ps.Start(fmt.Sprintf("cutover release (abort run %d)", i), c.env, c.cli, "release", "-f", spec, "--wait", "--by", "bench")
	if err != nil {
		return s, err
	}
	defer rel.Stop(10 * time.Second)
	if _, err := c.waitStatus(ctx, 2*time.Minute, "the 10% soak", rel, func(st workflows.Status) bool {
		if st.Outcome != workflows.OutcomeRunning || st.Stage != "soak" || st.Step != abortSoakStep || !stepRunning(st, abortSoakStep) {
			return false
		}
		rs, err := c.router.State(ctx)
		return err == nil && rs.Weights.Green == 10
	}); err != nil {
		return s, err
	}

	// Poll the router's admin state every millisecond from before the abort.
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	sawTen := make(chan struct{})
	type zero struct {
		at    time.Time
		polls int
	}
	zeroc := make(chan zero, 1)
	var t0 time.Time
	t0set := make(chan struct{})
	go func() {
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		seen, polls := false, 0
		for {
			st, err := c.router.State(pollCtx)
			at := time.Now()
			if err == nil {
				select {
				case <-t0set:
					polls++
				default:
				}
				if st.Weights.Green == 10 && !seen {
					seen = true
					close(sawTen)
				}
				if seen && st.Weights.Green == 0 {
					zeroc <- zero{at, polls}
					return
				}
			}
			select {
			case <-pollCtx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	select {
	case <-sawTen:
	case <-time.After(5 * time.Second):
		return s, fmt.Errorf("the admin poller never saw green at 10%%")
	}

	t0 = time.Now()
	close(t0set)
	out, code, err := run(ctx, time.Minute, c.env, c.cli, "abort", benchApp, "--reason", "bench")
	s.returned = time.Since(t0)
	if err != nil || code != 0 {
		return s, fmt.Errorf("cutover abort: exit %d %v: %s", code, err, out)
	}
	if !strings.Contains(out, "all traffic is back on blue") {
		return s, fmt.Errorf("cutover abort answered %q", strings.TrimSpace(out))
	}
	select {
	case z := <-zeroc:
		s.weightZero, s.polls = z.at.Sub(t0), z.polls
	case <-time.After(30 * time.Second):
		return s, fmt.Errorf("the router never showed green at 0 after the abort returned")
	}
	stopPoll()

	code, err = waitExit(ctx, rel, 2*time.Minute)
	if err != nil {
		return s, err
	}
	s.ended = rel.Ended().Sub(t0)
	if code != 4 {
		return s, fmt.Errorf("cutover release --wait exited %d, want 4 (aborted); output:\n%s", code, tail(rel.Output(), 3000))
	}
	st, err := c.status(ctx)
	if err != nil {
		return s, err
	}
	if st.Outcome != workflows.OutcomeAborted {
		return s, fmt.Errorf("outcome %s, want aborted (%s)", st.Outcome, st.Reason)
	}
	for _, d := range st.Decisions {
		if d.Action == workflows.UpdateAbort {
			s.reached = d.At.Sub(t0)
		}
	}
	var longest time.Duration
	for _, r := range st.Rollback {
		if d := r.Duration(st.EndedAt); d >= longest {
			longest, s.slowest = d, fmt.Sprintf("%s (%s)", r.Description, fd(d))
		}
	}
	rs, err := c.router.State(ctx)
	if err != nil || rs.Weights.Green != 0 || len(rs.Pools[router.Green]) != 0 {
		return s, fmt.Errorf("router after the abort: %+v %v; want green at 0 and empty", rs.Weights, err)
	}
	return s, nil
}

func stepRunning(st workflows.Status, step int) bool {
	for _, r := range st.Steps {
		if r.Index == step {
			return r.State == workflows.StateRunning
		}
	}
	return false
}

func abortReport(cfg config, samples []abortSample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## 2. Abort latency\n\n")
	fmt.Fprintf(&b, "Reproduce: `make temporal && go run ./bench -sections abort -aborts %d`\n\n", cfg.aborts)
	b.WriteString("A Temporal dev server (`bin/temporal server start-dev`, as `tests/harness`), one `cutover-worker`, a `cutover router` " +
		"process (health checks every 200ms) and blue (two demo-app instances) started by `cutover local start`. Each run starts " +
		"`cutover release -f abort.yaml --wait` with the plan of `tests/zero_downtime_test.go`'s `localSpec` but `soak: {duration: 10m}` " +
		"right after `setWeight: 10`; once the router's admin API shows green at 10% and the status query shows the soak step running, " +
		"a goroutine polls the router's `GET /v1/state` every 1ms (plus the call's own time) and the clock starts just before " +
		"`cutover abort bench --reason bench` is started as a process. *Weight 0* is the first poll that shows green at 0; " +
		"*abort returned* is when that command exited (it answers once all traffic is back on blue); *release ended* is when " +
		"`cutover release --wait` exited 4 (aborted: green drained and stopped). The next run starts after that.\n\n")
	var reached, zero, ret, ended []time.Duration
	polls := 0
	var total time.Duration
	for _, s := range samples {
		reached, zero, ret, ended = append(reached, s.reached), append(zero, s.weightZero), append(ret, s.returned), append(ended, s.ended)
		polls += s.polls
		total += s.weightZero
	}
	meanPoll := time.Duration(0)
	if polls > 0 {
		meanPoll = total / time.Duration(polls)
	}
	fmt.Fprintf(&b, "| from `cutover abort` started to | runs | min | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|\n")
	row := func(name string, d []time.Duration) {
		s := slices.Clone(d)
		slices.Sort(s)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", name, len(s), fd(s[0]), fd(percentile(s, 50)), fd(percentile(s, 90)),
			fd(percentile(s, 99)), fd(s[len(s)-1]))
	}
	row("the workflow records the abort (breakdown)", reached)
	row("**the router reports green weight 0**", zero)
	row("**`cutover abort` returned**", ret)
	row("the release ended (outcome aborted)", ended)
	fmt.Fprintf(&b, "\nPercentiles are nearest-rank (with fewer than 100 runs, p99 is the maximum). The admin API was polled every %s on "+
		"average while waiting, which bounds the resolution of *weight 0*. Every figure includes starting the `cutover` process and "+
		"its connection to Temporal, as an operator's abort does. *The workflow records the abort* is the time of the workflow task "+
		"that applied the update (the decision's `at` in the status): what comes before it is the CLI starting, dialling Temporal and "+
		"sending the update; what comes after it, up to *weight 0*, is the workflow scheduling the set-weight activity and the worker "+
		"calling the router.\n\n", fd(meanPoll))
	var slow []string
	for i, s := range samples {
		if s.ended > time.Second {
			slow = append(slow, fmt.Sprintf("run %d: %s, longest rollback step %s", i+1, fd(s.ended), s.slowest))
		}
	}
	if len(slow) > 0 {
		fmt.Fprintf(&b, "Releases that took over 1s to end after the abort: %s.\n\n", strings.Join(slow, "; "))
	}
	if len(samples) <= 30 {
		b.WriteString("Each run in order (weight 0 / abort returned / release ended): ")
		for i, s := range samples {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s / %s / %s", fd(s.weightZero), fd(s.returned), fd(s.ended))
		}
		b.WriteString(".\n\n")
	}
	return b.String()
}

type promotionSample struct {
	wall         time.Duration // cutover release started → it exited
	workflow     time.Duration // the workflow's own StartedAt → EndedAt
	approvalWait time.Duration // the approval step, as the workflow recorded it
	detect       time.Duration // release started → the benchmark saw the approval gate
	steps        []workflows.StepRecord
	end          time.Time // the workflow's EndedAt
}

func (p promotionSample) overhead() time.Duration { return p.wall - promotionTimers - p.approvalWait }

func (c *cluster) benchPromotion(ctx context.Context, cfg config) (string, error) {
	var samples []promotionSample
	for i := 1; i <= cfg.promotions; i++ {
		s, err := c.promoteOnce(ctx, i)
		if err != nil {
			return "", fmt.Errorf("run %d: %w", i, err)
		}
		logf("promotion %d/%d: wall %s, workflow %s, approval wait %s, overhead %s",
			i, cfg.promotions, fd(s.wall), fd(s.workflow), fd(s.approvalWait), fd(s.overhead()))
		samples = append(samples, s)
	}
	return promotionReport(cfg, samples), nil
}

func (c *cluster) promoteOnce(ctx context.Context, i int) (promotionSample, error) {
	var s promotionSample
	spec, err := c.spec("promotion", fmt.Sprintf("3.0.%d", i), promotionPlan)
	if err != nil {
		return s, err
	}
	rel, err := c.ps.Start(fmt.Sprintf("cutover release (promotion run %d)", i), c.env, c.cli, "release", "-f", spec, "--wait", "--by", "bench")
	if err != nil {
		return s, err
	}
	defer rel.Stop(10 * time.Second)
	if _, err := c.waitStatus(ctx, 2*time.Minute, "the approval gate", rel, func(st workflows.Status) bool {
		return st.Version == fmt.Sprintf("3.0.%d", i) && st.Waiting == "approval"
	}); err != nil {
		return s, err
	}
	s.detect = time.Since(rel.Started)
	if _, err := c.rc.Decide(ctx, benchApp, workflows.UpdateApprove, workflows.Decision{By: "bench-approver", Reason: "bench", Via: "api"}, ""); err != nil {
		return s, err
	}
	code, err := waitExit(ctx, rel, 3*time.Minute)
	if err != nil {
		return s, err
	}
	if code != 0 {
		return s, fmt.Errorf("cutover release --wait exited %d, want 0 (promoted); output:\n%s", code, tail(rel.Output(), 3000))
	}
	s.wall = rel.Ended().Sub(rel.Started)
	st, err := c.status(ctx)
	if err != nil {
		return s, err
	}
	if st.Outcome != workflows.OutcomePromoted {
		return s, fmt.Errorf("outcome %s, want promoted (%s)", st.Outcome, st.Reason)
	}
	s.workflow = st.EndedAt.Sub(st.StartedAt)
	s.steps, s.end = st.Steps, st.EndedAt
	for _, r := range st.Steps {
		if r.Kind == "approval" {
			s.approvalWait = r.Duration(st.EndedAt)
		}
	}
	return s, nil
}

func promotionReport(cfg config, samples []promotionSample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## 3. Promotion wall time minus soak\n\n")
	fmt.Fprintf(&b, "Reproduce: `make temporal && go run ./bench -sections promotion -promotions %d`\n\n", cfg.promotions)
	b.WriteString("The same cluster as section 2 (real router, real demo-app processes for green, one worker). Each run is " +
		"`cutover release -f promotion.yaml --wait` with the demo's plan and short waits: provision, validate (smoke `/`), " +
		"setWeight 10, soak 5s, setWeight 50, soak 5s, analysis (window 1s), approval, promote, standby 5s, decommission. " +
		"The benchmark polls the status query every 10ms and approves (the `approve` update, as `cutover approve` sends it) " +
		"as soon as the release waits for approval. *Wall* runs from starting `cutover release` to its exit (0: promoted); " +
		"*timers* are the configured soaks and standby (15s); *approval wait* is the approval step's duration as the workflow " +
		"recorded it (the benchmark's poll and the update's round trip); *overhead* = wall − timers − approval wait: everything " +
		"Cutover itself spends (CLI start, workflow and activity scheduling, starting and health-checking green, weight changes, " +
		"draining and stopping blue). The analysis window is not a timer with the local analysis provider (it judges the router's " +
		"health checks at once), so it is part of the overhead.\n\n")
	var wall, wf, appr, over []time.Duration
	for _, s := range samples {
		wall, wf, appr, over = append(wall, s.wall), append(wf, s.workflow), append(appr, s.approvalWait), append(over, s.overhead())
	}
	b.WriteString("| | runs | p50 | max | min |\n|---|---:|---:|---:|---:|\n")
	row := func(name string, d []time.Duration) {
		s := slices.Clone(d)
		slices.Sort(s)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", name, len(s), fd(percentile(s, 50)), fd(s[len(s)-1]), fd(s[0]))
	}
	row("wall (`cutover release --wait`)", wall)
	row("the workflow's own start → end", wf)
	fmt.Fprintf(&b, "| timers (soaks + standby) | %d | %s | %s | %s |\n", len(samples), fd(promotionTimers), fd(promotionTimers), fd(promotionTimers))
	row("approval wait", appr)
	row("**overhead** (wall − timers − approval wait)", over)

	// Where the time goes: each step's median duration.
	b.WriteString("\nEach step's median duration over the runs, as the workflow recorded it:\n\n| step | p50 | max |\n|---|---:|---:|\n")
	if len(samples) > 0 {
		for k, r := range samples[0].steps {
			var d []time.Duration
			for _, s := range samples {
				if k < len(s.steps) {
					d = append(d, s.steps[k].Duration(s.end))
				}
			}
			slices.Sort(d)
			fmt.Fprintf(&b, "| %d. %s | %s | %s |\n", r.Index, r.Description, fd(percentile(d, 50)), fd(d[len(d)-1]))
		}
	}
	b.WriteString("\nEach run in order (wall / overhead): ")
	for i, s := range samples {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s / %s", fd(s.wall), fd(s.overhead()))
	}
	b.WriteString(".\n\n")
	return b.String()
}
