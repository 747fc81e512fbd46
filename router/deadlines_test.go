package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cutoverhq/cutover/deadlines"
	"github.com/cutoverhq/cutover/deadlines/deadlinestest"
)

// streamer is an instance that answers /stream with a line every tick, n
// times (forever when n is 0), and /healthz with ok.
func streamer(t *testing.T, tick time.Duration, n int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		line := strings.Repeat("x", 1023) + "\n"
		for i := 0; n == 0 || i < n; i++ {
			if _, err := io.WriteString(w, line); err != nil {
				return
			}
			_ = http.NewResponseController(w).Flush()
			select {
			case <-time.After(tick):
			case <-req.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestUserDeadlines exercises each deadline of the user listener through a
// real connection, with short deadlines, and shows that a long answer that
// keeps coming is not cut.
func TestUserDeadlines(t *testing.T) {
	to := deadlinestest.Short()
	h := start(t, func(c *Config) { c.UserTimeouts = to })
	addr := strings.TrimPrefix(h.user, "http://")
	// An answer that takes ten write deadlines but keeps coming.
	long := streamer(t, to.Write/3, 30)
	h.mustCall("PUT", "/v1/pools/blue", PoolRequest{Instances: []string{long.URL}})

	t.Run("headers, bodies and idle connections", func(t *testing.T) {
		deadlinestest.CheckReads(t, addr, to, deadlinestest.Request(t, "POST", h.user+"/upload"), deadlinestest.Request(t, "GET", h.user+"/healthz"))
	})
	t.Run("a long answer that keeps coming is not cut", func(t *testing.T) {
		began := time.Now()
		resp, body, err := h.get("/stream")
		if err != nil {
			t.Fatalf("after %s: %v", time.Since(began), err)
		}
		if resp.StatusCode != http.StatusOK || len(body) != 30*1024 {
			t.Fatalf("%s, %d bytes of %d", resp.Status, len(body), 30*1024)
		}
		if took := time.Since(began); took < 3*to.Write {
			t.Fatalf("the answer took %s: too short to say anything about a %s deadline", took, to.Write)
		}
	})

	t.Run("a user that stops reading is cut", func(t *testing.T) {
		// As fast as it can, so that the buffers on the way fill at once and the
		// router's write to the user blocks.
		endless := streamer(t, 0, 0)
		h.mustCall("PUT", "/v1/pools/blue", PoolRequest{Instances: []string{endless.URL}})
		r := deadlinestest.NotReading(t, addr, deadlinestest.Request(t, "GET", h.user+"/stream"), to.Write+deadlinestest.Slack, 10*time.Second)
		t.Logf("the server closed the connection within %s of the request", r.After.Round(time.Millisecond))
	})
}

// slowGatherer answers /metrics after a delay.
type slowGatherer struct {
	*prometheus.Registry
	delay time.Duration
}

func (g slowGatherer) Gather() ([]*dto.MetricFamily, error) {
	time.Sleep(g.delay)
	return g.Registry.Gather()
}

// TestAdminDeadlines exercises each deadline of the admin listener through a
// real connection, with short deadlines.
func TestAdminDeadlines(t *testing.T) {
	to := deadlinestest.Short()
	h := start(t, func(c *Config) {
		c.AdminTimeouts = to
		c.Registry = slowGatherer{prometheus.NewRegistry(), to.Write + 300*time.Millisecond}
	})
	addr := strings.TrimPrefix(h.admin, "http://")
	admin := func(method, path string) *http.Request {
		req := deadlinestest.Request(t, method, h.admin+path)
		req.Header.Set("Authorization", "Bearer "+testToken)
		return req
	}
	deadlinestest.CheckReads(t, addr, to, admin("PUT", "/v1/weights"), admin("GET", "/v1/state"))
	r := deadlinestest.Unanswered(t, addr, admin("GET", "/metrics"), 5*time.Second)
	if r.Got != "" {
		t.Errorf("the late answer went out: %.100q", r.Got)
	}
	r.Between(t, "an answer past the write deadline", to.Write, to.Write+deadlinestest.Slack)
}

func TestTimeoutsConfig(t *testing.T) {
	h := start(t, func(c *Config) { c.UserTimeouts = deadlines.Timeouts{Idle: time.Minute} })
	if got, want := h.r.userSrv.IdleTimeout, time.Minute; got != want {
		t.Errorf("user idle timeout %s, want %s", got, want)
	}
	if got, want := h.r.userSrv.ReadTimeout, DefaultUserTimeouts().Read; got != want {
		t.Errorf("user read timeout %s, want the default %s", got, want)
	}
	if got, want := h.r.adminSrv.WriteTimeout, 30*time.Second+100*time.Millisecond; got != want {
		t.Errorf("admin write timeout %s, want %s (30s past the health interval)", got, want)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Token: "t", UserTimeouts: deadlines.Timeouts{Read: -time.Second}}, "router: user read-timeout must be above 0, got -1s"},
		{Config{Token: "t", HealthInterval: time.Minute, AdminTimeouts: deadlines.Timeouts{Write: time.Minute}},
			"router: admin write-timeout 1m0s must be longer than the health interval 1m0s"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}
