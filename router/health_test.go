package router

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Active checks take a failing instance out of rotation and bring it back.
func TestActiveHealthChecks(t *testing.T) {
	b1, b2 := newBackend(t, "blue-1"), newBackend(t, "blue-2")
	h := start(t, nil)
	h.setPool(Blue, b1, b2)

	b2.unhealthy.Store(true)
	eventually(t, "blue-2 unhealthy", func() bool { return !h.state().Pools[Blue][1].Healthy })
	if c := h.load(40, 2, "/"); c["blue-1"] != 40 {
		t.Errorf("with blue-2 unhealthy: %v", c)
	}
	b2.unhealthy.Store(false)
	eventually(t, "blue-2 healthy", func() bool { return h.state().Pools[Blue][1].Healthy })
	if c := h.load(40, 2, "/"); c["blue-1"] < 10 || c["blue-2"] < 10 || c["blue-1"]+c["blue-2"] != 40 {
		t.Errorf("with both healthy: %v", c)
	}
}

// A new instance is unhealthy until a check passes, and PUT of a pool checks
// new instances at once: with an hour between rounds, only that check can have
// marked them.
func TestPoolPutChecksNewInstancesAtOnce(t *testing.T) {
	good, sick := newBackend(t, "good"), newBackend(t, "sick")
	sick.unhealthy.Store(true)
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })

	st := h.setPool(Green, good, sick)
	if p := st.Pools[Green]; !p[0].Healthy || p[1].Healthy {
		t.Fatalf("after PUT: %+v", p)
	}
	if good.healthHits.Load() != 1 || sick.healthHits.Load() != 1 {
		t.Errorf("health checks: good %d, sick %d, want 1 each", good.healthHits.Load(), sick.healthHits.Load())
	}
	for range 6 {
		if got := h.mustGet("/", HeaderColor, Green); got != "good" {
			t.Fatalf("went to %q", got)
		}
	}
	// Putting the same pool again checks nothing new.
	h.setPool(Green, good, sick)
	if good.healthHits.Load() != 1 {
		t.Errorf("an unchanged instance was checked again")
	}

	only := newBackend(t, "only-sick")
	only.unhealthy.Store(true)
	h.setPool(Blue, only)
	h.setPool(Green)
	resp, _, err := h.get("/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("only an unhealthy instance: %d, want 502", resp.StatusCode)
	}
}

// A connection failure ejects the instance (active checks are too slow here to
// notice) and the GET is retried on the other instance: no user sees it.
func TestPassiveEjection(t *testing.T) {
	b1, b2 := newBackend(t, "blue-1"), newBackend(t, "blue-2")
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
	h.setPool(Blue, b1, b2)
	b2.Close()

	if c := h.load(20, 1, "/"); c["blue-1"] != 20 {
		t.Fatalf("with blue-2 dead: %v", c)
	}
	p := h.state().Pools[Blue]
	if p[1].Ejected != true || p[1].Healthy != true || p[0].Ejected {
		t.Errorf("pool: %+v, want blue-2 ejected (and still marked healthy: no check ran)", p)
	}
	if !strings.Contains(h.logs.String(), `"msg":"instance ejected"`) {
		t.Error("no warning logged for the ejection")
	}
}

// The ejection ends after EjectFor.
func TestEjectionExpires(t *testing.T) {
	b1, b2 := newBackend(t, "blue-1"), newBackend(t, "blue-2")
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour; c.EjectFor = 100 * time.Millisecond })
	h.setPool(Blue, b1, b2)
	b2.Close()
	h.mustGet("/")
	h.mustGet("/")
	if !h.state().Pools[Blue][1].Ejected {
		t.Fatal("blue-2 not ejected")
	}
	eventually(t, "the ejection to end", func() bool { return !h.state().Pools[Blue][1].Ejected })
}

// One of two green backends dies while requests flow; no client sees an error
// for bodiless GETs. Active checks run too, and eventually notice.
func TestKilledBackendUnderLoad(t *testing.T) {
	b := newBackend(t, "blue")
	g1, g2 := newBackend(t, "green-1"), newBackend(t, "green-2")
	h := start(t, func(c *Config) { c.HealthInterval = 250 * time.Millisecond })
	h.setPool(Blue, b)
	h.setPool(Green, g1, g2)
	h.setGreen(100)

	var wg sync.WaitGroup
	wg.Go(func() {
		for g2.hits.Load() < 100 {
			time.Sleep(time.Millisecond)
		}
		g2.Close()
	})
	counts := h.load(3000, 8, "/")
	wg.Wait()
	if errs := errorsIn(counts); len(errs) > 0 {
		t.Fatalf("clients saw errors: %v (answers %v)", errs, counts)
	}
	// Blue may serve a few if a busy machine makes green's checks time out.
	if counts["green-2"] < 100 || counts["green-1"] < 1000 {
		t.Errorf("answers: %v", counts)
	}
	eventually(t, "green-2 unhealthy", func() bool { return !h.state().Pools[Green][1].Healthy })
}

// A request with a body is not retried (its body is spent): 502. A bodiless
// one is retried, on the other color when its own has no other instance.
func TestRetryOnlyWithoutBody(t *testing.T) {
	b := newBackend(t, "blue")
	g1, g2 := newBackend(t, "green-1"), newBackend(t, "green-2")
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
	h.setPool(Blue, b)
	h.setPool(Green, g1, g2)
	h.setGreen(100)
	g1.Close()
	g2.Close()

	resp, _, err := h.do("POST", "/", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST with a body to a dead instance: %d, want 502", resp.StatusCode)
	}
	// The second green instance fails too; the retry goes to blue.
	if got := h.mustGet("/"); got != "blue" {
		t.Fatalf("retried GET went to %q", got)
	}
	p := h.state().Pools[Green]
	if !p[0].Ejected || !p[1].Ejected {
		t.Fatalf("green: %+v, want both ejected", p)
	}
	// Now green has no usable instance: bodies go to blue from the start.
	resp, body, err := h.do("POST", "/", strings.NewReader("payload"))
	if err != nil || resp.StatusCode != http.StatusOK || body != "blue" {
		t.Fatalf("POST with green ejected: %v %v %q", err, resp.StatusCode, body)
	}
	// A bodiless request pinned to green is not retried on blue.
	resp, _, err = h.get("/", HeaderColor, Green)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("pinned to an ejected green: %d, want 502", resp.StatusCode)
	}
}

// An instance that accepts the connection but drops it before any response is
// ejected too, and the GET is retried.
func TestDroppedConnectionIsRetried(t *testing.T) {
	b1, b2 := newBackend(t, "blue-1"), newBackend(t, "blue-2")
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
	h.setPool(Blue, b1, b2)
	b1.drop.Store(true)

	if c := h.load(10, 1, "/"); c["blue-2"] != 10 {
		t.Fatalf("with blue-1 dropping connections: %v", c)
	}
	if p := h.state().Pools[Blue]; !p[0].Ejected || p[1].Ejected {
		t.Errorf("pool: %+v, want blue-1 ejected", p)
	}
	if b1.hits.Load() == 0 {
		t.Error("blue-1 was never tried")
	}
}
