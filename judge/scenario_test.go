package judge_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/judge/scenario"
	"github.com/cutoverhq/cutover/verdict"
)

// outcome is how one scenario ended under one judge.
type outcome struct {
	result   verdict.Result
	failedAt int // step of the Fail, or -1
	v        verdict.Verdict
}

// guard judges a scenario as a soak does: one step per interval, looking
// after every one, stopping at the first Fail, then the soak's verdict.
func guard(t testing.TB, s scenario.Scenario, cfg judge.Config) outcome {
	steps, gaps := s.Generate()
	m, err := judge.New(cfg, judge.Plan{Mode: judge.Soak, Steps: s.Steps})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		for _, g := range gaps {
			if g.To.Equal(st.End) {
				m.Gap(g)
			}
		}
		m.Add(st)
		if m.Failed() {
			return outcome{verdict.Fail, i, m.Verdict()}
		}
	}
	v := m.Verdict()
	return outcome{v.Result, -1, v}
}

// compare judges a scenario as an analysis step without earlyStop does: the
// whole window, then its verdict (a Fail on the way is final).
func compare(t testing.TB, s scenario.Scenario, cfg judge.Config) outcome {
	steps, _ := s.Generate()
	m, err := judge.New(cfg, judge.Plan{Mode: judge.Comparison, Steps: s.Steps})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		m.Add(st)
		if m.Failed() {
			return outcome{verdict.Fail, i, m.Verdict()}
		}
	}
	v := m.Verdict()
	return outcome{v.Result, -1, v}
}

// TestLabelledScenarios is the labelled set of judge/scenario judged by the
// default settings, both as a soak guard and as a comparison:
//
//   - no bad green passes, and nothing passes on bad or missing data;
//   - at most 1% of good greens are failed (the configured alpha);
//   - a regression large for its traffic is failed, not only left
//     inconclusive;
//   - counter resets are named in the verdict.
func TestLabelledScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	all := scenario.Labelled()
	for i := range all {
		all[i].Seed += seedBase(t)
	}
	if len(all) < 300 {
		t.Fatalf("the labelled set has %d scenarios, want at least 300", len(all))
	}
	cfg := judge.Config{}
	for _, mode := range []struct {
		name  string
		judge func(testing.TB, scenario.Scenario, judge.Config) outcome
	}{{"guard", guard}, {"comparison", compare}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			outs := make([]outcome, len(all))
			var wg sync.WaitGroup
			sem := make(chan struct{}, 2)
			for i, s := range all {
				if mode.name == "comparison" && s.Faults.GapLen > 0 {
					continue // a comparison reads the span late but whole: no gap to judge
				}
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					outs[i] = mode.judge(t, s, cfg)
				})
			}
			wg.Wait()
			table := map[string]int{}
			var good, goodFailed int
			for i, s := range all {
				o := outs[i]
				if o.result == "" {
					continue
				}
				table[fmt.Sprintf("%-8s -> %s", s.Label, o.result)]++
				switch {
				case s.Label != scenario.Good && o.result == verdict.Pass:
					t.Errorf("%s (%s) passed: %s", s.Name, s.Label, o.v.Summary)
				case s.Label == scenario.Good:
					good++
					if o.result == verdict.Fail {
						goodFailed++
						t.Logf("good green failed: %s: %s", s.Name, o.v.Summary)
					}
				}
				if s.Faults.Resets > 0 && !strings.Contains(strings.Join(o.v.Notes, "\n"), "counter reset") && o.result != verdict.Fail {
					t.Errorf("%s: the verdict does not name the counter resets: %v", s.Name, o.v.Notes)
				}
				if clearlyDetectable(s) && o.result != verdict.Fail {
					t.Errorf("%s: %s, want Fail: the regression is large for its traffic: %s", s.Name, o.result, o.v.Summary)
				}
			}
			if float64(goodFailed) > 0.01*float64(good) {
				t.Errorf("%d of %d good greens failed, want at most 1%%", goodFailed, good)
			}
			keys := make([]string, 0, len(table))
			for k := range table {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				t.Logf("%s: %d", k, table[k])
			}
		})
	}
}

// clearlyDetectable is a bad green that any sound judge catches in its
// window: at least 50 requests/s to green and a large regression.
func clearlyDetectable(s scenario.Scenario) bool {
	if s.Label != scenario.Bad || s.Rate*s.Share < 50 || s.Faults != (scenario.Faults{}) {
		return false
	}
	switch {
	case s.GreenErrors != nil && *s.GreenErrors-s.BlueErrors >= 0.03:
		return true
	case s.Slower >= 2, s.TailShare >= 0.02 && s.TailFactor >= 25, s.LateSlower >= 3:
		return true
	}
	return false
}

// TestBrokenDataIsNeverMereLackOfTraffic: a soak may go on from a verdict
// that is only short of traffic (onInconclusive: continue), so broken or
// missing data must never be reported as that.
func TestBrokenDataIsNeverMereLackOfTraffic(t *testing.T) {
	for _, s := range scenario.Labelled() {
		if s.Label != scenario.BadData {
			continue
		}
		o := guard(t, s, judge.Config{})
		if o.v.Underpowered {
			t.Errorf("%s: %s marked only short of traffic: %s", s.Name, o.result, o.v.Summary)
		}
	}
}
