package main

import (
	"context"
	"fmt"
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
// (roundrobin over both).

const benchToken = "cutover-bench-token"

// target is one way to reach the demo app.
type target struct {
	name string
	url  string
	cpu  *procs.Proc // the process whose CPU time is charged to this path: the proxy, or the one backend
}

// fixedRow is one fixed-rate run.
type fixedRow struct {
	target string
	round  int
	sum    loadgen.Summary
	cpu    time.Duration
	other  float64 // CPUs' worth of work by processes outside the benchmark during the run
}

// maxRow is one closed-loop run.
type maxRow struct {
	target string
	round  int
	res    closedResult
	cpu    time.Duration
	other  float64
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

	// The router, as its own process (as it runs for real), both instances blue.
	listen, err := freeAddr()
	if err != nil {
		return "", err
	}
	admin, err := freeAddr()
	if err != nil {
		return "", err
	}
	rp, err := ps.Start("cutover router", []string{"CUTOVER_ROUTER_TOKEN=" + benchToken}, cli,
		"router", "--app", "bench-overhead", "--listen", listen, "--admin", admin)
	if err != nil {
		return "", err
	}
	rc := router.NewClient("http://"+admin, benchToken)
	if err := waitFor(ctx, 10*time.Second, "the router's admin API", rp, func() bool {
		_, err := rc.State(ctx)
		return err == nil
	}); err != nil {
		return "", err
	}
	if err := rc.SetPool(ctx, router.Blue, backends); err != nil {
		return "", err
	}
	if err := rc.SetWeight(ctx, 0); err != nil {
		return "", err
	}
	if err := waitFor(ctx, 10*time.Second, "both blue instances healthy in the router", rp, func() bool {
		st, err := rc.State(ctx)
		return err == nil && st.Weights.Green == 0 && healthyCount(st.Pools[router.Blue]) == 2
	}); err != nil {
		return "", err
	}

	targets := []target{
		{name: "direct (one demo-app)", url: backends[0] + "/", cpu: backendProcs[0]},
		{name: "cutover router", url: "http://" + listen + "/", cpu: rp},
	}

	// haproxy, when installed, with the same two backends.
	haproxyVersion := ""
	if hp, err := exec.LookPath("haproxy"); err == nil {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		conf := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(conf, []byte(haproxyConfig(port, backends)), 0o644); err != nil {
			return "", err
		}
		if out, code, err := run(ctx, 10*time.Second, nil, hp, "-c", "-f", conf); err != nil || code != 0 {
			return "", fmt.Errorf("haproxy -c: exit %d %v: %s", code, err, out)
		}
		hpp, err := ps.Start("haproxy", nil, hp, "-db", "-f", conf)
		if err != nil {
			return "", err
		}
		u := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := waitFor(ctx, 10*time.Second, "haproxy", hpp, func() bool { return answers2xx(u + "/") }); err != nil {
			return "", err
		}
		targets = append(targets, target{name: "haproxy", url: u + "/", cpu: hpp})
		if out, _, err := run(ctx, 10*time.Second, nil, hp, "-v"); err == nil {
			haproxyVersion = strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
		}
	} else {
		logf("haproxy is not on PATH: no haproxy comparison")
	}

	// Other work on the machine during a run: all CPUs' busy time minus what
	// the benchmark's own processes used.
	ours := func() time.Duration {
		d := cpuTimeOf(os.Getpid())
		for _, t := range targets[1:] {
			d += cpuTimeOf(t.cpu.Pid())
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
		for _, t := range targets {
			logf("overhead round %d: %s at %d req/s for %s (concurrency %d)", round, t.name, cfg.rate, cfg.duration, cfg.concurrency)
			cpu0, m := cpuTimeOf(t.cpu.Pid()), markNow()
			sum, err := loadgen.Run(ctx, loadgen.Config{
				URL: t.url, Rate: cfg.rate, Duration: cfg.duration,
				MaxRequests: cfg.rate * int(cfg.duration.Seconds()+1), Concurrency: cfg.concurrency,
			}, nil)
			if err != nil {
				return "", err
			}
			fixed = append(fixed, fixedRow{t.name, round, sum, cpuTimeOf(t.cpu.Pid()) - cpu0, otherSince(m)})
			logf("  %s", sum)
			if err := ctx.Err(); err != nil {
				return "", err
			}
		}
		for _, t := range targets {
			logf("overhead round %d: %s, closed loop with %d clients for %s", round, t.name, cfg.clients, cfg.maxDuration)
			cpu0, m := cpuTimeOf(t.cpu.Pid()), markNow()
			res, err := closedLoop(ctx, t.url, cfg.clients, cfg.maxDuration, cfg.maxRequests)
			if err != nil {
				return "", err
			}
			maxes = append(maxes, maxRow{t.name, round, res, cpuTimeOf(t.cpu.Pid()) - cpu0, otherSince(m)})
			logf("  ok=%d errors=%d %.0f req/s p50=%s p99=%s", res.OK, res.Errors, res.throughput(), loadgen.FormatDuration(res.P50), loadgen.FormatDuration(res.P99))
			if err := ctx.Err(); err != nil {
				return "", err
			}
		}
	}
	for _, p := range slices.Backward(append([]*procs.Proc{rp}, backendProcs...)) {
		p.Stop(10 * time.Second)
	}
	return overheadReport(cfg, targets, fixed, maxes, haproxyVersion), nil
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
func haproxyConfig(port int, backends []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 4096

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

func overheadReport(cfg config, targets []target, fixed []fixedRow, maxes []maxRow, haproxyVersion string) string {
	var b strings.Builder
	cmd := fmt.Sprintf("go run ./bench -sections overhead -rate %d -duration %s -concurrency %d -clients %d -max-duration %s -rounds %d",
		cfg.rate, cfg.duration, cfg.concurrency, cfg.clients, cfg.maxDuration, cfg.rounds)
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
	b.WriteString("The load generator runs in the benchmark process on the same two cores as everything else, so each figure is " +
		"a whole-machine figure: client, proxy and backends compete for the CPUs.\n\n")

	routerMax := 0.0
	for _, r := range maxes {
		if r.target == targets[1].name {
			routerMax = max(routerMax, r.res.throughput())
		}
	}
	fmt.Fprintf(&b, "**Fixed rate**: `loadgen.Run` at %d req/s for %s, at most %d requests in flight (2s timeout). "+
		"This 2-core machine sustains %d req/s through every path with headroom (it is %.0f%% of the router's closed-loop maximum below), "+
		"so these rows compare latency at a realistic load rather than at CPU saturation.\n\n",
		cfg.rate, cfg.duration, cfg.concurrency, cfg.rate, 100*float64(cfg.rate)/routerMax)
	short := 0
	for _, r := range fixed {
		if r.sum.Skipped > 0 || r.sum.OK < r.sum.Sent || float64(r.sum.Sent) < 0.98*float64(cfg.rate)*cfg.duration.Seconds() {
			short++
		}
	}
	if short == 0 {
		b.WriteString("Every fixed-rate run sent the full rate and every request answered 200.\n\n")
	} else {
		fmt.Fprintf(&b, "**%d fixed-rate run(s) fell short of the rate or had errors** (see *skipped* and *errors*): the machine did not sustain this rate.\n\n", short)
	}
	b.WriteString("| target | round | sent | ok req/s | p50 | p99 | errors | skipped | CPU per request | other work (CPUs) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range fixed {
		s := r.sum
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %s | %s | %d | %d | %s | %.2f |\n", r.target, r.round, s.Sent,
			float64(s.OK)/s.Elapsed.Seconds(), fd(s.P50), fd(s.P99), s.Failed+s.ConnErrors, s.Skipped, cpuPer(r.cpu, s.Sent), r.other)
	}
	fmt.Fprintf(&b, "\n**Maximum throughput**: a closed loop of %d clients, each sending its next `GET /` as soon as the last one answered, for %s "+
		"(at most %d requests).\n\n", cfg.clients, cfg.maxDuration, cfg.maxRequests)
	b.WriteString("| target | round | requests | ok req/s | p50 | p99 | errors | CPU per request | other work (CPUs) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range maxes {
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %s | %s | %d | %s | %.2f |\n", r.target, r.round, r.res.Sent,
			r.res.throughput(), fd(r.res.P50), fd(r.res.P99), r.res.Errors, cpuPer(r.cpu, r.res.Sent), r.other)
	}
	fmt.Fprintf(&b, "\n*CPU per request* is the CPU time (user + system, from `/proc/PID/stat`, 10ms ticks) that the proxy process "+
		"used during the run divided by the requests sent; for the direct path it is the one backend's. *Other work* is how many "+
		"of the %d CPUs processes outside the benchmark kept busy during the run on average (user, system and steal time from "+
		"`/proc/stat` minus the CPU time of the benchmark, its proxies and backends): a run with other work well above zero "+
		"competed with something else on the machine and its figures are pessimistic.\n\n", runtime.NumCPU())

	// Ratios, from the median over rounds of each figure.
	med := func(name string) (fixedP50, fixedP99, maxTput, maxP50, maxCPU float64) {
		var a, c, d, e, f []float64
		for _, r := range fixed {
			if r.target == name {
				a = append(a, float64(r.sum.P50))
				c = append(c, float64(r.sum.P99))
			}
		}
		for _, r := range maxes {
			if r.target == name {
				d = append(d, r.res.throughput())
				e = append(e, float64(r.res.P50))
				f = append(f, float64(r.cpu)/float64(max(r.res.Sent, 1)))
			}
		}
		return median(a), median(c), median(d), median(e), median(f)
	}
	dP50, dP99, dT, dMP50, _ := med(targets[0].name)
	rP50, rP99, rT, rMP50, rCPU := med(targets[1].name)
	fmt.Fprintf(&b, "Through the router rather than straight to one instance (medians over %d rounds): fixed-rate p50 %s → %s (+%s), "+
		"p99 %s → %s; maximum throughput %.0f → %.0f req/s (%.2f×).\n\n",
		cfg.rounds, fd(time.Duration(dP50)), fd(time.Duration(rP50)), fd(time.Duration(rP50-dP50)),
		fd(time.Duration(dP99)), fd(time.Duration(rP99)), dT, rT, rT/dT)
	_ = dMP50
	if len(targets) > 2 {
		hP50, hP99, hT, hMP50, hCPU := med(targets[2].name)
		b.WriteString("| router / haproxy | ratio |\n|---|---:|\n")
		fmt.Fprintf(&b, "| fixed-rate p50 | %.2f |\n", rP50/hP50)
		fmt.Fprintf(&b, "| fixed-rate p99 | %.2f |\n", rP99/hP99)
		fmt.Fprintf(&b, "| maximum throughput | %.2f |\n", rT/hT)
		fmt.Fprintf(&b, "| closed-loop p50 | %.2f |\n", rMP50/hMP50)
		fmt.Fprintf(&b, "| proxy CPU per request (closed loop) | %.2f |\n\n", rCPU/hCPU)
	}
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
