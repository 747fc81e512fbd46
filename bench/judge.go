package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/judge/scenario"
)

// Section 5: how long the judge takes on a comparison of 10,000 one-second
// steps (about 2h47m), far more than a window or a soak is expected to hold.
// testing.Benchmark runs each measurement as `go test -bench` would, without
// the test binary.

const (
	judgeSteps = 10000
	judgeRate  = 200 // requests/s per color
)

func benchJudge() string {
	s := scenario.Scenario{Rate: 2 * judgeRate, Share: 0.5, Steps: judgeSteps, BlueErrors: 0.002,
		Median: 20 * time.Millisecond, Sigma: 0.3, Seed: 1}
	steps, _ := s.Generate()
	plan := judge.Plan{Mode: judge.Comparison, Steps: judgeSteps}
	fill := func() *judge.Monitor {
		m, err := judge.New(judge.Config{}, plan)
		if err != nil {
			panic(err) // the default config is valid
		}
		for _, st := range steps {
			m.Add(st)
		}
		return m
	}
	full := fill()
	v := full.Verdict()
	state, err := full.MarshalJSON()
	if err != nil {
		panic(err)
	}

	// Every step of a whole comparison: what a soak guard does every interval.
	var failed bool
	perStep := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, _ := judge.New(judge.Config{}, plan)
			for _, st := range steps {
				m.Add(st)
				failed = m.Failed()
			}
		}
	})
	verdictTime := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v = full.Verdict()
		}
	})
	marshal := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			state, _ = full.MarshalJSON()
		}
	})
	stepNs := float64(perStep.NsPerOp()) / judgeSteps
	logf("judge: Add+Failed %s/step (failed: %t), Verdict %s on %d steps (%s), MarshalJSON %s (%d bytes)",
		fd(time.Duration(stepNs)), failed, fd(time.Duration(verdictTime.NsPerOp())), judgeSteps, v.Result,
		fd(time.Duration(marshal.NsPerOp())), len(state))

	var b strings.Builder
	b.WriteString("## 5. The judge's verdict time\n\n")
	b.WriteString("Reproduce: `go run ./bench -sections judge`\n\n")
	fmt.Fprintf(&b, "A comparison (`judge.Monitor`, default config: error rate and the p50, p95 and p99 latency) of "+
		"%d one-second steps, about %s, at %d requests/s to each color, a 0.2%% error rate on both and the same "+
		"latency (log-normal, median 20ms, sigma 0.3, in the router's 85 histogram buckets), made by `judge/scenario`. "+
		"*Add + Failed* is what a soak guard does every interval, measured over whole comparisons of %d steps and given "+
		"per step. *Verdict* is the final verdict on all %d steps (its result: %s); a comparison also asks it after "+
		"every read. *MarshalJSON* is the Monitor's state, which the analysis saves with every heartbeat (%d bytes "+
		"here). Run with `testing.Benchmark`, one core; time and allocations are per operation.\n\n",
		judgeSteps, strings.TrimSuffix((judgeSteps*time.Second).Round(time.Minute).String(), "0s"), judgeRate, judgeSteps, judgeSteps, v.Result, len(state))
	b.WriteString("| | runs | time | allocations | bytes |\n|---|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| Add + Failed, per step (of %d) | %d | %s | %.2f | %.0f |\n", judgeSteps, perStep.N*judgeSteps,
		fd(time.Duration(stepNs)), float64(perStep.AllocsPerOp())/judgeSteps, float64(perStep.AllocedBytesPerOp())/judgeSteps)
	fmt.Fprintf(&b, "| Add + Failed, a whole comparison of %d steps | %d | %s | %d | %d |\n", judgeSteps, perStep.N,
		fd(time.Duration(perStep.NsPerOp())), perStep.AllocsPerOp(), perStep.AllocedBytesPerOp())
	fmt.Fprintf(&b, "| Verdict on %d steps | %d | %s | %d | %d |\n", judgeSteps, verdictTime.N,
		fd(time.Duration(verdictTime.NsPerOp())), verdictTime.AllocsPerOp(), verdictTime.AllocedBytesPerOp())
	fmt.Fprintf(&b, "| MarshalJSON of the state after %d steps | %d | %s | %d | %d |\n\n", judgeSteps, marshal.N,
		fd(time.Duration(marshal.NsPerOp())), marshal.AllocsPerOp(), marshal.AllocedBytesPerOp())
	return b.String()
}
