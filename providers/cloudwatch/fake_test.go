package cloudwatch

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// fakeCW speaks CloudWatch's Smithy RPC v2 CBOR protocol, as the SDK version in
// go.mod uses it: POST /service/GraniteServiceVersion20100801/operation/<op>,
// header smithy-protocol: rpc-v2-cbor, CBOR bodies, errors as a CBOR map with
// __type and message plus the awsQueryCompatible X-Amzn-Query-Error header.
//
// It keeps raw samples, as CloudWatch does for the metrics that support
// percentile-like statistics, and answers GetMetricData by computing each
// query's statistic per period from them: Sum, SampleCount, Average, Minimum,
// Maximum, and TC(X:Y) with absolute bounds, counting the samples with
// X < value <= Y (a bound left out is no bound), as the CloudWatch User Guide's
// "CloudWatch statistics definitions" gives it. It refuses a malformed
// statistic as CloudWatch does: HTTP 400, error code ValidationError, one line
// per bad query, "The value <stat> for parameter
// MetricDataQueries.member.<n>.MetricStat.Stat is not a valid statistic."
// (as CloudWatch answered in prometheus-community/yet-another-cloudwatch-exporter
// issues #385 and #1435). Well-formed statistics it does not compute
// (percentiles, trimmed means, percentage bounds) are protocol problems: the
// provider must not send them.
type fakeCW struct {
	*httptest.Server
	mu sync.Mutex
	// samples[series key] are the raw samples of one metric.
	samples map[string][]sample
	fails   []string // injected failures, one per request: throttle, 5xx, denied...
	calls   int
	// pageSize, when set, is the most datapoints one answer holds; the rest
	// follow through NextToken.
	pageSize int
	// omitZeroTC leaves out a TC datapoint that counts no sample, for the
	// reading of CloudWatch in which an empty range has no datapoint.
	omitZeroTC bool
	// forbidden metric names are answered with StatusCode Forbidden.
	forbidden map[string]bool
	bad       []string          // protocol problems the fake saw
	headers   []http.Header     // every request's headers
	requests  []fakeRequest     // every well-formed GetMetricData request
	tokens    map[string]string // NextToken -> the request it continues
}

type sample struct {
	t time.Time
	v float64
}

// fakeRequest is a GetMetricData request as the fake read it.
type fakeRequest struct {
	Start, End time.Time
	NextToken  string
	Queries    []fakeQuery
}

type fakeQuery struct {
	ID, Namespace, MetricName, Stat string
	Dims                            map[string]string
	Period                          int64
}

func newFake() *fakeCW {
	f := &fakeCW{samples: map[string][]sample{}, tokens: map[string]string{}, forbidden: map[string]bool{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func seriesKey(ns, name string, dims map[string]string) string {
	var ds []string
	for k, v := range dims {
		ds = append(ds, k+"="+v)
	}
	slices.Sort(ds)
	return ns + "|" + name + "|" + strings.Join(ds, ",")
}

// put stores raw samples of a metric at t.
func (f *fakeCW) put(ns, name string, dims map[string]string, t time.Time, values ...float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := seriesKey(ns, name, dims)
	for _, v := range values {
		f.samples[k] = append(f.samples[k], sample{t.UTC(), v})
	}
}

func (f *fakeCW) fail(kinds ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = append(f.fails, kinds...)
}

func (f *fakeCW) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeCW) problems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bad)
}

func (f *fakeCW) seen() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeCW) seenHeaders() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.headers)
}

func (f *fakeCW) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.headers = append(f.headers, r.Header.Clone())
	const path = "/service/GraniteServiceVersion20100801/operation/GetMetricData"
	if r.Method != http.MethodPost || r.URL.Path != path {
		f.bad = append(f.bad, r.Method+" "+r.URL.Path)
		writeErr(w, 404, "com.amazonaws.cloudwatch#UnknownOperationException", "", "unknown operation "+r.URL.Path)
		return
	}
	if r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" || r.Header.Get("Content-Type") != "application/cbor" {
		f.bad = append(f.bad, fmt.Sprintf("headers %v", r.Header))
	}
	if r.Header.Get("Authorization") == "" {
		f.bad = append(f.bad, "unsigned request")
	}
	if len(f.fails) > 0 {
		kind := f.fails[0]
		f.fails = f.fails[1:]
		switch kind {
		case "throttle":
			// What clients report of CloudWatch's throttling: HTTP 400, error
			// code Throttling, "Rate exceeded" (the query-compatible code
			// travels in x-amzn-query-error).
			writeErr(w, 400, "com.amazon.coral.availability#ThrottlingException", "Throttling;Sender", "Rate exceeded")
		case "5xx":
			writeErr(w, 500, "com.amazonaws.cloudwatch#InternalServiceFault", "InternalServiceError;Receiver", "internal failure")
		case "denied":
			writeErr(w, 403, "com.amazon.coral.service#AccessDeniedException", "AccessDenied;Sender",
				"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudwatch:GetMetricData")
		case "denied-no-query-header":
			writeErr(w, 403, "com.amazon.coral.service#AccessDeniedException", "", "not authorized")
		case "notfound":
			writeErr(w, 400, "com.amazonaws.cloudwatch#ResourceNotFoundException", "ResourceNotFound;Sender", "no such thing")
		}
		return
	}
	body, _ := io.ReadAll(r.Body)
	v, err := cbor.Decode(body)
	in, ok := v.(cbor.Map)
	if err != nil || !ok {
		f.bad = append(f.bad, fmt.Sprintf("body: %v", err))
		writeErr(w, 400, "com.amazon.coral.validate#ValidationException", "ValidationError;Sender", "bad body")
		return
	}
	req, problems := readRequest(in)
	if len(problems) > 0 {
		writeErr(w, 400, "com.amazon.coral.validate#ValidationException", "ValidationError;Sender", strings.Join(problems, "\n"))
		return
	}
	f.requests = append(f.requests, req)

	// Compute every query's datapoints, oldest first.
	type point struct {
		t time.Time
		v float64
	}
	results := make([][]point, len(req.Queries))
	total := 0
	for i, q := range req.Queries {
		period := time.Duration(q.Period) * time.Second
		if req.Start.UnixNano()%int64(period) != 0 || req.End.UnixNano()%int64(period) != 0 {
			f.bad = append(f.bad, fmt.Sprintf("query %s: %s..%s is not aligned to its period %s", q.ID, req.Start, req.End, period))
		}
		st, _ := parseStat(q.Stat)
		if !st.computable() {
			f.bad = append(f.bad, fmt.Sprintf("query %s: the fake does not compute %s", q.ID, q.Stat))
		}
		raw := f.samples[seriesKey(q.Namespace, q.MetricName, q.Dims)]
		for t := req.Start; t.Before(req.End); t = t.Add(period) {
			var vs []float64
			for _, s := range raw {
				if !s.t.Before(t) && s.t.Before(t.Add(period)) {
					vs = append(vs, s.v)
				}
			}
			if len(vs) == 0 {
				continue // CloudWatch has no datapoint for a period without samples
			}
			v, ok := st.compute(vs)
			if !ok || (f.omitZeroTC && st.kind == "TC" && v == 0) {
				continue
			}
			results[i] = append(results[i], point{t, v})
		}
		total += len(results[i])
	}

	// Page: the datapoints in query order, pageSize at a time.
	from := 0
	fingerprint := req.fingerprint()
	if req.NextToken != "" {
		want, ok := f.tokens[req.NextToken]
		if !ok || want != fingerprint {
			f.bad = append(f.bad, "a NextToken with another request: "+req.NextToken)
			writeErr(w, 400, "com.amazonaws.cloudwatch#InvalidNextToken", "InvalidNextToken;Sender", "The service couldn't process the NextToken.")
			return
		}
		_, off, _ := strings.Cut(strings.TrimPrefix(req.NextToken, "page-"), "-")
		from, _ = strconv.Atoi(off)
	}
	to := total
	if f.pageSize > 0 && from+f.pageSize < total {
		to = from + f.pageSize
	}
	var out cbor.List
	n := 0
	for i, q := range req.Queries {
		var tl, vl cbor.List
		rest := false
		for _, p := range results[i] {
			switch {
			case n >= to:
				rest = true
			case n >= from:
				tl = append(tl, &cbor.Tag{ID: 1, Value: cbor.Float64(float64(p.t.UnixMilli()) / 1e3)})
				vl = append(vl, cbor.Float64(p.v))
			}
			n++
		}
		status := "Complete"
		if rest {
			status = "PartialData"
		}
		if f.forbidden[q.MetricName] {
			status, tl, vl = "Forbidden", nil, nil
		}
		out = append(out, cbor.Map{
			"Id":         cbor.String(q.ID),
			"Label":      cbor.String(q.MetricName),
			"Timestamps": tl,
			"Values":     vl,
			"StatusCode": cbor.String(status),
		})
	}
	res := cbor.Map{"MetricDataResults": out, "Messages": cbor.List{}}
	if to < total {
		token := fmt.Sprintf("page-%d-%d", f.calls, to) // opaque, one per answer
		f.tokens[token] = fingerprint
		res["NextToken"] = cbor.String(token)
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.Write(cbor.Encode(res))
}

var queryID = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// readRequest reads a GetMetricData request and checks it as CloudWatch does;
// problems are the lines of a ValidationError. Only the statistic's line is
// CloudWatch's own wording (see fakeCW); the others are the fake's.
func readRequest(in cbor.Map) (fakeRequest, []string) {
	var req fakeRequest
	var problems []string
	var err error
	if req.Start, err = cbor.AsTime(in["StartTime"]); err != nil {
		problems = append(problems, "The parameter StartTime is required.")
	}
	if req.End, err = cbor.AsTime(in["EndTime"]); err != nil {
		problems = append(problems, "The parameter EndTime is required.")
	}
	req.Start, req.End = req.Start.UTC(), req.End.UTC()
	if !req.End.After(req.Start) {
		problems = append(problems, "The parameter StartTime must be less than the parameter EndTime.")
	}
	req.NextToken = str(in["NextToken"])
	queries, _ := in["MetricDataQueries"].(cbor.List)
	if len(queries) == 0 || len(queries) > 500 {
		problems = append(problems, fmt.Sprintf("The collection MetricDataQueries must have between 1 and 500 members, it has %d.", len(queries)))
	}
	ids := map[string]bool{}
	for i, qv := range queries {
		member := fmt.Sprintf("MetricDataQueries.member.%d", i+1)
		q, _ := qv.(cbor.Map)
		ms, _ := q["MetricStat"].(cbor.Map)
		m, _ := ms["Metric"].(cbor.Map)
		fq := fakeQuery{ID: str(q["Id"]), Namespace: str(m["Namespace"]), MetricName: str(m["MetricName"]), Stat: str(ms["Stat"]), Dims: map[string]string{}}
		if p, err := cbor.AsInt64(ms["Period"]); err == nil {
			fq.Period = p
		}
		dl, _ := m["Dimensions"].(cbor.List)
		for _, dv := range dl {
			d, _ := dv.(cbor.Map)
			fq.Dims[str(d["Name"])] = str(d["Value"])
		}
		switch {
		case !queryID.MatchString(fq.ID):
			problems = append(problems, fmt.Sprintf("The value %s for parameter %s.Id is invalid: it must start with a lower-case letter.", fq.ID, member))
		case ids[fq.ID]:
			problems = append(problems, fmt.Sprintf("The value %s for parameter %s.Id is not unique.", fq.ID, member))
		}
		ids[fq.ID] = true
		if ms == nil || fq.Namespace == "" || fq.MetricName == "" {
			problems = append(problems, fmt.Sprintf("The parameter %s.MetricStat is required.", member))
		}
		for k, v := range fq.Dims {
			if k == "" || v == "" {
				problems = append(problems, fmt.Sprintf("The parameter %s.MetricStat.Metric.Dimensions has a dimension %q=%q with an empty name or value.", member, k, v))
			}
		}
		if p := fq.Period; !(p == 1 || p == 5 || p == 10 || p == 20 || p == 30 || (p > 0 && p%60 == 0)) {
			problems = append(problems, fmt.Sprintf("The value %d for parameter %s.MetricStat.Period is not a valid period.", p, member))
		}
		if _, ok := parseStat(fq.Stat); !ok {
			problems = append(problems, fmt.Sprintf("The value %s for parameter %s.MetricStat.Stat is not a valid statistic.", fq.Stat, member))
		}
		req.Queries = append(req.Queries, fq)
	}
	return req, problems
}

// fingerprint identifies a request but for its NextToken: CloudWatch pages
// only a request repeated unchanged.
func (r fakeRequest) fingerprint() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d-%d", r.Start.UnixNano(), r.End.UnixNano())
	for _, q := range r.Queries {
		fmt.Fprintf(&sb, "|%s %s %s %s %s %d", q.ID, q.Namespace, q.MetricName, seriesKey("", "", q.Dims), q.Stat, q.Period)
	}
	return sb.String()
}

// stat is a statistic as the fake parsed it.
type stat struct {
	kind   string   // Sum, SampleCount, Average, Minimum, Maximum, TC, or another it does not compute
	lo, hi *float64 // TC's absolute bounds, nil for none
}

var (
	statNumber = `\d+(?:\.\d{1,10})?` // up to 10 decimal places
	percentile = regexp.MustCompile(`^p(` + statNumber + `)$`)
	shortStat  = regexp.MustCompile(`^(?:tm|wm|tc|ts)(` + statNumber + `)$`)
	rangeStat  = regexp.MustCompile(`^(TM|WM|TC|TS|PR)\(((?:` + statNumber + `%?)?):((?:` + statNumber + `%?)?)\)$`)
)

// parseStat reads a statistic by the User Guide's syntax ("CloudWatch
// statistics definitions", Syntax): the five basic statistics; pNN; tmNN,
// wmNN, tcNN, tsNN (lower case with one number only); IQM; and TM, WM, TC, TS,
// PR in upper case with a range (X:Y), (:Y) or (X:), both bounds percentages
// (at most 100) or both absolute values, X below Y, up to 10 decimal places.
// Anything else is malformed, as "tc(1:2)", "TC(1)", "TC(2:1)", "TC(1e-3:)"
// and "TC(:)" are.
func parseStat(s string) (stat, bool) {
	switch s {
	case "Sum", "SampleCount", "Average", "Minimum", "Maximum":
		return stat{kind: s}, true
	case "IQM":
		return stat{kind: s}, true
	}
	if m := percentile.FindStringSubmatch(s); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		return stat{kind: "p"}, v <= 100
	}
	if m := shortStat.FindStringSubmatch(s); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		return stat{kind: s[:2]}, v > 0 && v <= 100
	}
	m := rangeStat.FindStringSubmatch(s)
	if m == nil || (m[2] == "" && m[3] == "") {
		return stat{}, false
	}
	st := stat{kind: m[1]}
	pct := strings.HasSuffix(m[2], "%") || strings.HasSuffix(m[3], "%")
	var bounds [2]*float64
	for i, b := range []string{m[2], m[3]} {
		if b == "" {
			continue
		}
		if strings.HasSuffix(b, "%") != pct {
			return stat{}, false // a percentage and an absolute value
		}
		v, _ := strconv.ParseFloat(strings.TrimSuffix(b, "%"), 64)
		if pct && v > 100 {
			return stat{}, false
		}
		bounds[i] = &v
	}
	if bounds[0] != nil && bounds[1] != nil && *bounds[0] >= *bounds[1] {
		return stat{}, false
	}
	if pct {
		if st.kind == "PR" {
			return stat{}, false // a percentile rank's thresholds are values
		}
		st.kind += "%"
		return st, true
	}
	st.lo, st.hi = bounds[0], bounds[1]
	return st, true
}

func (s stat) computable() bool {
	switch s.kind {
	case "Sum", "SampleCount", "Average", "Minimum", "Maximum", "TC":
		return true
	}
	return false
}

// compute is the statistic of one period's samples.
func (s stat) compute(vs []float64) (float64, bool) {
	switch s.kind {
	case "Sum", "Average":
		var sum float64
		for _, v := range vs {
			sum += v
		}
		if s.kind == "Average" {
			return sum / float64(len(vs)), true
		}
		return sum, true
	case "SampleCount":
		return float64(len(vs)), true
	case "Minimum":
		return slices.Min(vs), true
	case "Maximum":
		return slices.Max(vs), true
	case "TC":
		// Absolute bounds: the lower one exclusive, the upper one inclusive.
		n := 0
		for _, v := range vs {
			if (s.lo == nil || v > *s.lo) && (s.hi == nil || v <= *s.hi) {
				n++
			}
		}
		return float64(n), true
	}
	return math.NaN(), false
}

func writeErr(w http.ResponseWriter, status int, typ, query, msg string) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if query != "" {
		w.Header().Set("X-Amzn-Query-Error", query)
	}
	w.WriteHeader(status)
	w.Write(cbor.Encode(cbor.Map{"__type": cbor.String(typ), "message": cbor.String(msg)}))
}

func str(v cbor.Value) string {
	s, _ := v.(cbor.String)
	return string(s)
}
