package starter

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/verdict"
	"github.com/cutoverhq/cutover/workflows"
)

// The verdicts below are what the judge gives for a soak guard of 60
// intervals (judge.Plan{Mode: judge.Soak, Steps: 60}, latency judged at p99
// alone), with blue taking nine times green's traffic.

// passVerdict: a soak of 10% green that passed, with two intervals the guard
// did not judge on time (too few in a row to be a gap) and an app metric.
func passVerdict() verdict.Verdict {
	return verdict.Verdict{
		Result:    verdict.Pass,
		Summary:   "green is within every margin (3 metrics)",
		Judged:    58,
		Intervals: 60,
		Metrics: []verdict.Metric{
			{Name: "error rate", Result: verdict.Pass, Critical: true,
				Reason: "green 0.20% of 116,000, blue 0.20% of 1,044,000: at most +0.06 points worse with 99% confidence, within the allowed +0.40 points; could detect +0.08 points",
				Values: []verdict.Value{{Name: "green_requests", Value: 116000}, {Name: "green_errors", Value: 232}, {Name: "green_rate", Value: 0.002},
					{Name: "blue_requests", Value: 1044000}, {Name: "blue_errors", Value: 2088}, {Name: "blue_rate", Value: 0.002},
					{Name: "change", Value: 0}, {Name: "margin", Value: 0.004}, {Name: "p_value", Value: 1}, {Name: "alpha", Value: 0.0033333333333333335},
					{Name: "upper_bound", Value: 0.0006120031309944096}, {Name: "detectable", Value: 0.0008092512810550226}},
				Detectable: "+0.08 points"},
			{Name: "latency p99", Result: verdict.Pass, Critical: true,
				Reason: "green's p99 194 ms, blue's 194 ms: 0.19% of green's requests took over 304 ms (+46%), against 0.78% of blue's over 208 ms, so green's p99 is at most +46% slower with 99% confidence, within +50%; could detect +5%",
				Values: []verdict.Value{{Name: "green_p99_ms", Value: 193.52254121228805}, {Name: "blue_p99_ms", Value: 193.52254121228768},
					{Name: "slowdown", Value: 1.7763568394002505e-15}, {Name: "max_slowdown", Value: 0.5},
					{Name: "green_requests", Value: 115999.99999999996}, {Name: "blue_requests", Value: 1044000},
					{Name: "p_value", Value: 1}, {Name: "alpha", Value: 0.0033333333333333335},
					{Name: "threshold_ms", Value: 207.9650567184069}, {Name: "detectable_slowdown", Value: 0.04770841904018752}},
				Detectable: "+5% at p99"},
			{Name: "checkout conversion", Result: verdict.Pass,
				Reason: "green 30.00% of 116,000, blue 30.00% of 1,044,000: at most -2% worse with 99% confidence, within the allowed -5%; could detect -2%",
				Values: []verdict.Value{{Name: "green_requests", Value: 116000}, {Name: "green_events", Value: 34800}, {Name: "green_rate", Value: 0.3},
					{Name: "blue_requests", Value: 1044000}, {Name: "blue_events", Value: 313200}, {Name: "blue_rate", Value: 0.3},
					{Name: "change", Value: 0}, {Name: "margin", Value: 0.015}, {Name: "p_value", Value: 1}, {Name: "alpha", Value: 0.0033333333333333335},
					{Name: "upper_bound", Value: 0.005284489555994476}, {Name: "detectable", Value: 0.007065608645583849}},
				Detectable: "-2%"},
		},
	}
}

// underpoweredVerdict: a soak of 1% green too short for its traffic. Every
// interval was judged and nothing failed; the data could not yet show green
// within the margins.
func underpoweredVerdict() verdict.Verdict {
	return verdict.Verdict{
		Result:       verdict.Inconclusive,
		Summary:      "error rate: not enough traffic to see a +0.40 points change in error rate (green 0.20% of 1,200, blue 0.20% of 10,800); could detect +2.17 points; about 8,200 more green requests needed; latency p99: not enough traffic to see a +50% slowdown at p99 (green's p99 194 ms, blue's 194 ms); could detect +60%; about 1,800 more green requests needed",
		Underpowered: true,
		Judged:       60,
		Intervals:    60,
		Metrics: []verdict.Metric{
			{Name: "error rate", Result: verdict.Inconclusive, Critical: true,
				Reason: "not enough traffic to see a +0.40 points change in error rate (green 0.20% of 1,200, blue 0.20% of 10,800); could detect +2.17 points; about 8,200 more green requests needed",
				Values: []verdict.Value{{Name: "green_requests", Value: 1200}, {Name: "green_errors", Value: 2.4000000000000012}, {Name: "green_rate", Value: 0.002000000000000001},
					{Name: "blue_requests", Value: 10800}, {Name: "blue_errors", Value: 21.599999999999984}, {Name: "blue_rate", Value: 0.0019999999999999983},
					{Name: "change", Value: 2.6020852139652106e-18}, {Name: "margin", Value: 0.004}, {Name: "p_value", Value: 1}, {Name: "alpha", Value: 0.005},
					{Name: "upper_bound", Value: 0.019290491092349704}, {Name: "detectable", Value: 0.021669873906149405}, {Name: "needed_green_requests", Value: 8138}},
				Detectable: "+2.17 points"},
			{Name: "latency p99", Result: verdict.Inconclusive, Critical: true,
				Reason: "not enough traffic to see a +50% slowdown at p99 (green's p99 194 ms, blue's 194 ms); could detect +60%; about 1,800 more green requests needed",
				Values: []verdict.Value{{Name: "green_p99_ms", Value: 193.52254121228765}, {Name: "blue_p99_ms", Value: 193.52254121228833},
					{Name: "slowdown", Value: -3.4416913763379853e-15}, {Name: "max_slowdown", Value: 0.5},
					{Name: "green_requests", Value: 1199.9999999999998}, {Name: "blue_requests", Value: 10800},
					{Name: "p_value", Value: 1}, {Name: "alpha", Value: 0.005}, {Name: "threshold_ms", Value: 207.9650567184069},
					{Name: "detectable_slowdown", Value: 0.603534874949089}, {Name: "needed_green_requests", Value: 1739}},
				Detectable: "+60% at p99"},
		},
	}
}

// failVerdict: the guard failed green half way through its soak, after a
// green pod restarted and its counter began again.
func failVerdict() verdict.Verdict {
	return verdict.Verdict{
		Result:    verdict.Fail,
		Summary:   "error rate failed: green's error rate is higher than blue's (green 3.00% of 60,000, blue 0.20% of 540,000, always-valid p<0.0001 < 0.005)",
		Judged:    30,
		Intervals: 30,
		Notes:     []string{`counter reset: http_requests_total{color="green",code="500"} went from 1843 to 12 at 10:03:30`},
		Metrics: []verdict.Metric{
			{Name: "error rate", Result: verdict.Fail, Critical: true,
				Reason: "green's error rate is higher than blue's (green 3.00% of 60,000, blue 0.20% of 540,000, always-valid p<0.0001 < 0.005)",
				Values: []verdict.Value{{Name: "green_requests", Value: 60000}, {Name: "green_errors", Value: 1800}, {Name: "green_rate", Value: 0.03},
					{Name: "blue_requests", Value: 540000}, {Name: "blue_errors", Value: 1080}, {Name: "blue_rate", Value: 0.002},
					{Name: "change", Value: 0.027999999999999997}, {Name: "margin", Value: 0.004}, {Name: "p_value", Value: 0}, {Name: "alpha", Value: 0.005}}},
			{Name: "latency p99", Result: verdict.Pass, Critical: true,
				Reason: "green's p99 194 ms, blue's 194 ms: 0.19% of green's requests took over 304 ms (+46%), against 0.78% of blue's over 208 ms, so green's p99 is at most +46% slower with 99% confidence, within +50%; could detect +7%",
				Values: []verdict.Value{{Name: "green_p99_ms", Value: 193.5225412122918}, {Name: "blue_p99_ms", Value: 193.52254121228867},
					{Name: "slowdown", Value: 1.5987211554602254e-14}, {Name: "max_slowdown", Value: 0.5},
					{Name: "green_requests", Value: 60000.00000000003}, {Name: "blue_requests", Value: 540000},
					{Name: "p_value", Value: 1}, {Name: "alpha", Value: 0.005}, {Name: "threshold_ms", Value: 207.9650567184069},
					{Name: "detectable_slowdown", Value: 0.06820463250231934}},
				Detectable: "+7% at p99"},
		},
	}
}

func TestPrintVerdict(t *testing.T) {
	for _, c := range []struct {
		name string
		v    verdict.Verdict
		want string
	}{
		{"pass with coverage", passVerdict(), `verdict: Pass: green is within every margin (3 metrics)
  guard judged 58 of 60 intervals
  error rate: Pass, critical: green 0.20% of 116,000, blue 0.20% of 1,044,000: at most +0.06 points worse with 99% confidence, within the allowed +0.40 points; could detect +0.08 points
    green_requests=1.16e+05 green_errors=232 green_rate=0.002 blue_requests=1.044e+06 blue_errors=2088 blue_rate=0.002 change=0 margin=0.004 p_value=1 alpha=0.003333 upper_bound=0.000612 detectable=0.0008093
  latency p99: Pass, critical: green's p99 194 ms, blue's 194 ms: 0.19% of green's requests took over 304 ms (+46%), against 0.78% of blue's over 208 ms, so green's p99 is at most +46% slower with 99% confidence, within +50%; could detect +5%
    green_p99_ms=193.5 blue_p99_ms=193.5 slowdown=1.776e-15 max_slowdown=0.5 green_requests=1.16e+05 blue_requests=1.044e+06 p_value=1 alpha=0.003333 threshold_ms=208 detectable_slowdown=0.04771
  checkout conversion: Pass: green 30.00% of 116,000, blue 30.00% of 1,044,000: at most -2% worse with 99% confidence, within the allowed -5%; could detect -2%
    green_requests=1.16e+05 green_events=3.48e+04 green_rate=0.3 blue_requests=1.044e+06 blue_events=3.132e+05 blue_rate=0.3 change=0 margin=0.015 p_value=1 alpha=0.003333 upper_bound=0.005284 detectable=0.007066
`},
		{"inconclusive for lack of traffic", underpoweredVerdict(), `verdict: Inconclusive: error rate: not enough traffic to see a +0.40 points change in error rate (green 0.20% of 1,200, blue 0.20% of 10,800); could detect +2.17 points; about 8,200 more green requests needed; latency p99: not enough traffic to see a +50% slowdown at p99 (green's p99 194 ms, blue's 194 ms); could detect +60%; about 1,800 more green requests needed
  guard judged 60 of 60 intervals
  inconclusive for lack of traffic alone: nothing failed and no data was missing
  error rate: Inconclusive, critical: not enough traffic to see a +0.40 points change in error rate (green 0.20% of 1,200, blue 0.20% of 10,800); could detect +2.17 points; about 8,200 more green requests needed
    green_requests=1200 green_errors=2.4 green_rate=0.002 blue_requests=1.08e+04 blue_errors=21.6 blue_rate=0.002 change=2.602e-18 margin=0.004 p_value=1 alpha=0.005 upper_bound=0.01929 detectable=0.02167 needed_green_requests=8138
  latency p99: Inconclusive, critical: not enough traffic to see a +50% slowdown at p99 (green's p99 194 ms, blue's 194 ms); could detect +60%; about 1,800 more green requests needed
    green_p99_ms=193.5 blue_p99_ms=193.5 slowdown=-3.442e-15 max_slowdown=0.5 green_requests=1200 blue_requests=1.08e+04 p_value=1 alpha=0.005 threshold_ms=208 detectable_slowdown=0.6035 needed_green_requests=1739
`},
		{"fail with a counter reset", failVerdict(), `verdict: Fail: error rate failed: green's error rate is higher than blue's (green 3.00% of 60,000, blue 0.20% of 540,000, always-valid p<0.0001 < 0.005)
  guard judged 30 of 30 intervals
  note: counter reset: http_requests_total{color="green",code="500"} went from 1843 to 12 at 10:03:30
  error rate: Fail, critical: green's error rate is higher than blue's (green 3.00% of 60,000, blue 0.20% of 540,000, always-valid p<0.0001 < 0.005)
    green_requests=6e+04 green_errors=1800 green_rate=0.03 blue_requests=5.4e+05 blue_errors=1080 blue_rate=0.002 change=0.028 margin=0.004 p_value=0 alpha=0.005
  latency p99: Pass, critical: green's p99 194 ms, blue's 194 ms: 0.19% of green's requests took over 304 ms (+46%), against 0.78% of blue's over 208 ms, so green's p99 is at most +46% slower with 99% confidence, within +50%; could detect +7%
    green_p99_ms=193.5 blue_p99_ms=193.5 slowdown=1.599e-14 max_slowdown=0.5 green_requests=6e+04 blue_requests=5.4e+05 p_value=1 alpha=0.005 threshold_ms=208 detectable_slowdown=0.0682
`},
	} {
		var b bytes.Buffer
		printVerdict(&b, c.v)
		if got := b.String(); got != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.name, got, c.want)
		}
	}
}

func TestMetricReasonSaysWhatItCouldDetect(t *testing.T) {
	for _, c := range []struct {
		m    verdict.Metric
		want string
	}{
		// The judge's reasons for a Pass and for too little traffic say it.
		{verdict.Metric{Reason: "green 0.20% of 116,000, blue 0.20% of 1,044,000: at most +0.06 points worse with 99% confidence, within the allowed +0.40 points; could detect +0.08 points", Detectable: "+0.08 points"},
			"green 0.20% of 116,000, blue 0.20% of 1,044,000: at most +0.06 points worse with 99% confidence, within the allowed +0.40 points; could detect +0.08 points"},
		// A latency reason says it without the quantile.
		{verdict.Metric{Reason: "not enough traffic to see a +50% slowdown at p99 (green's p99 194 ms, blue's 194 ms); could detect +60%", Detectable: "+60% at p99"},
			"not enough traffic to see a +50% slowdown at p99 (green's p99 194 ms, blue's 194 ms); could detect +60%"},
		// Green that turned worse lately does not.
		{verdict.Metric{Reason: "the window as a whole is within the margin, but its newest third is not (green 0.90%, blue 0.20%): green may have turned worse", Detectable: "+0.31 points"},
			"the window as a whole is within the margin, but its newest third is not (green 0.90%, blue 0.20%): green may have turned worse; could detect +0.31 points"},
		{verdict.Metric{Detectable: "+21% at p99"}, "could detect +21% at p99"},
		// Nothing could be detected: nothing to add.
		{verdict.Metric{Reason: "green has no data"}, "green has no data"},
	} {
		if got := metricReason(c.m); got != c.want {
			t.Errorf("reason %q, detectable %q:\n got %q\nwant %q", c.m.Reason, c.m.Detectable, got, c.want)
		}
	}
	var b bytes.Buffer
	printVerdict(&b, verdict.Verdict{Result: verdict.Inconclusive, Summary: "error rate: the window as a whole is within the margin, but its newest third is not",
		Metrics: []verdict.Metric{{Name: "error rate", Result: verdict.Inconclusive, Critical: true,
			Reason:     "the window as a whole is within the margin, but its newest third is not (green 0.90%, blue 0.20%): green may have turned worse",
			Values:     []verdict.Value{{Name: "recent_change", Value: 0.007}},
			Detectable: "+0.31 points"}}})
	if want := "  error rate: Inconclusive, critical: the window as a whole is within the margin, but its newest third is not (green 0.90%, blue 0.20%): green may have turned worse; could detect +0.31 points\n    recent_change=0.007\n"; !strings.HasSuffix(b.String(), want) {
		t.Errorf("status:\n%s\nwant it to end with:\n%s", b.String(), want)
	}
	// Not a soak guard's verdict (a comparison): no coverage line, no notes.
	if strings.Contains(b.String(), "guard judged") || strings.Contains(b.String(), "note:") || strings.Contains(b.String(), "lack of traffic") {
		t.Errorf("a comparison's verdict:\n%s", b.String())
	}
}

func TestPrintStatusShowsTheVerdict(t *testing.T) {
	st := liveStatus(t, 5, live0.Add(40*time.Second))
	st.Stage, st.Outcome, st.EndedAt = workflows.StageDone, workflows.OutcomeRolledBack, live0.Add(6*time.Minute)
	st.Reason = "soak guard failed: " + failVerdict().Summary
	v := failVerdict()
	st.LastVerdict = &v
	var b bytes.Buffer
	printStatus(&b, st, live0.Add(time.Hour))
	out := b.String()
	for _, want := range []string{
		"verdict: Fail: error rate failed: green's error rate is higher than blue's",
		"\n  guard judged 30 of 30 intervals\n",
		"\n  note: counter reset: http_requests_total{color=\"green\",code=\"500\"} went from 1843 to 12 at 10:03:30\n",
		"\n  error rate: Fail, critical: green's error rate is higher than blue's",
		"green_rate=0.03", "p_value=0",
		"; could detect +7%\n",
		"\nsteps:\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// The verdict's lines come before the steps.
	if strings.Index(out, "note: counter reset") > strings.Index(out, "steps:") {
		t.Errorf("the verdict is not above the steps:\n%s", out)
	}
}

func TestPrintProgressVerdictLine(t *testing.T) {
	st := liveStatus(t, 4, live0.Add(2*time.Second))
	prev := st
	v := underpoweredVerdict()
	st.LastVerdict, st.Waiting = &v, "a decision on an inconclusive soak guard"
	var b bytes.Buffer
	printProgress(&b, &prev, st)
	out := b.String()
	for _, want := range []string{
		"verdict: Inconclusive: error rate: not enough traffic",
		"needed_green_requests=8138",
		"; guard judged 60 of 60 intervals; inconclusive for lack of traffic alone: nothing failed and no data was missing\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	// The notes are said once.
	v = failVerdict()
	st.LastVerdict = &v
	b.Reset()
	printProgress(&b, &prev, st)
	if out := b.String(); strings.Count(out, "counter reset") != 1 || !strings.Contains(out, "; guard judged 30 of 30 intervals\n") {
		t.Errorf("progress of a Fail:\n%s", out)
	}
}
