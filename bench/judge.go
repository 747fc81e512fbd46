package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/judge"
)

// Section 5: how long the judge takes to reach a verdict on 10,000 steps per
// color (about 2h45m of 1s steps), the most a comparison is expected to read.
// testing.Benchmark runs it as `go test -bench` would, without the test binary.

const judgeSamples = 10000

// judgePoints is n steps of a color with noisy but realistic numbers.
func judgePoints(n int, seed uint64, latency, errRate float64) []judge.Point {
	r := rand.New(rand.NewPCG(seed, 7))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ps := make([]judge.Point, n)
	for i := range ps {
		req := float64(80 + r.IntN(40))
		ps[i] = judge.Point{
			Time:     start.Add(time.Duration(i+1) * time.Second),
			Requests: req,
			Errors:   float64(int(req * errRate * (0.5 + r.Float64()))),
			Latency:  latency * (0.9 + 0.2*r.Float64()),
			P99:      latency * 3 * (0.9 + 0.2*r.Float64()),
		}
	}
	return ps
}

func benchJudge() string {
	blue := judgePoints(judgeSamples, 1, 0.020, 0.002)
	green := judgePoints(judgeSamples, 2, 0.021, 0.002)
	cfg := judge.Config{}
	var v string
	cmp := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v = string(judge.Compare(cfg, blue, green).Result)
		}
	})
	guard := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			judge.Guard(cfg, green)
		}
	})
	logf("judge: Compare %s/op (%s), Guard %s/op", fd(time.Duration(cmp.NsPerOp())), v, fd(time.Duration(guard.NsPerOp())))

	var b strings.Builder
	b.WriteString("## 5. The judge's verdict time\n\n")
	b.WriteString("Reproduce: `go run ./bench -sections judge` (or `go test -run x -bench Compare10k ./judge/`)\n\n")
	fmt.Fprintf(&b, "`judge.Compare` on %d steps per color (noisy request counts, a 0.2%% error rate, latencies around 20ms "+
		"for blue and 21ms for green): the error-rate z-test and the Mann-Whitney U test over all %d per-step latencies of each color, "+
		"with the default settings. `judge.Guard` on the same %d green steps (it reads back from the newest until it has 20 requests). "+
		"Run with `testing.Benchmark`, one core.\n\n", judgeSamples, judgeSamples, judgeSamples)
	b.WriteString("| | runs | time per verdict | allocations | bytes |\n|---|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| Compare, %d steps per color (result: %s) | %d | %s | %d | %d |\n", judgeSamples, v, cmp.N,
		fd(time.Duration(cmp.NsPerOp())), cmp.AllocsPerOp(), cmp.AllocedBytesPerOp())
	fmt.Fprintf(&b, "| Guard, %d green steps | %d | %s | %d | %d |\n\n", judgeSamples, guard.N,
		fd(time.Duration(guard.NsPerOp())), guard.AllocsPerOp(), guard.AllocedBytesPerOp())
	return b.String()
}
