package cloudwatch

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// fakeCW speaks CloudWatch's Smithy RPC v2 CBOR protocol, as the SDK version in
// go.mod uses it: POST /service/GraniteServiceVersion20100801/operation/<op>,
// header smithy-protocol: rpc-v2-cbor, CBOR bodies, errors as a CBOR map with
// __type and message plus the awsQueryCompatible X-Amzn-Query-Error header.
// It answers GetMetricData from series kept in memory.
type fakeCW struct {
	*httptest.Server
	mu sync.Mutex
	// data[targetGroup][metric/stat][period start] = value
	data  map[string]map[string]map[time.Time]float64
	fails []string // injected failures, one per request: throttle, 5xx, denied
	calls int
	lb    string
	bad   []string // protocol problems the fake saw
}

func newFake(lb string) *fakeCW {
	f := &fakeCW{data: map[string]map[string]map[time.Time]float64{}, lb: lb}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *fakeCW) set(tg, metric, stat string, t time.Time, v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.data[tg] == nil {
		f.data[tg] = map[string]map[time.Time]float64{}
	}
	k := metric + "/" + stat
	if f.data[tg][k] == nil {
		f.data[tg][k] = map[time.Time]float64{}
	}
	f.data[tg][k][t.UTC()] = v
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

func (f *fakeCW) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
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
		writeErr(w, 400, "com.amazonaws.cloudwatch#InvalidParameterValueException", "InvalidParameterValue;Sender", "bad body")
		return
	}
	start, end := timeOf(in["StartTime"]), timeOf(in["EndTime"])
	var results cbor.List
	queries, _ := in["MetricDataQueries"].(cbor.List)
	for _, qv := range queries {
		q, _ := qv.(cbor.Map)
		id := str(q["Id"])
		ms, _ := q["MetricStat"].(cbor.Map)
		m, _ := ms["Metric"].(cbor.Map)
		stat := str(ms["Stat"])
		dims := map[string]string{}
		dl, _ := m["Dimensions"].(cbor.List)
		for _, dv := range dl {
			d, _ := dv.(cbor.Map)
			dims[str(d["Name"])] = str(d["Value"])
		}
		if str(m["Namespace"]) != "AWS/ApplicationELB" || dims["LoadBalancer"] != f.lb || len(dims) != 2 {
			f.bad = append(f.bad, fmt.Sprintf("query %s: namespace %s dims %v", id, str(m["Namespace"]), dims))
		}
		series := f.data[dims["TargetGroup"]][str(m["MetricName"])+"/"+stat]
		var ts []time.Time
		for t := range series {
			if !t.Before(start) && t.Before(end) {
				ts = append(ts, t)
			}
		}
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		var tl, vl cbor.List
		for _, t := range ts {
			tl = append(tl, &cbor.Tag{ID: 1, Value: cbor.Float64(float64(t.UnixMilli()) / 1e3)})
			vl = append(vl, cbor.Float64(series[t]))
		}
		results = append(results, cbor.Map{
			"Id":         cbor.String(id),
			"Label":      cbor.String(str(m["MetricName"])),
			"Timestamps": tl,
			"Values":     vl,
			"StatusCode": cbor.String("Complete"),
		})
	}
	out := cbor.Map{"MetricDataResults": results, "Messages": cbor.List{}}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.Write(cbor.Encode(out))
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

func timeOf(v cbor.Value) time.Time {
	tag, ok := v.(*cbor.Tag)
	if !ok || tag.ID != 1 {
		return time.Time{}
	}
	switch x := tag.Value.(type) {
	case cbor.Float64:
		return time.UnixMilli(int64(float64(x) * 1e3)).UTC()
	case cbor.Uint:
		return time.Unix(int64(x), 0).UTC()
	}
	return time.Time{}
}
