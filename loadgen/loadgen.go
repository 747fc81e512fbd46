// Package loadgen is a bounded HTTP load generator for targets on this
// machine. End-to-end tests and `make demo` use it to prove that a release
// drops no request: it sends GET requests at a fixed rate, records what
// answered each one (the status, the "version" field of a JSON body, the
// X-Cutover-Color-Served header) and sums them up.
//
// Safety rule: load only ever goes to this machine. Run refuses a URL whose
// host is not a loopback address (127.0.0.0/8, ::1 or localhost), dials only
// loopback addresses, ignores proxy settings and follows no redirect.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// HeaderColorServed is the response header that names the color that served a
// request; Result.Color and Summary.ByColor come from it.
const HeaderColorServed = "X-Cutover-Color-Served"

// Defaults for the zero values of Config.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultConcurrency = 32
)

// maxBody bounds how much of a response body is read (to find "version").
const maxBody = 64 << 10

// ErrNotLoopback is returned (wrapped) by Run for a URL whose host is not a
// loopback address.
var ErrNotLoopback = errors.New("loadgen: refusing a non-loopback target: load only ever goes to this machine (127.0.0.0/8, ::1, localhost)")

// Config is one run's target and bounds.
type Config struct {
	URL         string        // http:// or https:// URL on a loopback host
	Rate        int           // requests per second, > 0
	Duration    time.Duration // how long to send; 0 = until ctx is done
	MaxRequests int           // hard cap on requests sent, > 0
	Timeout     time.Duration // per request; 0 = DefaultTimeout
	Concurrency int           // most requests in flight; 0 = DefaultConcurrency
}

// Result is one request's outcome.
type Result struct {
	Start   time.Time
	Latency time.Duration // from sending to reading the whole body (or the error)
	Status  int           // 0 when Err is set
	Err     error         // a connection error, a timeout or a failed body read
	Version string        // the "version" field of a JSON body, if any
	Color   string        // the X-Cutover-Color-Served header, if any
}

// OK reports whether the request answered 2xx.
func (r Result) OK() bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

// Summary sums up a run.
type Summary struct {
	Sent       int            // requests sent: OK + Failed + ConnErrors
	OK         int            // answered 2xx
	Failed     int            // answered, but not 2xx (redirects included: none is followed)
	ConnErrors int            // no answer: refused, reset, timed out
	ByVersion  map[string]int // answers by their body's "version" field, whatever their status
	ByColor    map[string]int // answers by their X-Cutover-Color-Served header
	P50, P99   time.Duration  // latency percentiles of the answered requests
	Elapsed    time.Duration  // from the first request to the end of the last

	// Skipped counts the requests not sent because the target was too slow
	// to keep Rate within Concurrency (see Run); they are not in Sent.
	Skipped int
}

// String renders the summary on one line, e.g.
//
//	sent=5000 ok=5000 failed=0 conn_errors=0 p50=1.2ms p99=4ms by_version=1.0.0:4500,2.0.0:500 by_color=blue:4500,green:500 elapsed=25s
//
// Versions and colors are sorted; by_color is left out when no answer named a
// color, skipped when none was skipped.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent=%d ok=%d failed=%d conn_errors=%d p50=%s p99=%s by_version=%s",
		s.Sent, s.OK, s.Failed, s.ConnErrors, FormatDuration(s.P50), FormatDuration(s.P99), FormatCounts(s.ByVersion))
	if len(s.ByColor) > 0 {
		b.WriteString(" by_color=" + FormatCounts(s.ByColor))
	}
	if s.Skipped > 0 {
		fmt.Fprintf(&b, " skipped=%d", s.Skipped)
	}
	b.WriteString(" elapsed=" + FormatDuration(s.Elapsed))
	return b.String()
}

// FormatCounts renders counts as key:n pairs sorted by key, "-" when empty.
func FormatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + strconv.Itoa(m[k])
	}
	return strings.Join(parts, ",")
}

// FormatDuration rounds d to two or three significant figures: 1.2ms, 4ms,
// 25.3ms, 350µs, 2.53s.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		d = d.Round(100 * time.Millisecond)
	case d >= time.Second:
		d = d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		d = d.Round(time.Millisecond)
	case d >= time.Millisecond:
		d = d.Round(100 * time.Microsecond)
	case d >= 100*time.Microsecond:
		d = d.Round(time.Microsecond)
	case d >= time.Microsecond:
		d = d.Round(10 * time.Nanosecond)
	}
	return d.String()
}

// CheckURL returns an error wrapping ErrNotLoopback unless raw is an http or
// https URL whose host is a loopback address (127.0.0.0/8, ::1) or localhost.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("loadgen: bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("loadgen: URL %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("loadgen: URL %q has no host", raw)
	}
	if !loopbackHost(host) {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, raw)
	}
	return u, nil
}

// loopbackHost reports whether host (no port, no brackets) is a loopback IP
// literal or the name localhost.
func loopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // an IPv6 zone: fe80::1%lo
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dialLoopbackOnly refuses, at connect time, any address that is not
// loopback: "localhost" could resolve elsewhere on an odd machine.
func dialLoopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: dialing %s", ErrNotLoopback, address)
	}
	return nil
}

func (cfg *Config) check() (*url.URL, error) {
	u, err := CheckURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Rate <= 0:
		return nil, fmt.Errorf("loadgen: Rate must be > 0 requests per second, got %d", cfg.Rate)
	case cfg.MaxRequests <= 0:
		return nil, fmt.Errorf("loadgen: MaxRequests must be > 0, got %d", cfg.MaxRequests)
	case cfg.Duration < 0:
		return nil, fmt.Errorf("loadgen: Duration must not be negative, got %v", cfg.Duration)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("loadgen: Timeout must not be negative, got %v", cfg.Timeout)
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("loadgen: Concurrency must not be negative, got %d", cfg.Concurrency)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	return u, nil
}

// Run sends GET requests to cfg.URL at cfg.Rate per second until cfg.Duration
// has passed, cfg.MaxRequests have been sent or ctx is done, whichever comes
// first, then waits for the requests in flight (a cancelled ctx does not
// cancel them: each ends within cfg.Timeout). It returns an error, having sent
// nothing, only for a bad Config; a URL that is not on a loopback host is one
// (errors.Is(err, ErrNotLoopback)).
//
// onResult, if not nil, is called once per request, from one goroutine at a
// time, as the requests end; it should return quickly.
//
// Requests are scheduled by a ticker: on each tick, those due by the elapsed
// time are sent, so the rate holds even when ticks are late. At most
// cfg.Concurrency are in flight; when the target is too slow for that, the
// requests that could not be sent in time are skipped rather than sent later
// in a burst, so Sent falls short of Rate × Duration.
func Run(ctx context.Context, cfg Config, onResult func(Result)) (Summary, error) {
	u, err := cfg.check()
	if err != nil {
		return Summary{}, err
	}
	target := u.String()

	transport := &http.Transport{
		Proxy: nil, // never through a proxy: HTTP_PROXY could point off this machine
		DialContext: (&net.Dialer{
			Timeout: cfg.Timeout,
			Control: dialLoopbackOnly,
		}).DialContext,
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, never followed
		},
	}

	// In-flight requests outlive a cancelled ctx so that they are counted for
	// what the target answered, not as errors of our own making.
	reqCtx := context.WithoutCancel(ctx)

	var (
		agg      = newAggregator(onResult)
		inflight sync.WaitGroup
		sem      = make(chan struct{}, cfg.Concurrency)
	)
	send := func() {
		start := time.Now()
		go func() {
			defer inflight.Done()
			defer func() { <-sem }()
			agg.add(do(reqCtx, client, target, start))
		}()
	}

	interval := time.Second / time.Duration(cfg.Rate)
	if interval < time.Millisecond {
		interval = time.Millisecond // beyond 1000/s, each tick sends several
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var deadline <-chan time.Time
	if cfg.Duration > 0 {
		timer := time.NewTimer(cfg.Duration)
		defer timer.Stop()
		deadline = timer.C
	}

	// How far behind schedule sending may fall before requests are skipped:
	// Concurrency, or two ticks' worth at high rates.
	maxBacklog := max(cfg.Concurrency, 2*dueBy(interval, cfg.Rate))

	begin := time.Now()
	scheduled := 0 // requests sent or skipped so far
	sent, skipped := 0, 0
loop:
	for sent < cfg.MaxRequests {
		// Requests due by now: the first at 0, then one every 1/Rate.
		elapsed := time.Since(begin)
		if cfg.Duration > 0 && elapsed >= cfg.Duration {
			break
		}
		if ctx.Err() != nil {
			break
		}
		due := dueBy(elapsed, cfg.Rate)
		// Far behind (the target is slow and Concurrency requests are in
		// flight): skip the backlog rather than burst it out later.
		if backlog := due - scheduled; backlog > maxBacklog {
			skipped += backlog - maxBacklog
			scheduled = due - maxBacklog
		}
		for scheduled < due && sent < cfg.MaxRequests {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				break loop
			case <-deadline:
				break loop
			case <-ticker.C:
				continue loop // still waiting for a slot: recompute what is due
			}
			inflight.Add(1)
			send()
			scheduled++
			sent++
		}
		if sent >= cfg.MaxRequests {
			break
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		}
	}
	inflight.Wait()
	sum := agg.summary(time.Since(begin))
	sum.Skipped = min(skipped, cfg.MaxRequests-sent)
	return sum, nil
}

// dueBy is how many requests are due elapsed after the start at rate per
// second: the first at once, then one every 1/rate.
func dueBy(elapsed time.Duration, rate int) int {
	r := int64(rate)
	whole, frac := int64(elapsed/time.Second), int64(elapsed%time.Second)
	return int(whole*r+frac*r/int64(time.Second)) + 1
}

// do sends one request and reads its answer.
func do(ctx context.Context, client *http.Client, target string, start time.Time) Result {
	r := Result{Start: start}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		r.Err = err
		r.Latency = time.Since(start)
		return r
	}
	resp, err := client.Do(req)
	if err != nil {
		r.Err = err
		r.Latency = time.Since(start)
		return r
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body) // finish reading, so the connection is reused
	}
	r.Latency = time.Since(start)
	if err != nil {
		r.Err = fmt.Errorf("reading the body: %w", err)
		return r
	}
	r.Status = resp.StatusCode
	r.Color = resp.Header.Get(HeaderColorServed)
	var v struct {
		Version any `json:"version"`
	}
	if json.Unmarshal(body, &v) == nil {
		switch x := v.Version.(type) {
		case string:
			r.Version = x
		case float64:
			r.Version = strconv.FormatFloat(x, 'f', -1, 64)
		}
	}
	return r
}

// aggregator sums results up as they arrive.
type aggregator struct {
	mu        sync.Mutex
	onResult  func(Result)
	s         Summary
	latencies []time.Duration
}

func newAggregator(onResult func(Result)) *aggregator {
	return &aggregator{
		onResult: onResult,
		s:        Summary{ByVersion: map[string]int{}, ByColor: map[string]int{}},
	}
}

func (a *aggregator) add(r Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.s.Sent++
	switch {
	case r.Err != nil:
		a.s.ConnErrors++
	case r.OK():
		a.s.OK++
	default:
		a.s.Failed++
	}
	if r.Err == nil {
		a.latencies = append(a.latencies, r.Latency)
		if r.Version != "" {
			a.s.ByVersion[r.Version]++
		}
		if r.Color != "" {
			a.s.ByColor[r.Color]++
		}
	}
	if a.onResult != nil {
		a.onResult(r)
	}
}

func (a *aggregator) summary(elapsed time.Duration) Summary {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.s
	s.Elapsed = elapsed
	slices.Sort(a.latencies)
	s.P50 = percentile(a.latencies, 50)
	s.P99 = percentile(a.latencies, 99)
	return s
}

// percentile is the nearest-rank percentile of sorted, 0 when it is empty.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 × n)
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}
