package azuretm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/trafficmanager/armtrafficmanager"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/trafficmanager/armtrafficmanager/fake"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/providertest"
)

const (
	sub     = "11111111-2222-3333-4444-555555555555"
	rg      = "rg-shop"
	profile = "shop-tm"
	blueEP  = "shop-blue"
	greenEP = "shop-green"
)

func settings() map[string]any {
	return map[string]any{
		"subscriptionId": sub,
		"resourceGroup":  rg,
		"profile":        profile,
		"blueEndpoint":   blueEP,
		"greenEndpoint":  greenEP,
	}
}

// tm is a fake Traffic Manager profile: its endpoints' state, the calls made,
// and a failure to inject.
type tm struct {
	mu        sync.Mutex
	method    armtrafficmanager.TrafficRoutingMethod
	ttl       int64 // the profile's dnsConfig.ttl in seconds
	endpoints map[string]state
	typ       armtrafficmanager.EndpointType
	calls     []string
	// fail, when non-zero, answers every call with this HTTP status and code.
	failStatus int
	failCode   string
}

func newTM() *tm {
	return &tm{
		method: armtrafficmanager.TrafficRoutingMethodWeighted,
		ttl:    60,
		typ:    armtrafficmanager.EndpointTypeAzureEndpoints,
		endpoints: map[string]state{
			blueEP:  {Enabled: true, Weight: 1000},
			greenEP: {Enabled: false, Weight: 1},
		},
	}
}

func (f *tm) fail(status int, code string) func() {
	f.mu.Lock()
	f.failStatus, f.failCode = status, code
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.failStatus, f.failCode = 0, ""
		f.mu.Unlock()
	}
}

// check returns the injected failure or a 404 for an unknown resource.
func (f *tm) check(rgName, prof string, typ armtrafficmanager.EndpointType, ep string) (azfake.ErrorResponder, bool) {
	var e azfake.ErrorResponder
	if f.failStatus != 0 {
		e.SetResponseError(f.failStatus, f.failCode)
		return e, true
	}
	if rgName != rg || prof != profile {
		e.SetResponseError(http.StatusNotFound, "ResourceNotFound")
		return e, true
	}
	if ep != "" {
		if _, ok := f.endpoints[ep]; !ok || typ != f.typ {
			e.SetResponseError(http.StatusNotFound, "NotFound")
			return e, true
		}
	}
	return e, false
}

func (f *tm) endpoint(name string) armtrafficmanager.Endpoint {
	st := f.endpoints[name]
	status := armtrafficmanager.EndpointStatusDisabled
	if st.Enabled {
		status = armtrafficmanager.EndpointStatusEnabled
	}
	w := st.Weight
	return armtrafficmanager.Endpoint{Name: &name, Properties: &armtrafficmanager.EndpointProperties{EndpointStatus: &status, Weight: &w}}
}

func (f *tm) server() *fake.ServerFactory {
	return &fake.ServerFactory{
		ProfilesServer: fake.ProfilesServer{
			Get: func(ctx context.Context, rgName, prof string, _ *armtrafficmanager.ProfilesClientGetOptions) (resp azfake.Responder[armtrafficmanager.ProfilesClientGetResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.calls = append(f.calls, "profile get")
				if e, failed := f.check(rgName, prof, "", ""); failed {
					return resp, e
				}
				m, ttl := f.method, f.ttl
				resp.SetResponse(http.StatusOK, armtrafficmanager.ProfilesClientGetResponse{Profile: armtrafficmanager.Profile{
					Properties: &armtrafficmanager.ProfileProperties{TrafficRoutingMethod: &m, DNSConfig: &armtrafficmanager.DNSConfig{TTL: &ttl}},
				}}, nil)
				return resp, errResp
			},
		},
		EndpointsServer: fake.EndpointsServer{
			Get: func(ctx context.Context, rgName, prof string, typ armtrafficmanager.EndpointType, ep string, _ *armtrafficmanager.EndpointsClientGetOptions) (resp azfake.Responder[armtrafficmanager.EndpointsClientGetResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.calls = append(f.calls, "get "+ep)
				if e, failed := f.check(rgName, prof, typ, ep); failed {
					return resp, e
				}
				resp.SetResponse(http.StatusOK, armtrafficmanager.EndpointsClientGetResponse{Endpoint: f.endpoint(ep)}, nil)
				return resp, errResp
			},
			Update: func(ctx context.Context, rgName, prof string, typ armtrafficmanager.EndpointType, ep string, params armtrafficmanager.Endpoint, _ *armtrafficmanager.EndpointsClientUpdateOptions) (resp azfake.Responder[armtrafficmanager.EndpointsClientUpdateResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				if e, failed := f.check(rgName, prof, typ, ep); failed {
					f.calls = append(f.calls, "update "+ep+" failed")
					return resp, e
				}
				st := f.endpoints[ep]
				if pr := params.Properties; pr != nil {
					if pr.Weight != nil {
						if *pr.Weight < 1 || *pr.Weight > 1000 {
							errResp.SetResponseError(http.StatusBadRequest, "BadRequest")
							return resp, errResp
						}
						st.Weight = *pr.Weight
					}
					if pr.EndpointStatus != nil {
						st.Enabled = *pr.EndpointStatus == armtrafficmanager.EndpointStatusEnabled
					}
				}
				f.calls = append(f.calls, fmt.Sprintf("update %s %s", ep, st))
				f.endpoints[ep] = st
				if other := f.endpoints[otherEP(ep)]; !st.Enabled && !other.Enabled {
					panic("both endpoints disabled") // the provider's ordering failed
				}
				resp.SetResponse(http.StatusOK, armtrafficmanager.EndpointsClientUpdateResponse{Endpoint: f.endpoint(ep)}, nil)
				return resp, errResp
			},
		},
	}
}

func otherEP(ep string) string {
	if ep == blueEP {
		return greenEP
	}
	return blueEP
}

func (f *tm) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func newProvider(t *testing.T, f *tm, s map[string]any) *Provider {
	t.Helper()
	p, err := New(s)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.cred = &azfake.TokenCredential{}
	p.transport = fake.NewServerFactoryTransport(f.server())
	p.noRetry = true
	return p
}

func TestConformance(t *testing.T) {
	var f *tm
	providertest.Traffic(t, providertest.Target{
		App: "shop",
		New: func(t *testing.T) providers.Traffic {
			f = newTM()
			return newProvider(t, f, settings())
		},
		Fail: func(t *testing.T, kind providertest.FailKind) func() {
			switch kind {
			case providertest.FailThrottle:
				return f.fail(http.StatusTooManyRequests, "TooManyRequests")
			case providertest.FailServer:
				return f.fail(http.StatusServiceUnavailable, "ServiceUnavailable")
			case providertest.FailDenied:
				return f.fail(http.StatusForbidden, "AuthorizationFailed")
			case providertest.FailNotFound:
				return f.fail(http.StatusNotFound, "ResourceNotFound")
			}
			return nil
		},
	})
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		green       int
		blue, grn   state
		readsBackAs int
	}{
		{0, state{true, 1000}, state{false, 1}, 0},
		{1, state{true, 990}, state{true, 10}, 1},
		{10, state{true, 900}, state{true, 100}, 10},
		{50, state{true, 500}, state{true, 500}, 50},
		{99, state{true, 10}, state{true, 990}, 99},
		{100, state{false, 1}, state{true, 1000}, 100},
	} {
		b, g := split(c.green)
		if b != c.blue || g != c.grn {
			t.Errorf("split(%d) = blue %s, green %s; want blue %s, green %s", c.green, b, g, c.blue, c.grn)
		}
		if w, ok := percent(b, g); !ok || w != c.readsBackAs {
			t.Errorf("percent(split(%d)) = %d, %v; want %d", c.green, w, ok, c.readsBackAs)
		}
	}
	for g := 0; g <= 100; g++ {
		b, gr := split(g)
		if b.Weight < 1 || b.Weight > 1000 || gr.Weight < 1 || gr.Weight > 1000 {
			t.Errorf("split(%d) = %s, %s: weight outside 1..1000", g, b, gr)
		}
		if w, _ := percent(b, gr); w != g {
			t.Errorf("percent(split(%d)) = %d", g, w)
		}
	}
	if _, ok := percent(state{false, 5}, state{false, 5}); ok {
		t.Error("percent with both endpoints disabled is ok")
	}
}

func TestDisablesAndOrder(t *testing.T) {
	ctx := context.Background()
	f := newTM()
	p := newProvider(t, f, settings())
	for _, c := range []struct {
		green int
		calls []string
		blue  state
		grn   state
	}{
		{10, []string{"profile get", "update shop-green enabled weight 100", "update shop-blue enabled weight 900", "get shop-blue", "get shop-green"}, state{true, 900}, state{true, 100}},
		{100, []string{"update shop-green enabled weight 1000", "update shop-blue disabled (weight 1)", "get shop-blue", "get shop-green"}, state{false, 1}, state{true, 1000}},
		// Straight from 100 to 0: blue is enabled before green is disabled.
		{0, []string{"update shop-blue enabled weight 1000", "update shop-green disabled (weight 1)", "get shop-blue", "get shop-green"}, state{true, 1000}, state{false, 1}},
		// Straight from 0 to 100: green is enabled before blue is disabled.
		{100, []string{"update shop-green enabled weight 1000", "update shop-blue disabled (weight 1)", "get shop-blue", "get shop-green"}, state{false, 1}, state{true, 1000}},
	} {
		if err := p.SetWeight(ctx, "shop", c.green); err != nil {
			t.Fatalf("SetWeight(%d): %v", c.green, err)
		}
		if got := f.takeCalls(); strings.Join(got, "; ") != strings.Join(c.calls, "; ") {
			t.Errorf("SetWeight(%d) calls:\n  %s\nwant:\n  %s", c.green, strings.Join(got, "; "), strings.Join(c.calls, "; "))
		}
		if b, g := f.endpoints[blueEP], f.endpoints[greenEP]; b != c.blue || g != c.grn {
			t.Errorf("after SetWeight(%d): blue %s, green %s; want %s, %s", c.green, b, g, c.blue, c.grn)
		}
		if w, err := p.Weight(ctx, "shop"); err != nil || w != c.green {
			t.Errorf("Weight after SetWeight(%d) = %d, %v", c.green, w, err)
		}
		f.takeCalls()
	}
}

func TestWeightReadsStatus(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		blue, green state
		want        int
		wantErr     bool
	}{
		{state{true, 1000}, state{false, 1000}, 0, false}, // disabled green counts 0 whatever its weight
		{state{false, 1000}, state{true, 3}, 100, false},
		{state{true, 3}, state{true, 1}, 25, false},
		{state{false, 1}, state{false, 1}, 0, true},
	} {
		f := newTM()
		f.endpoints[blueEP], f.endpoints[greenEP] = c.blue, c.green
		p := newProvider(t, f, settings())
		w, err := p.Weight(ctx, "shop")
		if c.wantErr {
			if !errors.Is(err, providers.ErrInvalid) {
				t.Errorf("Weight with blue %s, green %s = %d, %v; want ErrInvalid", c.blue, c.green, w, err)
			}
			continue
		}
		if err != nil || w != c.want {
			t.Errorf("Weight with blue %s, green %s = %d, %v; want %d", c.blue, c.green, w, err, c.want)
		}
	}
}

func TestEndpointType(t *testing.T) {
	f := newTM()
	f.typ = armtrafficmanager.EndpointTypeExternalEndpoints
	s := settings()
	s["endpointType"] = "externalEndpoints"
	p := newProvider(t, f, s)
	if err := p.SetWeight(context.Background(), "shop", 50); err != nil {
		t.Fatalf("SetWeight with externalEndpoints: %v", err)
	}
	// The wrong type is a 404 from Azure.
	p = newProvider(t, f, settings())
	if err := p.SetWeight(context.Background(), "shop", 50); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("SetWeight with azureEndpoints on external endpoints = %v; want ErrNotFound", err)
	}
}

func TestNotWeighted(t *testing.T) {
	f := newTM()
	f.method = armtrafficmanager.TrafficRoutingMethodPriority
	p := newProvider(t, f, settings())
	err := p.SetWeight(context.Background(), "shop", 10)
	if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "Priority") {
		t.Fatalf("SetWeight on a Priority profile = %v; want ErrInvalid naming the method", err)
	}
	if calls := f.takeCalls(); len(calls) != 1 {
		t.Fatalf("calls = %v; want only the profile read", calls)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		status    int
		code      string
		kind      error // nil: retryable
		wantInMsg string
	}{
		{429, "TooManyRequests", nil, "HTTP 429"},
		{500, "InternalServerError", nil, "HTTP 500"},
		{503, "ServiceUnavailable", nil, "HTTP 503"},
		{401, "InvalidAuthenticationToken", providers.ErrInvalid, "InvalidAuthenticationToken"},
		{403, "AuthorizationFailed", providers.ErrInvalid, "AuthorizationFailed"},
		{404, "ResourceNotFound", providers.ErrNotFound, "ResourceNotFound"},
		{400, "BadRequest", providers.ErrInvalid, "BadRequest"},
	} {
		f := newTM()
		p := newProvider(t, f, settings())
		restore := f.fail(c.status, c.code)
		for _, call := range []func() error{
			func() error { return p.SetWeight(ctx, "shop", 10) },
			func() error { _, err := p.Weight(ctx, "shop"); return err },
		} {
			err := call()
			if err == nil {
				t.Fatalf("HTTP %d: no error", c.status)
			}
			if c.kind == nil && providertest.Permanent(err) {
				t.Errorf("HTTP %d: %v is permanent; want retryable", c.status, err)
			}
			if c.kind != nil && !errors.Is(err, c.kind) {
				t.Errorf("HTTP %d: %v; want %v", c.status, err, c.kind)
			}
			if !strings.Contains(err.Error(), c.wantInMsg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("HTTP %d: message %q; want one line containing %q", c.status, err, c.wantInMsg)
			}
		}
		restore()
	}
	// Weight reads what is there, whoever set it.
	f := newTM()
	p := newProvider(t, f, settings())
	if err := p.SetWeight(ctx, "shop", 10); err != nil {
		t.Fatal(err)
	}
	f.endpoints[greenEP] = state{true, 555}
	if w, err := p.Weight(ctx, "shop"); err != nil || w == 10 {
		t.Fatalf("Weight after an outside change = %d, %v", w, err)
	}
}

func TestBadSettings(t *testing.T) {
	for _, c := range []struct {
		name    string
		change  func(s map[string]any)
		setting string
	}{
		{"no subscription", func(s map[string]any) { delete(s, "subscriptionId") }, "subscriptionId"},
		{"bad subscription", func(s map[string]any) { s["subscriptionId"] = "my-sub" }, "subscriptionId"},
		{"no resource group", func(s map[string]any) { delete(s, "resourceGroup") }, "resourceGroup"},
		{"bad resource group", func(s map[string]any) { s["resourceGroup"] = "rg/x" }, "resourceGroup"},
		{"no profile", func(s map[string]any) { delete(s, "profile") }, "profile"},
		{"bad profile", func(s map[string]any) { s["profile"] = "a/b" }, "profile"},
		{"no blue", func(s map[string]any) { delete(s, "blueEndpoint") }, "blueEndpoint"},
		{"no green", func(s map[string]any) { delete(s, "greenEndpoint") }, "greenEndpoint"},
		{"same endpoints", func(s map[string]any) { s["greenEndpoint"] = blueEP }, "greenEndpoint"},
		{"bad endpoint type", func(s map[string]any) { s["endpointType"] = "cnameEndpoints" }, "endpointType"},
		{"unknown setting", func(s map[string]any) { s["clientSecret"] = "x" }, "clientSecret"},
		{"wrong type", func(s map[string]any) { s["profile"] = 3 }, "profile"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := settings()
			c.change(s)
			_, err := New(s)
			if !errors.Is(err, providers.ErrBadConfig) {
				t.Fatalf("New = %v; want ErrBadConfig", err)
			}
			if msg := err.Error(); !strings.Contains(msg, c.setting) || strings.Contains(msg, "\n") {
				t.Fatalf("New = %q; want one line naming %s", msg, c.setting)
			}
		})
	}
	for _, typ := range []string{"azureEndpoints", "externalEndpoints", "nestedEndpoints", ""} {
		s := settings()
		if typ != "" {
			s["endpointType"] = typ
		}
		if _, err := New(s); err != nil {
			t.Errorf("New with endpointType %q: %v", typ, err)
		}
	}
}

func TestBuilder(t *testing.T) {
	b := NewBuilder()
	if b.Type != "azuretm" {
		t.Fatalf("Type = %q", b.Type)
	}
	v, err := b.New(settings())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(providers.Traffic); !ok {
		t.Fatalf("%T is not a providers.Traffic", v)
	}
}

func TestCheckPlanAndLingerUseTheProfilesTTL(t *testing.T) {
	f := newTM()
	p := newProvider(t, f, settings())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	plan := []providers.PlanStep{
		{Index: 2, Kind: "setWeight", Green: 10},
		{Index: 3, Kind: "soak", Green: 10, Hold: 30 * time.Second},
	}
	err := p.CheckPlan(ctx, "shop", plan)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "plan[3] (soak at 10% green): 30s is shorter than the DNS TTL of Traffic Manager profile shop-tm (1m0s)") {
		t.Fatalf("CheckPlan with a 30s soak and a 60s TTL = %v; want ErrBadConfig naming plan[3] and the TTL", err)
	}
	f.mu.Lock()
	f.ttl = 30
	f.mu.Unlock()
	if err := p.CheckPlan(ctx, "shop", plan); err != nil {
		t.Fatalf("CheckPlan with a 30s soak and a 30s TTL = %v; want nil", err)
	}
	if d, err := p.Linger(ctx, "shop", providers.Blue); err != nil || d != 30*time.Second {
		t.Fatalf("Linger = %s, %v; want 30s", d, err)
	}
	restore := f.fail(http.StatusForbidden, "AuthorizationFailed")
	defer restore()
	if err := p.CheckPlan(ctx, "shop", plan); !errors.Is(err, providers.ErrInvalid) {
		t.Fatalf("CheckPlan while denied = %v; want ErrInvalid", err)
	}
}
