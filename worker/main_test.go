package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/temporalconn/tlstest"
)

// The worker's --address and --namespace override the environment's; the
// environment's TLS still applies under them.
func TestWorkerFlagsOverrideEnvironmentAndKeepTLS(t *testing.T) {
	tlstest.CleanEnv(t)
	pki := tlstest.New(t)
	t.Setenv("TEMPORAL_ADDRESS", "env.example:7233")
	t.Setenv("TEMPORAL_NAMESPACE", "envns")
	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", pki.ClientCertFile)
	t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", pki.ClientKeyFile)
	t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", pki.CAFile)

	for _, tc := range []struct {
		args               []string
		address, namespace string
	}{
		{nil, "env.example:7233", "envns"},
		{[]string{"--address", "flag.example:7233", "--namespace", "flagns"}, "flag.example:7233", "flagns"},
	} {
		cfg, _, err := parseFlags(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := temporalconn.ClientOptions(cfg.temporal)
		if err != nil {
			t.Fatal(err)
		}
		if opts.HostPort != tc.address || opts.Namespace != tc.namespace {
			t.Errorf("%v: HostPort %q, Namespace %q; want %q, %q", tc.args, opts.HostPort, opts.Namespace, tc.address, tc.namespace)
		}
		if conf := opts.ConnectionOptions.TLS; conf == nil || len(conf.Certificates) != 1 || !conf.RootCAs.Equal(pki.CAPool) {
			t.Errorf("%v: TLS %+v; want the environment's client certificate and CA", tc.args, conf)
		}
	}
}

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

func TestTuningFlags(t *testing.T) {
	t.Setenv("CUTOVER_MAX_ACTIVITIES", "50")
	t.Setenv("CUTOVER_STICKY_SCHEDULE_TO_START_TIMEOUT", "2s")
	cfg, _, err := parseFlags([]string{"--workflow-pollers", "8"})
	if err != nil {
		t.Fatal(err)
	}
	opts := cfg.tuning.options()
	if opts.MaxConcurrentActivityExecutionSize != 50 || opts.MaxConcurrentWorkflowTaskPollers != 8 ||
		opts.StickyScheduleToStartTimeout != 2*time.Second || opts.MaxConcurrentWorkflowTaskExecutionSize != 1000 {
		t.Errorf("options = %+v; want 50 activities, 8 workflow pollers, a 2s sticky timeout and the default 1000 workflow tasks", opts)
	}
	t.Setenv("CUTOVER_STICKY_SCHEDULE_TO_START_TIMEOUT", "")
	if cfg, _, err := parseFlags(nil); err != nil || cfg.tuning.sticky != time.Second {
		t.Errorf("default sticky timeout = %v, %v; want 1s", cfg.tuning.sticky, err)
	}
	// The SDK panics on one workflow poller; the worker says which flag is wrong.
	if _, _, err := parseFlags([]string{"--workflow-pollers", "1"}); err == nil || err.Error() != "--workflow-pollers must be at least 2, got 1" {
		t.Errorf("one workflow poller: %v", err)
	}
	t.Setenv("CUTOVER_ACTIVITY_POLLERS", "many")
	if _, _, err := parseFlags(nil); err == nil || !strings.Contains(err.Error(), "CUTOVER_ACTIVITY_POLLERS") {
		t.Errorf("a bad variable: %v", err)
	}
}
