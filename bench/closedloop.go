package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/loadgen"
)

// closedResult is one closed-loop run.
type closedResult struct {
	Clients  int
	Sent     int
	OK       int
	Errors   int // not 2xx, or no answer
	P50, P99 time.Duration
	Elapsed  time.Duration
}

func (r closedResult) throughput() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

// closedLoop measures maximum throughput: clients goroutines each send a GET
// (with header added), read the whole answer and send the next one at once,
// for d or until maxRequests have been sent. Like loadgen, it only ever dials
// loopback addresses and ignores proxy settings.
func closedLoop(ctx context.Context, url string, header http.Header, clients int, d time.Duration, maxRequests int) (closedResult, error) {
	if _, err := loadgen.CheckURL(url); err != nil {
		return closedResult{}, err
	}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("%w: dialing %s", loadgen.ErrNotLoopback, address)
			}
			return nil
		}}).DialContext,
		MaxIdleConns:        clients,
		MaxIdleConnsPerHost: clients,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		Timeout:       loadgen.DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	var (
		mu       sync.Mutex
		res      = closedResult{Clients: clients}
		lat      = make([]time.Duration, 0, 1<<16)
		wg       sync.WaitGroup
		sent     atomic.Int64
		deadline = time.Now().Add(d)
	)
	begin := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			ok, errs := 0, 0
			for sent.Add(1) <= int64(maxRequests) {
				if ctx.Err() != nil || time.Now().After(deadline) {
					break
				}
				start := time.Now()
				err := get(ctx, client, url, header)
				if err != nil {
					errs++
					continue
				}
				ok++
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			res.OK += ok
			res.Errors += errs
			res.Sent += ok + errs
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(begin)
	slices.Sort(lat)
	res.P50, res.P99 = percentile(lat, 50), percentile(lat, 99)
	return res, nil
}

var errNot2xx = errors.New("not 2xx")

func get(ctx context.Context, c *http.Client, url string, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for k, vs := range header {
		req.Header[k] = vs // shared, not copied: nothing on the way changes a request's headers
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errNot2xx
	}
	return nil
}

// percentile is the nearest-rank percentile of sorted (as loadgen computes
// it), 0 when it is empty.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := max((p*len(sorted)+99)/100, 1)
	return sorted[rank-1]
}
