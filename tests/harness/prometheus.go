package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Prometheus is a Prometheus server a test started; it scrapes the test's
// targets every second and is stopped when the test ends.
type Prometheus struct {
	Proc    *Proc
	url     string
	targets int
}

// PrometheusOptions tune StartPrometheusWith.
type PrometheusOptions struct {
	// Targets are what Prometheus scrapes: host:port (then /metrics over
	// http) or full URLs like http://127.0.0.1:8081/metrics.
	Targets []string
	// BearerToken, when set, is sent with every scrape: the router's admin
	// /metrics needs its admin token unless router.Config.MetricsOpen. It is
	// written to a file in the test's temporary directory, not to the config.
	BearerToken string
	// ScrapeInterval is Prometheus's scrape and evaluation interval (default
	// 1s).
	ScrapeInterval time.Duration
}

// StartPrometheus starts Prometheus scraping targets (host:port, or full
// URLs) every second, on a free loopback port, and waits until it is ready.
// The binary is $PROMETHEUS_BIN, /usr/bin/prometheus or prometheus on PATH;
// when there is none the test skips (fails when CI=true).
func StartPrometheus(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	return StartPrometheusWith(t, PrometheusOptions{Targets: targets})
}

// StartPrometheusWith is StartPrometheus with options (a bearer token for the
// targets).
func StartPrometheusWith(t testing.TB, opts PrometheusOptions) *Prometheus {
	t.Helper()
	bin := prometheusBinary(t)
	if len(opts.Targets) == 0 {
		t.Fatal("StartPrometheus: no targets")
	}
	if opts.ScrapeInterval <= 0 {
		opts.ScrapeInterval = time.Second
	}
	dir := t.TempDir()
	cfg, err := prometheusConfig(dir, opts)
	if err != nil {
		t.Fatalf("StartPrometheus: %v", err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	p := &Prometheus{url: "http://" + addr, targets: len(opts.Targets)}
	p.Proc = Start(t, "prometheus", nil, bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if p.Proc.Exited() || time.Now().After(deadline) {
			p.Stop()
			t.Fatalf("prometheus did not become ready at %s (last error: %v)\n%s", p.url, err, p.Proc.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func prometheusBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PROMETHEUS_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("PROMETHEUS_BIN=%s: %v", p, err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	Missing(t, "prometheus", "apt-get install -y prometheus")
	return ""
}

// prometheusConfig writes the scrape config: one job per scheme and metrics
// path among the targets.
func prometheusConfig(dir string, opts PrometheusOptions) (string, error) {
	type job struct {
		scheme, path string
		hosts        []string
	}
	var jobs []*job
	for _, tg := range opts.Targets {
		scheme, host, path := "http", tg, "/metrics"
		if strings.Contains(tg, "://") {
			u, err := url.Parse(tg)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return "", fmt.Errorf("target %q is neither host:port nor an http(s) URL", tg)
			}
			scheme, host = u.Scheme, u.Host
			if u.Path != "" && u.Path != "/" {
				path = u.Path
			}
		}
		var j *job
		for _, o := range jobs {
			if o.scheme == scheme && o.path == path {
				j = o
			}
		}
		if j == nil {
			j = &job{scheme: scheme, path: path}
			jobs = append(jobs, j)
		}
		j.hosts = append(j.hosts, host)
	}
	iv := opts.ScrapeInterval.String()
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n", iv, iv, iv)
	b.WriteString("scrape_configs:\n")
	for i, j := range jobs {
		name := "cutover"
		if i > 0 {
			name = fmt.Sprintf("cutover-%d", i+1)
		}
		fmt.Fprintf(&b, "  - job_name: %q\n    scheme: %s\n    metrics_path: %q\n", name, j.scheme, j.path)
		if opts.BearerToken != "" {
			tokPath := filepath.Join(dir, "bearer-token")
			if err := os.WriteFile(tokPath, []byte(opts.BearerToken), 0o600); err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "    authorization:\n      type: Bearer\n      credentials_file: %q\n", tokPath)
		}
		b.WriteString("    static_configs:\n      - targets:\n")
		for _, h := range j.hosts {
			fmt.Fprintf(&b, "          - %q\n", h)
		}
	}
	return b.String(), nil
}

// URL is Prometheus's base URL, like http://127.0.0.1:41234.
func (p *Prometheus) URL() string { return p.url }

// Stop stops Prometheus now, for a test of an analysis whose source goes
// away; calling it again, or the test's cleanup after it, does nothing.
func (p *Prometheus) Stop() { p.Proc.Stop(10 * time.Second) }

// WaitForTarget waits until Prometheus's targets API shows every target up
// (scraped successfully at least once). Prometheus 2.x hands new targets to
// its scrapers about 5s after it starts, so give it 10s or more.
func (p *Prometheus) WaitForTarget(t testing.TB, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		up, msg, err := p.targetsUp(client)
		switch {
		case err != nil:
			last = err.Error()
		case up:
			return
		default:
			last = msg
		}
		if p.Proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("prometheus targets not all up within %s: %s", timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *Prometheus) targetsUp(client *http.Client) (bool, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/api/v1/targets?state=active", nil)
	if err != nil {
		return false, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return false, "", fmt.Errorf("targets API: %w", err)
	}
	ts := body.Data.ActiveTargets
	if len(ts) < p.targets {
		return false, fmt.Sprintf("%d of %d targets discovered", len(ts), p.targets), nil
	}
	for _, tg := range ts {
		if tg.Health != "up" {
			return false, fmt.Sprintf("%s is %s %s", tg.ScrapeURL, tg.Health, tg.LastError), nil
		}
	}
	return true, "", nil
}
