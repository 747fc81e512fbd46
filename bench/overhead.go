package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/loadgen"
	"github.com/cutoverhq/cutover/procs"
	"github.com/cutoverhq/cutover/router"
)

// Section 1: the router's overhead. Two demo-app instances; the same load
// straight to one of them, through `cutover router` (both as the blue pool,
// green at weight 0) and, when haproxy is installed, through haproxy
// (roundrobin over both). Closed loops only: the router with the sticky
// cookie, the router while /metrics is scraped every second, the router at
// Go's default GOGC=100 (it sets 400 itself), and the router with
// GOMAXPROCS=1 next to haproxy with nbthread 1.

const benchToken = "cutover-bench-token"

// The targets' names; the report's ratios look them up.
const (
	nameDirect        = "direct (one demo-app)"
	nameRouter        = "cutover router"
	nameHaproxy       = "haproxy"
	nameRouterSticky  = "cutover router --sticky (cookie sent)"
	nameRouterScraped = "cutover router, /metrics scraped every 1s"
	nameRouterOneCPU  = "cutover router, GOMAXPROCS=1"
	nameRouterGOGC    = "cutover router, GOGC=100 (Go's default)"
	nameHaproxyOneCPU = "haproxy, nbthread 1"
)

// target is one way to reach the demo app.
type target struct {
	name   string
	url    string
	cpu    *procs.Proc // the process whose CPU time is charged to this path: the proxy, or the one backend
	fixed  bool        // measured at the fixed rates too, not only in a closed loop
	header http.Header // sent with every closed-loop request
	scrape string      // a /metrics URL (with the bench token) to fetch every second during the closed loop
}

// fixedRow is one fixed-rate run.
type fixedRow struct {
	target string
	rate   int
	round  int
	sum    loadgen.Summary
	cpu    time.Duration
	other  float64 // CPUs' worth of work by processes outside the benchmark during the run
}

// maxRow is one closed-loop run.
type maxRow struct {
	target  string
	round   int
	res     closedResult
	cpu     time.Duration
	other   float64
	scrapes int // /metrics pages fetched during the run
}

func benchOverhead(ctx context.Context, cfg config, bins *binaries, ps *procs.Group) (string, error) {
	demo, err := bins.demoApp()
	if err != nil {
		return "", err
	}
	cli, err := bins.cutover()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "cutover-bench-overhead-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)

	// Two instances of the demo app.
	var backends []string
	var backendProcs []*procs.Proc
	for i := range 2 {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		p, err := ps.Start(fmt.Sprintf("demo-app %d", i), []string{fmt.Sprintf("PORT=%d", port), "VERSION=1.0.0"}, demo)
		if err != nil {
			return "", err
		}
		u := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := waitFor(ctx, 10*time.Second, "the demo app", p, func() bool { return answers2xx(u + "/healthz") }); err != nil {
			return "", err
		}
		backends, backendProcs = append(backends, u), append(backendProcs, p)
	}

	// The router, as its own process (as it runs for real), both instances
	// blue; its profiler on, for the profile run after the rounds.
	pprofAddr, err := freeAddr()
	if err != nil {
		return "", err
	}
	rt, err := startBenchRouter(ctx, ps, cli, backends, nameRouter, nil, "--pprof", pprofAddr)
	if err != nil {
		return "", err
	}
	sticky, err := startBenchRouter(ctx, ps, cli, backends, nameRouterSticky, nil, "--sticky")
	if err != nil {
		return "", err
	}
	oneCPU, err := startBenchRouter(ctx, ps, cli, backends, nameRouterOneCPU, []string{"GOMAXPROCS=1"})
	if err != nil {
		return "", err
	}
	gogc100, err := startBenchRouter(ctx, ps, cli, backends, nameRouterGOGC, []string{"GOGC=100"})
	if err != nil {
		return "", err
	}
	rp := rt.proc

	targets := []target{
		{name: nameDirect, url: backends[0] + "/", cpu: backendProcs[0], fixed: true},
		{name: nameRouter, url: rt.url, cpu: rp, fixed: true},
	}
	extra := []target{
		// A browser that was given the cookie sends it back: the router reads it
		// on every request and, as it names the color that serves, sets none.
		{name: nameRouterSticky, url: sticky.url, cpu: sticky.proc, header: http.Header{"Cookie": {router.CookieName + "=" + router.Blue}}},
		{name: nameRouterScraped, url: rt.url, cpu: rp, scrape: rt.metrics},
		// What the router's own GOGC=400 (starter.tuneRouterGC) saves.
		{name: nameRouterGOGC, url: gogc100.url, cpu: gogc100.proc},
		{name: nameRouterOneCPU, url: oneCPU.url, cpu: oneCPU.proc},
	}

	// haproxy, when installed, with the same two backends: with its default
	// threads (one per CPU), and with one thread next to the one-CPU router.
	haproxyVersion := ""
	if hp, err := exec.LookPath("haproxy"); err == nil {
		for _, nbthread := range []int{0, 1} {
			name := nameHaproxy
			if nbthread == 1 {
				name = nameHaproxyOneCPU
			}
			u, hpp, err := startHaproxy(ctx, ps, hp, dir, name, backends, nbthread)
			if err != nil {
				return "", err
			}
			if nbthread == 0 {
				targets = append(targets, target{name: name, url: u, cpu: hpp, fixed: true})
			} else {
				extra = append(extra, target{name: name, url: u, cpu: hpp})
			}
		}
		if out, _, err := run(ctx, 10*time.Second, nil, hp, "-v"); err == nil {
			haproxyVersion = strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
		}
	} else {
		logf("haproxy is not on PATH: no haproxy comparison")
	}
	targets = append(targets, extra...)

	// Other work on the machine during a run: all CPUs' busy time minus what
	// the benchmark's own processes used.
	ours := func() time.Duration {
		d := cpuTimeOf(os.Getpid())
		seen := map[*procs.Proc]bool{backendProcs[0]: true}
		for _, t := range targets {
			if !seen[t.cpu] {
				seen[t.cpu] = true
				d += cpuTimeOf(t.cpu.Pid())
			}
		}
		return d + cpuTimeOf(backendProcs[0].Pid()) + cpuTimeOf(backendProcs[1].Pid())
	}
	type mark struct {
		at         time.Time
		busy, ours time.Duration
	}
	markNow := func() mark { return mark{time.Now(), machineBusy(), ours()} }
	otherSince := func(m mark) float64 {
		other := (machineBusy() - m.busy) - (ours() - m.ours)
		return max(other.Seconds(), 0) / time.Since(m.at).Seconds()
	}

	// Warm up: connections, the router's and backends' heaps.
	for _, t := range targets {
		if _, err := loadgen.Run(ctx, loadgen.Config{URL: t.url, Rate: 500, Duration: time.Second, MaxRequests: 500, Concurrency: cfg.concurrency}, nil); err != nil {
			return "", err
		}
	}

	var fixed []fixedRow
	var maxes []maxRow
	for round := 1; round <= cfg.rounds; round++ {
		for _, rate := range []int{cfg.rate, cfg.rateHigh} {
			for _, t := range targets {
				if !t.fixed {
					continue
				}
				logf("overhead round %d: %s at %d req/s for %s (concurrency %d)", round, t.name, rate, cfg.duration, cfg.concurrency)
				cpu0, m := cpuTimeOf(t.cpu.Pid()), markNow()
				sum, err := loadgen.Run(ctx, loadgen.Config{
					URL: t.url, Rate: rate, Duration: cfg.duration,
					MaxRequests: rate * int(cfg.duration.Seconds()+1), Concurrency: cfg.concurrency,
				}, nil)
				if err != nil {
					return "", err
				}
				fixed = append(fixed, fixedRow{t.name, rate, round, sum, cpuTimeOf(t.cpu.Pid()) - cpu0, otherSince(m)})
				logf("  %s", sum)
				if err := ctx.Err(); err != nil {
					return "", err
				}
			}
		}
		for _, t := range targets {
			logf("overhead round %d: %s, closed loop with %d clients for %s", round, t.name, cfg.clients, cfg.maxDuration)
			cpu0, m := cpuTimeOf(t.cpu.Pid()), markNow()
			stopScrape := scrapeEverySecond(ctx, t.scrape)
			res, err := closedLoop(ctx, t.url, t.header, cfg.clients, cfg.maxDuration, cfg.maxRequests)
			scrapes := stopScrape()
			if err != nil {
				return "", err
			}
			maxes = append(maxes, maxRow{t.name, round, res, cpuTimeOf(t.cpu.Pid()) - cpu0, otherSince(m), scrapes})
			logf("  ok=%d errors=%d %.0f req/s p50=%s p99=%s", res.OK, res.Errors, res.throughput(), loadgen.FormatDuration(res.P50), loadgen.FormatDuration(res.P99))
			if err := ctx.Err(); err != nil {
				return "", err
			}
		}
	}

	// One more closed loop through the router, outside the tables, with its
	// CPU profile taken and its allocations counted.
	logf("overhead: profiling the router in a closed loop with %d clients for %s", cfg.clients, cfg.maxDuration)
	prof, err := profileRouter(ctx, cfg, "http://"+pprofAddr, func() error {
		_, err := closedLoop(ctx, rt.url, nil, cfg.clients, cfg.maxDuration, cfg.maxRequests)
		return err
	})
	if err != nil {
		return "", err
	}
	if b, err := os.ReadFile(filepath.Join(bins.root, "bench", "profile_before.txt")); err == nil {
		prof.before = string(b)
	}
	// Peak resident memory over the whole run, for what GOGC=400 costs.
	peaks := map[string]int64{nameRouter: procStatusKiB(rp.Pid(), "VmHWM"), nameRouterGOGC: procStatusKiB(gogc100.proc.Pid(), "VmHWM")}
	for _, p := range slices.Backward(append([]*procs.Proc{rp, sticky.proc, oneCPU.proc, gogc100.proc}, backendProcs...)) {
		p.Stop(10 * time.Second)
	}
	return overheadReport(cfg, targets, fixed, maxes, haproxyVersion, prof, peaks), nil
}

func healthyCount(pool []router.Instance) int {
	n := 0
	for _, in := range pool {
		if in.Healthy && !in.Ejected {
			n++
		}
	}
	return n
}

// haproxyConfig is a plain HTTP load balancer over the backends, with health
// checks as frequent as the router's (1s).
// nbthread 0 leaves haproxy's default, a thread per CPU.
func haproxyConfig(port int, backends []string, nbthread int) string {
	var b strings.Builder
	b.WriteString("global\n    maxconn 4096\n")
	if nbthread > 0 {
		fmt.Fprintf(&b, "    nbthread %d\n", nbthread)
	}
	fmt.Fprintf(&b, `
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s

frontend bench
    bind 127.0.0.1:%d
    default_backend demo

backend demo
    balance roundrobin
    option httpchk GET /healthz
`, port)
	for i, u := range backends {
		fmt.Fprintf(&b, "    server demo%d %s check inter 1s\n", i, strings.TrimPrefix(u, "http://"))
	}
	return b.String()
}

func overheadReport(cfg config, targets []target, fixed []fixedRow, maxes []maxRow, haproxyVersion string, prof routerProfile, peaks map[string]int64) string {
	var b strings.Builder
	cmd := fmt.Sprintf("go run ./bench -sections overhead -rate %d -rate-high %d -duration %s -concurrency %d -clients %d -max-duration %s -rounds %d",
		cfg.rate, cfg.rateHigh, cfg.duration, cfg.concurrency, cfg.clients, cfg.maxDuration, cfg.rounds)
	has := func(name string) bool {
		return slices.ContainsFunc(targets, func(t target) bool { return t.name == name })
	}
	fmt.Fprintf(&b, "## 1. Router overhead\n\n")
	fmt.Fprintf(&b, "Reproduce: `%s`\n\n", cmd)
	fmt.Fprintf(&b, "Two demo-app instances (`deploy/demo-app`: `GET /` answers a small JSON body) on loopback; the same load goes "+
		"straight to one of them, through the `cutover router` process with both instances as the blue pool (green at weight 0), ")
	if haproxyVersion != "" {
		fmt.Fprintf(&b, "and through haproxy (%s, `mode http`, `balance roundrobin` over the same two instances, health checks every 1s like the router's, "+
			"default threads = one per CPU). ", haproxyVersion)
	} else {
		b.WriteString("and through haproxy when it is installed (it was not on PATH for this run). ")
	}
	b.WriteString("In closed loops only, five more paths: a second router started with `--sticky`, its clients sending back the cookie " +
		"a browser would have been given; the first router while `/metrics` is fetched from its admin listener every second; a third router " +
		"with `GOGC=100`, Go's default (the router collects at 400 unless `GOGC` is set); a fourth router with `GOMAXPROCS=1`")
	if has(nameHaproxyOneCPU) {
		b.WriteString(" next to a second haproxy with `nbthread 1`, so that the cost per core is compared with one core each")
	}
	b.WriteString(". The load generator runs in the benchmark process on the same two cores as everything else, so each figure is " +
		"a whole-machine figure: client, proxy and backends compete for the CPUs.\n\n")

	routerMax := 0.0
	for _, r := range maxes {
		if r.target == nameRouter {
			routerMax = max(routerMax, r.res.throughput())
		}
	}
	fmt.Fprintf(&b, "**Fixed rate**: `loadgen.Run` at %d and at %d req/s for %s, at most %d requests in flight (2s timeout). "+
		"%d req/s is %.0f%% of the router's best closed-loop maximum below and %d req/s is %.0f%%: the first compares latency with headroom, "+
		"the second near what two cores shared by client, proxy and backends sustain.\n\n",
		cfg.rate, cfg.rateHigh, cfg.duration, cfg.concurrency, cfg.rate, 100*float64(cfg.rate)/routerMax, cfg.rateHigh, 100*float64(cfg.rateHigh)/routerMax)
	short := 0
	for _, r := range fixed {
		if r.sum.Skipped > 0 || r.sum.OK < r.sum.Sent || float64(r.sum.Sent) < 0.98*float64(r.rate)*cfg.duration.Seconds() {
			short++
		}
	}
	if short == 0 {
		b.WriteString("Every fixed-rate run sent the full rate and every request answered 200.\n\n")
	} else {
		fmt.Fprintf(&b, "**%d fixed-rate run(s) fell short of the rate or had errors** (see *skipped* and *errors*): the machine did not sustain that rate.\n\n", short)
	}
	b.WriteString("| target | rate | round | sent | ok req/s | p50 | p99 | errors | skipped | CPU per request | other work (CPUs) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range fixed {
		s := r.sum
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %.0f | %s | %s | %d | %d | %s | %.2f |\n", r.target, r.rate, r.round, s.Sent,
			float64(s.OK)/s.Elapsed.Seconds(), fd(s.P50), fd(s.P99), s.Failed+s.ConnErrors, s.Skipped, cpuPer(r.cpu, s.Sent), r.other)
	}
	fmt.Fprintf(&b, "\n**Maximum throughput**: a closed loop of %d clients, each sending its next `GET /` as soon as the last one answered, for %s "+
		"(at most %d requests).\n\n", cfg.clients, cfg.maxDuration, cfg.maxRequests)
	b.WriteString("| target | round | requests | ok req/s | p50 | p99 | errors | CPU per request | other work (CPUs) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range maxes {
		name := r.target
		if r.target == nameRouterScraped {
			name += fmt.Sprintf(" (%d pages)", r.scrapes)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %s | %s | %d | %s | %.2f |\n", name, r.round, r.res.Sent,
			r.res.throughput(), fd(r.res.P50), fd(r.res.P99), r.res.Errors, cpuPer(r.cpu, r.res.Sent), r.other)
	}
	fmt.Fprintf(&b, "\n*CPU per request* is the CPU time (user + system, from `/proc/PID/stat`, 10ms ticks) that the proxy process "+
		"used during the run divided by the requests sent; for the direct path it is the one backend's. *Other work* is how many "+
		"of the %d CPUs processes outside the benchmark kept busy during the run on average (user, system and steal time from "+
		"`/proc/stat` minus the CPU time of the benchmark, its proxies and backends): a run with other work well above zero "+
		"competed with something else on the machine and its figures are pessimistic.\n\n", runtime.NumCPU())

	// Medians over rounds of each figure.
	medFixed := func(name string, rate int) (p50, p99 float64) {
		var a, c []float64
		for _, r := range fixed {
			if r.target == name && r.rate == rate {
				a, c = append(a, float64(r.sum.P50)), append(c, float64(r.sum.P99))
			}
		}
		return median(a), median(c)
	}
	medMax := func(name string) (tput, p50, cpu float64) {
		var d, e, f []float64
		for _, r := range maxes {
			if r.target == name {
				d = append(d, r.res.throughput())
				e = append(e, float64(r.res.P50))
				f = append(f, float64(r.cpu)/float64(max(r.res.Sent, 1)))
			}
		}
		return median(d), median(e), median(f)
	}
	dP50, dP99 := medFixed(nameDirect, cfg.rate)
	rP50, rP99 := medFixed(nameRouter, cfg.rate)
	dT, _, _ := medMax(nameDirect)
	rT, rMP50, rCPU := medMax(nameRouter)
	fmt.Fprintf(&b, "Through the router rather than straight to one instance (medians over %d rounds): fixed-rate p50 at %d req/s %s → %s (+%s), "+
		"p99 %s → %s; maximum throughput %.0f → %.0f req/s (%.2f×).\n\n",
		cfg.rounds, cfg.rate, fd(time.Duration(dP50)), fd(time.Duration(rP50)), fd(time.Duration(rP50-dP50)),
		fd(time.Duration(dP99)), fd(time.Duration(rP99)), dT, rT, rT/dT)
	sT, _, sCPU := medMax(nameRouterSticky)
	mT, _, mCPU := medMax(nameRouterScraped)
	gT, _, gCPU := medMax(nameRouterGOGC)
	fmt.Fprintf(&b, "Next to the plain router (medians): with the sticky cookie %.2f× its throughput and %.2f× its CPU per request; "+
		"with /metrics scraped every second %.2f× and %.2f×; at `GOGC=100` %.2f× and %.2f×, for a peak resident memory over the whole run "+
		"(`VmHWM`) of %d MiB against the plain router's %d MiB, which also served the fixed-rate runs and the profile.\n\n",
		sT/rT, sCPU/rCPU, mT/rT, mCPU/rCPU, gT/rT, gCPU/rCPU, peaks[nameRouterGOGC]>>10, peaks[nameRouter]>>10)
	if !has(nameHaproxy) {
		b.WriteString(prof.markdown())
		return b.String()
	}
	hP50, hP99 := medFixed(nameHaproxy, cfg.rate)
	rhP50, rhP99 := medFixed(nameRouter, cfg.rateHigh)
	hhP50, hhP99 := medFixed(nameHaproxy, cfg.rateHigh)
	hT, hMP50, hCPU := medMax(nameHaproxy)
	r1T, _, r1CPU := medMax(nameRouterOneCPU)
	h1T, _, h1CPU := medMax(nameHaproxyOneCPU)
	b.WriteString("| router / haproxy (medians) | ratio |\n|---|---:|\n")
	fmt.Fprintf(&b, "| fixed-rate p50 at %d req/s | %.2f |\n", cfg.rate, rP50/hP50)
	fmt.Fprintf(&b, "| fixed-rate p99 at %d req/s | %.2f |\n", cfg.rate, rP99/hP99)
	fmt.Fprintf(&b, "| fixed-rate p50 at %d req/s | %.2f |\n", cfg.rateHigh, rhP50/hhP50)
	fmt.Fprintf(&b, "| fixed-rate p99 at %d req/s | %.2f |\n", cfg.rateHigh, rhP99/hhP99)
	fmt.Fprintf(&b, "| maximum throughput | %.2f |\n", rT/hT)
	fmt.Fprintf(&b, "| closed-loop p50 | %.2f |\n", rMP50/hMP50)
	fmt.Fprintf(&b, "| proxy CPU per request (closed loop) | %.2f |\n", rCPU/hCPU)
	fmt.Fprintf(&b, "| maximum throughput, GOMAXPROCS=1 / nbthread 1 | %.2f |\n", r1T/h1T)
	fmt.Fprintf(&b, "| proxy CPU per request, GOMAXPROCS=1 / nbthread 1 | %.2f |\n\n", r1CPU/h1CPU)

	errs := 0
	for _, r := range fixed {
		errs += r.sum.Failed + r.sum.ConnErrors
	}
	for _, r := range maxes {
		errs += r.res.Errors
	}
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	ms := func(v float64) string { return fd(time.Duration(v).Round(100 * time.Nanosecond)) }
	b.WriteString("Issue 15's goals, from the medians above:\n\n| goal | router | haproxy | |\n|---|---:|---:|---|\n")
	fmt.Fprintf(&b, "| closed-loop maximum ≥ 0.6× haproxy's | %.0f req/s (%.2f×) | %.0f req/s | %s |\n", rT, rT/hT, hT, check(rT >= 0.6*hT))
	fmt.Fprintf(&b, "| proxy CPU per request ≤ 2× haproxy's | %s (%.2f×) | %s | %s |\n", ms(rCPU), rCPU/hCPU, ms(hCPU), check(rCPU <= 2*hCPU))
	fmt.Fprintf(&b, "| p99 at %d req/s ≤ haproxy's + 1ms | %s | %s | %s |\n", cfg.rateHigh, ms(rhP99), ms(hhP99), check(rhP99 <= hhP99+float64(time.Millisecond)))
	fmt.Fprintf(&b, "| p50 at %d req/s ≤ haproxy's + 0.2ms | %s | %s | %s |\n", cfg.rateHigh, ms(rhP50), ms(hhP50), check(rhP50 <= hhP50+float64(200*time.Microsecond)))
	fmt.Fprintf(&b, "| no errors in any row | %d errors in all | | %s |\n\n", errs, check(errs == 0))
	b.WriteString(prof.markdown())
	return b.String()
}

// markdown shows the profiles, and the one from before issue 15 for comparison.
func (p routerProfile) markdown() string {
	var b strings.Builder
	b.WriteString("**Where the router's time goes**: one more closed loop through the router after the rounds, with its CPU profile " +
		"(`/debug/pprof/profile` from `cutover router --pprof`) and the bytes it allocated during the run (the difference of two " +
		"`/debug/pprof/allocs`), as `go tool pprof -top`, the 15 heaviest:\n\n")
	fmt.Fprintf(&b, "```\n%s\n```\n\n```\n%s\n```\n\n", p.cpu, p.allocs)
	if p.before == "" {
		return b.String()
	}
	fmt.Fprintf(&b, "Before issue 15's changes (every request through `httputil.ReverseProxy`, without a buffer pool; metrics looked up by "+
		"label per request; the write deadline moved on every write), the same profiles read (bench/profile_before.txt says how they were taken):\n\n```\n%s\n```\n\n",
		strings.TrimSpace(p.before))
	return b.String()
}

func fd(d time.Duration) string { return loadgen.FormatDuration(d) }

func cpuPer(cpu time.Duration, n int) string {
	if cpu == 0 || n == 0 {
		return "–"
	}
	return fd((cpu / time.Duration(n)).Round(100 * time.Nanosecond))
}

// median of xs (the mean of the middle two for an even count), 0 when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// benchRouter is one `cutover router` process serving the two backends as blue.
type benchRouter struct {
	proc    *procs.Proc
	url     string // user traffic, GET /
	metrics string // the admin /metrics
}

// startBenchRouter starts a router with env and args added, puts both
// backends in its blue pool at green weight 0, and waits until both are healthy.
func startBenchRouter(ctx context.Context, ps *procs.Group, cli string, backends []string, name string, env []string, args ...string) (benchRouter, error) {
	listen, err := freeAddr()
	if err != nil {
		return benchRouter{}, err
	}
	admin, err := freeAddr()
	if err != nil {
		return benchRouter{}, err
	}
	p, err := ps.Start(name, append([]string{"CUTOVER_ROUTER_TOKEN=" + benchToken}, env...), cli,
		append([]string{"router", "--app", "bench-overhead", "--listen", listen, "--admin", admin}, args...)...)
	if err != nil {
		return benchRouter{}, err
	}
	rc := router.NewClient("http://"+admin, benchToken)
	if err := waitFor(ctx, 10*time.Second, name+"'s admin API", p, func() bool {
		_, err := rc.State(ctx)
		return err == nil
	}); err != nil {
		return benchRouter{}, err
	}
	if err := rc.SetPool(ctx, router.Blue, backends); err != nil {
		return benchRouter{}, fmt.Errorf("%s: %w", name, err)
	}
	if err := rc.SetWeight(ctx, 0); err != nil {
		return benchRouter{}, fmt.Errorf("%s: %w", name, err)
	}
	if err := waitFor(ctx, 10*time.Second, "both blue instances healthy in "+name, p, func() bool {
		st, err := rc.State(ctx)
		return err == nil && st.Weights.Green == 0 && healthyCount(st.Pools[router.Blue]) == 2
	}); err != nil {
		return benchRouter{}, err
	}
	return benchRouter{proc: p, url: "http://" + listen + "/", metrics: "http://" + admin + "/metrics"}, nil
}

// startHaproxy starts haproxy (binary hp) over the backends with a config in
// dir and returns its URL once it answers.
func startHaproxy(ctx context.Context, ps *procs.Group, hp, dir, name string, backends []string, nbthread int) (string, *procs.Proc, error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, fmt.Sprintf("haproxy-%d.cfg", nbthread))
	if err := os.WriteFile(conf, []byte(haproxyConfig(port, backends, nbthread)), 0o644); err != nil {
		return "", nil, err
	}
	if out, code, err := run(ctx, 10*time.Second, nil, hp, "-c", "-f", conf); err != nil || code != 0 {
		return "", nil, fmt.Errorf("haproxy -c: exit %d %v: %s", code, err, out)
	}
	p, err := ps.Start(name, nil, hp, "-db", "-f", conf)
	if err != nil {
		return "", nil, err
	}
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if err := waitFor(ctx, 10*time.Second, name, p, func() bool { return answers2xx(u) }); err != nil {
		return "", nil, err
	}
	return u, p, nil
}

// scrapeEverySecond fetches url (a router's /metrics, with the bench token)
// every second until the returned function is called; that function returns
// how many pages were read whole. An empty url scrapes nothing.
func scrapeEverySecond(ctx context.Context, url string) func() int {
	if url == "" {
		return func() int { return 0 }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		client := &http.Client{Timeout: 5 * time.Second}
		defer client.CloseIdleConnections()
		n := 0
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- n
				return
			case <-tick.C:
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				continue
			}
			req.Header.Set("Authorization", "Bearer "+benchToken)
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			if _, err := io.Copy(io.Discard, resp.Body); err == nil && resp.StatusCode == http.StatusOK {
				n++
			}
			resp.Body.Close()
		}
	}()
	return func() int {
		cancel()
		return <-done
	}
}

// routerProfile is `go tool pprof -top` of the router's CPU time and of the
// bytes it allocated during one closed-loop run.
type routerProfile struct {
	cpu, allocs string
	// before is the same from before issue 15's changes (bench/profile_before.txt),
	// kept for comparison with the one each run takes.
	before string
}

// profileRouter runs load while it takes a CPU profile of the router from its
// profiler at base, and counts the router's allocations over the same run
// (the difference of two allocation profiles). The profiles are written to
// cfg.profileDir when it is set.
func profileRouter(ctx context.Context, cfg config, base string, load func() error) (routerProfile, error) {
	dir := cfg.profileDir
	if dir == "" {
		d, err := os.MkdirTemp("", "cutover-bench-profile-")
		if err != nil {
			return routerProfile{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return routerProfile{}, err
	}
	cpuFile, allocs0, allocs1 := filepath.Join(dir, "router-cpu.pprof"), filepath.Join(dir, "router-allocs-before.pprof"), filepath.Join(dir, "router-allocs.pprof")
	if err := fetchTo(ctx, base+"/debug/pprof/allocs", allocs0); err != nil {
		return routerProfile{}, err
	}
	// The CPU profile covers the load but its first and last second, when the
	// clients are still connecting or already done.
	secs := max(int(cfg.maxDuration.Seconds())-2, 1)
	cpuErr := make(chan error, 1)
	go func() { cpuErr <- fetchTo(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), cpuFile) }()
	loadErr := load()
	if err := <-cpuErr; err != nil {
		return routerProfile{}, err
	}
	if loadErr != nil {
		return routerProfile{}, loadErr
	}
	if err := fetchTo(ctx, base+"/debug/pprof/allocs", allocs1); err != nil {
		return routerProfile{}, err
	}
	var p routerProfile
	var err error
	if p.cpu, err = pprofTop(ctx, cpuFile); err != nil {
		return routerProfile{}, err
	}
	if p.allocs, err = pprofTop(ctx, "-sample_index=alloc_space", "-base", allocs0, allocs1); err != nil {
		return routerProfile{}, err
	}
	return p, nil
}

func fetchTo(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("profile %s: %w", url, err)
	}
	return os.WriteFile(file, b, 0o644)
}

// pprofTop is `go tool pprof -top` of a profile, its 15 heaviest functions.
func pprofTop(ctx context.Context, args ...string) (string, error) {
	out, code, err := run(ctx, time.Minute, nil, "go", append([]string{"tool", "pprof", "-top", "-nodecount=15"}, args...)...)
	if err != nil || code != 0 {
		return "", fmt.Errorf("go tool pprof %v: exit %d %v: %s", args, code, err, out)
	}
	return strings.TrimSpace(out), nil
}
