package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/metrics"
)

func TestHTTPTimeoutFlags(t *testing.T) {
	t.Setenv("CUTOVER_HTTP_IDLE_TIMEOUT", "5m")
	cfg, _, err := parseFlags([]string{"--http-write-timeout", "1m"})
	if err != nil {
		t.Fatal(err)
	}
	want := metrics.DefaultTimeouts()
	want.Write, want.Idle = time.Minute, 5*time.Minute
	if cfg.httpTimeouts != want {
		t.Errorf("timeouts = %+v, want %+v", cfg.httpTimeouts, want)
	}
	if _, _, err := parseFlags([]string{"--http-read-timeout", "0s"}); err == nil || err.Error() != "--http-read-timeout must be above 0, got 0s" {
		t.Errorf("no read timeout: %v", err)
	}
	t.Setenv("CUTOVER_HTTP_READ_TIMEOUT", "10")
	if _, _, err := parseFlags(nil); err == nil || !strings.Contains(err.Error(), "CUTOVER_HTTP_READ_TIMEOUT") {
		t.Errorf("a bad variable: %v", err)
	}
}
