// Command loadgen sends GET requests at a fixed rate to a URL on this machine
// and prints a one-line summary when done:
//
//	loadgen -url http://127.0.0.1:8080/ -rate 200 -duration 30s
//
// It runs until -duration has passed, -max requests have been sent, or SIGINT
// or SIGTERM arrives. Every -progress (default 1s, 0 = never) it prints the
// counts so far on stderr. The summary goes to stdout. It exits 0 when every
// request answered 2xx, 1 otherwise, and 2 on a usage error, such as a URL
// whose host is not a loopback address: load only ever goes to this machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// tally keeps the counts so far, for the progress lines.
type tally struct {
	mu                         sync.Mutex
	sent, ok, failed, connErrs int
	byVersion                  map[string]int
}

func (t *tally) add(r loadgen.Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	switch {
	case r.Err != nil:
		t.connErrs++
	case r.OK():
		t.ok++
	default:
		t.failed++
	}
	if r.Err == nil && r.Version != "" {
		t.byVersion[r.Version]++
	}
}

func (t *tally) line(elapsed time.Duration) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("loadgen: t=%s sent=%d ok=%d failed=%d conn_errors=%d by_version=%s",
		elapsed.Round(100*time.Millisecond), t.sent, t.ok, t.failed, t.connErrs, loadgen.FormatCounts(t.byVersion))
}

// run is the command with its arguments and outputs passed in; it returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	var progress time.Duration
	fs.StringVar(&cfg.URL, "url", "", "the `URL` to GET; its host must be a loopback address (127.0.0.0/8, ::1, localhost)")
	fs.IntVar(&cfg.Rate, "rate", 200, "requests per second")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to send (0 = until SIGINT or SIGTERM)")
	fs.IntVar(&cfg.MaxRequests, "max", 1_000_000, "the most requests to send")
	fs.DurationVar(&cfg.Timeout, "timeout", loadgen.DefaultTimeout, "per-request timeout")
	fs.IntVar(&cfg.Concurrency, "concurrency", loadgen.DefaultConcurrency, "the most requests in flight")
	fs.DurationVar(&progress, "progress", time.Second, "interval of a progress line on stderr (0 = none)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: loadgen -url http://127.0.0.1:PORT/ [flags]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.URL == "" {
		fmt.Fprintln(stderr, "loadgen: -url is required")
		fs.Usage()
		return 2
	}
	if progress < 0 {
		fmt.Fprintln(stderr, "loadgen: -progress must not be negative")
		return 2
	}

	t := &tally{byVersion: map[string]int{}}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	if progress > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(progress)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					fmt.Fprintln(stderr, t.line(time.Since(start)))
				}
			}
		}()
	}
	sum, err := loadgen.Run(ctx, cfg, t.add)
	close(done)
	wg.Wait()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2 // a bad configuration: nothing was sent
	}
	fmt.Fprintln(stdout, sum)
	if sum.Failed > 0 || sum.ConnErrors > 0 {
		return 1
	}
	return 0
}
