// Command bench measures Cutover on this machine and writes the results as
// Markdown (docs/benchmarks.md with `make bench`):
//
//  1. the router's overhead: throughput and latency straight to a demo-app
//     instance, through `cutover router` and through haproxy (when installed);
//  2. abort latency: from `cutover abort` being started to the router sending
//     no more traffic to green, and to the command returning;
//  3. a whole promotion's wall time minus its configured soak and standby
//     timers: the orchestration overhead;
//  4. detection time: from a green that starts failing to all traffic back on
//     blue, with the demo's metrics guard;
//  5. the judge's verdict time on a comparison of 10,000 steps;
//  6. decision quality: the old fixed-limit judge and the new sequential one
//     side by side on simulated traffic (false rollbacks, detection time,
//     earlyStop, the labelled scenarios). Sections 5 and 6 start nothing;
//  7. (chain) a release's orchestration overhead and history events next to
//     a raw Temporal activity chain of the same shape;
//  8. (concurrency) 100, 300 and 1,000 releases at once on two workers, and
//     as many raw chains: makespan, release times, worker and server RSS;
//  9. (sigkill) an approve sent right after the worker holding the release
//     is SIGKILLed.
//
// Everything it starts (a Temporal dev server, a worker, routers, demo-app
// instances, haproxy) listens on 127.0.0.1 only and is stopped before it exits;
// all load is bounded in rate, count and time.
//
//	go run ./bench [-sections overhead,abort,promotion,detection,judge,decisions,chain,concurrency,sigkill] [-out FILE]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/procs"
)

type config struct {
	out      string
	sections []string

	// Section 1.
	rate        int
	rateHigh    int // a second fixed rate, near what the machine sustains through a proxy
	duration    time.Duration
	concurrency int
	clients     int
	maxDuration time.Duration
	maxRequests int
	rounds      int
	profileDir  string // where to write the router's CPU and allocation profiles ("" = none)

	// Sections 2, 3 and 4.
	aborts     int
	promotions int
	detections int

	// Sections 7, 8 and 9.
	chainRuns int
	levels    []int
	kills     int
	killGaps  []time.Duration
}

var allSections = []string{"overhead", "abort", "promotion", "detection", "judge", "decisions", "chain", "concurrency", "sigkill"}

func main() {
	var cfg config
	var sections string
	flag.StringVar(&cfg.out, "out", "", "write the Markdown report to this file (default: standard output)")
	flag.StringVar(&sections, "sections", strings.Join(allSections, ","), "which measurements to run, comma-separated: "+strings.Join(allSections, ", "))
	flag.IntVar(&cfg.rate, "rate", 2000, "overhead: fixed request rate, per second")
	flag.IntVar(&cfg.rateHigh, "rate-high", 6000, "overhead: the second fixed request rate, per second")
	flag.StringVar(&cfg.profileDir, "profile", "", "overhead: write the router's CPU profile of its first closed-loop run and its allocation profile to this directory")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "overhead: how long each fixed-rate run lasts")
	flag.IntVar(&cfg.concurrency, "concurrency", 64, "overhead: most requests in flight at the fixed rate")
	flag.IntVar(&cfg.clients, "clients", 32, "overhead: closed-loop clients for the maximum throughput")
	flag.DurationVar(&cfg.maxDuration, "max-duration", 10*time.Second, "overhead: how long each closed-loop run lasts")
	flag.IntVar(&cfg.maxRequests, "max-requests", 500000, "overhead: cap on the requests of one closed-loop run")
	flag.IntVar(&cfg.rounds, "rounds", 3, "overhead: how many times to measure every target")
	flag.IntVar(&cfg.aborts, "aborts", 100, "abort: how many releases to abort")
	flag.IntVar(&cfg.promotions, "promotions", 5, "promotion: how many releases to promote")
	flag.IntVar(&cfg.detections, "detections", 20, "detection: how many bad releases to catch")
	flag.IntVar(&cfg.chainRuns, "chain-runs", 20, "chain: how many releases and raw chains to run, one at a time")
	levels := flag.String("levels", "100,300,1000", "concurrency: how many releases at once, comma-separated")
	flag.IntVar(&cfg.kills, "kills", 5, "sigkill: how many workers to kill")
	killGaps := flag.String("kill-gaps", "0,100ms,1s", "sigkill: how long after the killed worker has exited the approve is sent, comma-separated (each gets -kills runs)")
	rawWorker := flag.String("raw-worker", "", "run a worker for the raw chain against this Temporal address (the chain and concurrency sections start it)")
	flag.Parse()
	if *rawWorker != "" {
		if err := runRawWorker(*rawWorker); err != nil {
			fmt.Fprintf(os.Stderr, "bench: raw worker: %v\n", err)
			os.Exit(1)
		}
		return
	}
	for l := range strings.SplitSeq(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n <= 0 || n > 2000 {
			fmt.Fprintf(os.Stderr, "bench: -levels: %q is not a count from 1 to 2000\n", l)
			os.Exit(2)
		}
		cfg.levels = append(cfg.levels, n)
	}
	for g := range strings.SplitSeq(*killGaps, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(g))
		if err != nil || d < 0 || d > time.Minute {
			fmt.Fprintf(os.Stderr, "bench: -kill-gaps: %q is not a duration from 0 to 1m\n", g)
			os.Exit(2)
		}
		cfg.killGaps = append(cfg.killGaps, d)
	}
	for s := range strings.SplitSeq(sections, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		known := false
		for _, k := range allSections {
			known = known || k == s
		}
		if !known {
			fmt.Fprintf(os.Stderr, "bench: unknown section %q (known: %s)\n", s, strings.Join(allSections, ", "))
			os.Exit(2)
		}
		cfg.sections = append(cfg.sections, s)
	}
	switch {
	case cfg.rate <= 0 || cfg.rate > 20000, cfg.rateHigh <= 0 || cfg.rateHigh > 20000, cfg.duration <= 0 || cfg.duration > time.Minute,
		cfg.maxDuration <= 0 || cfg.maxDuration > time.Minute, cfg.concurrency <= 0 || cfg.concurrency > 1024,
		cfg.clients <= 0 || cfg.clients > 1024, cfg.maxRequests <= 0 || cfg.maxRequests > 2000000,
		cfg.rounds <= 0 || cfg.rounds > 5, cfg.aborts <= 0 || cfg.aborts > 200, cfg.promotions <= 0 || cfg.promotions > 50,
		cfg.detections <= 0 || cfg.detections > 100, cfg.chainRuns <= 0 || cfg.chainRuns > 100, cfg.kills <= 0 || cfg.kills > 20:
		fmt.Fprintln(os.Stderr, "bench: a flag is out of its bounds (rate and rate-high ≤ 20000/s, durations ≤ 1m, concurrency and clients ≤ 1024, "+
			"max-requests ≤ 2000000, rounds ≤ 5, aborts ≤ 200, promotions ≤ 50, detections ≤ 100, chain-runs ≤ 100, kills ≤ 20)")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, cfg config) (err error) {
	begin := time.Now()
	bins, err := newBinaries()
	if err != nil {
		return err
	}
	defer bins.cleanup()
	ps := &procs.Group{}
	// Whatever happens, every process started is stopped before returning.
	defer stopAll(ps)

	m := readMachine()
	var parts []string
	has := func(s string) bool {
		for _, x := range cfg.sections {
			if x == s {
				return true
			}
		}
		return false
	}
	if has("overhead") {
		logf("== 1. router overhead")
		s, err := benchOverhead(ctx, cfg, bins, ps)
		if err != nil {
			return fmt.Errorf("router overhead: %w", err)
		}
		parts = append(parts, s)
		stopAll(ps)
	}
	if has("abort") || has("promotion") || has("detection") {
		s, err := benchReleases(ctx, cfg, bins, ps, has("abort"), has("promotion"), has("detection"))
		if err != nil {
			return err
		}
		parts = append(parts, s)
		stopAll(ps)
	}
	if has("chain") || has("concurrency") || has("sigkill") {
		logf("== 7-9. Cutover next to a raw Temporal chain")
		s, err := benchLean(ctx, cfg, bins, ps, has("chain"), has("concurrency"), has("sigkill"))
		if err != nil {
			return fmt.Errorf("raw chain comparison: %w", err)
		}
		parts = append(parts, s)
		stopAll(ps)
	}
	if has("judge") {
		logf("== 5. judge verdict time")
		parts = append(parts, benchJudge())
	}
	if has("decisions") {
		logf("== 6. decision quality")
		parts = append(parts, benchDecisions())
	}
	m.loadEnd = loadAvg()
	elapsed := time.Since(begin)

	var doc bytes.Buffer
	writeHeader(&doc, cfg, m, elapsed)
	for _, p := range parts {
		doc.WriteString(p)
	}
	if cfg.out == "" {
		_, err = os.Stdout.Write(doc.Bytes())
		return err
	}
	if err := os.WriteFile(cfg.out, doc.Bytes(), 0o644); err != nil {
		return err
	}
	logf("wrote %s (the measurements took %s)", cfg.out, elapsed.Round(time.Second))
	return nil
}

// machine describes where the figures come from.
type machine struct {
	date      time.Time
	cpus      int
	cpuModel  string
	goVersion string
	kernel    string
	memory    string
	loadStart string
	loadEnd   string
}

func readMachine() machine {
	m := machine{date: time.Now().UTC(), cpus: runtime.NumCPU(), goVersion: runtime.Version(), cpuModel: "unknown", loadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				var kb int
				fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "MemTotal:")), "%d", &kb)
				m.memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func writeHeader(b *bytes.Buffer, cfg config, m machine, elapsed time.Duration) {
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Generated by `make bench`, which builds the binaries and runs `go run ./bench -out docs/benchmarks.md`; ")
	b.WriteString("re-run it rather than editing this file. Each section names the command that reproduces its figures alone ")
	b.WriteString("(it prints that section as Markdown). Everything runs on 127.0.0.1; every process the benchmark starts is stopped ")
	b.WriteString("before it exits.\n\n")
	fmt.Fprintf(b, "- Date: %s\n", m.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "- Machine: %d CPUs (`nproc`), %s", m.cpus, m.cpuModel)
	if m.memory != "" {
		fmt.Fprintf(b, ", %s RAM", m.memory)
	}
	if m.kernel != "" {
		fmt.Fprintf(b, ", %s", m.kernel)
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "- Go: %s\n", m.goVersion)
	fmt.Fprintf(b, "- Load average (1, 5, 15 min) when the run started: %s; when it ended: %s. ", m.loadStart, m.loadEnd)
	b.WriteString("Other work on the machine during the run shows up as noise in every figure.\n")
	fmt.Fprintf(b, "- Sections: %s; the measurements took %s.\n\n", strings.Join(cfg.sections, ", "), elapsed.Round(time.Second))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
