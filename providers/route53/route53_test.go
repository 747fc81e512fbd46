package route53

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/awsapi/awstest"
	"github.com/cutoverhq/cutover/providers/providertest"
	"github.com/cutoverhq/cutover/providers/route53/r53fake"
)

const (
	zone = "Z0123456789ABCDEFGHIJ"
	app  = "shop"
)

func awsEnv(t *testing.T) { awstest.Env(t, "AWS_ENDPOINT_URL_ROUTE_53") }

// reset puts the zone back: blue at 100, green at 0, among other records that
// sort before and after them (so that the provider must page and filter).
func reset(s *r53fake.Server) {
	s.SetZone(zone,
		r53fake.Weighted("api.example.com", "A", "", 1, "192.0.2.1"),
		r53fake.Weighted("shop.example.com", "A", "a-other", 5, "192.0.2.9"),
		r53fake.Weighted("shop.example.com", "A", "blue", 100, "192.0.2.10"),
		r53fake.Weighted("shop.example.com", "A", "green", 0, "192.0.2.20"),
		r53fake.Weighted("shop.example.com", "TXT", "", 1, `"v=1"`),
		r53fake.Weighted("www.example.com", "CNAME", "", 1, "shop.example.com"),
	)
}

func fake(t *testing.T) *r53fake.Server {
	t.Helper()
	awsEnv(t)
	s := r53fake.New()
	t.Cleanup(s.Close)
	reset(s)
	return s
}

func newProvider(t *testing.T, s *r53fake.Server) *Provider {
	t.Helper()
	p, err := New(map[string]any{
		"hostedZoneId": zone, "recordName": "Shop.Example.com", "recordType": "A",
		"blueSetIdentifier": "blue", "greenSetIdentifier": "green", "endpoint": s.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.backoff, p.poll = awstest.FastBackoff{}, time.Millisecond
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func weights(s *r53fake.Server) map[string]int {
	m := map[string]int{}
	for _, r := range s.Zone(zone) {
		if r.Name == "shop.example.com." && r.Type == "A" {
			m[r.SetIdentifier] = *r.Weight
		}
	}
	return m
}

func TestConformance(t *testing.T) {
	s := fake(t)
	providertest.Traffic(t, providertest.Target{
		App: app,
		New: func(t *testing.T) providers.Traffic {
			s.Restore()
			reset(s)
			return newProvider(t, s)
		},
		Fail: func(t *testing.T, kind providertest.FailKind) func() {
			switch kind {
			case providertest.FailThrottle:
				s.Fail(r53fake.Failure{Status: 400, Code: "Throttling", Message: "Rate exceeded"})
			case providertest.FailServer:
				s.Fail(r53fake.Failure{Status: 503, Code: "ServiceUnavailable", Message: "Service unavailable"})
			case providertest.FailDenied:
				s.Fail(r53fake.Failure{Status: 403, Code: "AccessDenied", Message: "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: route53:ListResourceRecordSets"})
			case providertest.FailNotFound:
				s.Fail(r53fake.Failure{Status: 404, Code: "NoSuchHostedZone", Message: "No hosted zone found with ID: " + zone})
			default:
				return nil
			}
			return s.Restore
		},
	})
}

func TestSetWeightUpsertsWaitsAndReadsBack(t *testing.T) {
	s := fake(t)
	s.PendingPolls = 3
	p := newProvider(t, s)
	if err := p.SetWeight(ctx(t), app, 10); err != nil {
		t.Fatal(err)
	}
	if w := weights(s); w["blue"] != 90 || w["green"] != 10 || w["a-other"] != 5 {
		t.Errorf("weights = %v; want blue 90, green 10, a-other untouched", w)
	}
	calls := s.Calls()
	if n := strings.Count(strings.Join(calls, " "), "GetChange"); n != 4 {
		t.Errorf("calls = %v; want GetChange polled until INSYNC (4 times)", calls)
	}
	if last := calls[len(calls)-1]; last != "ListResourceRecordSets" {
		t.Errorf("calls = %v; want the read-back last", calls)
	}
	for _, r := range s.Zone(zone) {
		if r.SetIdentifier == "green" && (r.TTL != 60 || len(r.Values) != 1 || r.Values[0].Value != "192.0.2.20") {
			t.Errorf("green record lost its value or TTL: %+v", r)
		}
	}
}

func TestChangeNotInSyncBeforeDeadlineIsRetryable(t *testing.T) {
	s := fake(t)
	s.PendingPolls = 1 << 30
	p := newProvider(t, s)
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p.SetWeight(c, app, 10)
	if err == nil || providertest.Permanent(err) || !strings.Contains(err.Error(), "PENDING") {
		t.Fatalf("SetWeight = %v; want a retryable error saying the change is PENDING", err)
	}
}

func TestWeightNormalizes(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s)
	for _, tt := range []struct{ blue, green, want int }{{255, 0, 0}, {0, 255, 100}, {3, 1, 25}, {0, 0, 50}, {1, 2, 67}} {
		s.SetZone(zone, r53fake.Weighted("shop.example.com", "A", "blue", tt.blue, "192.0.2.10"), r53fake.Weighted("shop.example.com", "A", "green", tt.green, "192.0.2.20"))
		if w, err := p.Weight(ctx(t), app); err != nil || w != tt.want {
			t.Errorf("Weight with blue %d green %d = %d, %v; want %d", tt.blue, tt.green, w, err, tt.want)
		}
	}
}

func TestMissingOrUnweightedRecord(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s)
	s.SetZone(zone, r53fake.Weighted("shop.example.com", "A", "blue", 100, "192.0.2.10"))
	if err := p.SetWeight(ctx(t), app, 0); !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), `set identifier "green"`) {
		t.Errorf("SetWeight without a green record = %v; want ErrNotFound naming it", err)
	}
	g := r53fake.Weighted("shop.example.com", "A", "green", 0, "192.0.2.20")
	g.Weight = nil
	s.SetZone(zone, r53fake.Weighted("shop.example.com", "A", "blue", 100, "192.0.2.10"), g)
	if _, err := p.Weight(ctx(t), app); !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "not a weighted record") {
		t.Errorf("Weight with an unweighted green = %v; want ErrInvalid", err)
	}
	if slices.Contains(s.Calls(), "ChangeResourceRecordSets") {
		t.Errorf("a change was made: %v", s.Calls())
	}
}

func TestReadBackMismatchIsRetryable(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s)
	s.IgnoreWrites(true)
	err := p.SetWeight(ctx(t), app, 10)
	if err == nil || providertest.Permanent(err) || !strings.Contains(err.Error(), "read back blue weight 100, green weight 0; want 90 and 10") {
		t.Fatalf("SetWeight = %v; want a retryable read-back error", err)
	}
}

func TestErrorClassification(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s)
	for _, tt := range []struct {
		f    r53fake.Failure
		kind error
	}{
		{r53fake.Failure{Status: 400, Code: "Throttling", Message: "Rate exceeded"}, nil},
		{r53fake.Failure{Status: 400, Code: "PriorRequestNotComplete", Message: "busy"}, nil},
		{r53fake.Failure{Status: 500, Code: "InternalFailure", Message: "oops"}, nil},
		{r53fake.Failure{Status: 403, Code: "AccessDenied", Message: "not authorized"}, providers.ErrInvalid},
		{r53fake.Failure{Status: 404, Code: "NoSuchHostedZone", Message: "No hosted zone found"}, providers.ErrNotFound},
		{r53fake.Failure{Status: 400, Code: "InvalidInput", Message: "bad"}, providers.ErrInvalid},
	} {
		s.Fail(tt.f)
		err := p.SetWeight(ctx(t), app, 0)
		s.Restore()
		if err == nil {
			t.Errorf("%s: SetWeight succeeded", tt.f.Code)
			continue
		}
		if tt.kind == nil && providertest.Permanent(err) {
			t.Errorf("%s: %v is permanent; want retryable", tt.f.Code, err)
		}
		if tt.kind != nil && (!errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.f.Message)) {
			t.Errorf("%s: %v; want %v with AWS's message", tt.f.Code, err, tt.kind)
		}
		if !strings.HasPrefix(err.Error(), "set green weight to 0 on shop.example.com. A records") {
			t.Errorf("%s: error %q lacks its context", tt.f.Code, err)
		}
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	base := map[string]any{"hostedZoneId": zone, "recordName": "shop.example.com", "recordType": "A", "blueSetIdentifier": "blue", "greenSetIdentifier": "green"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tt := range []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"no zone", with("hostedZoneId", nil), "hostedZoneId is required"},
		{"bad zone", with("hostedZoneId", "example.com"), `hostedZoneId "example.com"`},
		{"no name", with("recordName", nil), "recordName is required"},
		{"wildcard", with("recordName", "*.example.com"), "recordName"},
		{"no type", with("recordType", nil), "recordType is required"},
		{"MX", with("recordType", "MX"), `recordType "MX"`},
		{"no blue", with("blueSetIdentifier", nil), "blueSetIdentifier is required"},
		{"no green", with("greenSetIdentifier", nil), "greenSetIdentifier is required"},
		{"same identifiers", with("greenSetIdentifier", "blue"), "both"},
		{"bad endpoint", with("endpoint", "localhost:4566"), "endpoint"},
		{"unknown setting", with("ttl", 60), `unknown setting "ttl"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.settings)
			if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("New = %v; want a one-line ErrBadConfig containing %q", err, tt.want)
			}
		})
	}
	if _, err := New(with("hostedZoneId", "/hostedzone/"+zone)); err != nil {
		t.Errorf("New with a /hostedzone/ prefix: %v", err)
	}
}

// setTTL changes the TTL of the shop.example.com A record with the set identifier.
func setTTL(s *r53fake.Server, id string, ttl int) {
	rs := s.Zone(zone)
	for i := range rs {
		if rs[i].SetIdentifier == id && rs[i].Type == "A" && rs[i].Name == "shop.example.com." {
			rs[i].TTL = ttl
		}
	}
	s.SetZone(zone, rs...)
}

func TestCheckPlanRefusesAHoldShorterThanTheTTL(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s)
	plan := func(soak time.Duration) []providers.PlanStep {
		return []providers.PlanStep{
			{Index: 0, Kind: "provision"},
			{Index: 1, Kind: "setWeight", Green: 10},
			{Index: 2, Kind: "soak", Green: 10, Hold: 5 * time.Minute},
			{Index: 3, Kind: "setWeight", Green: 50},
			{Index: 4, Kind: "soak", Green: 50, Hold: soak},
			{Index: 5, Kind: "promote", Green: 100},
			// A hold at 100% judges nothing against blue: no TTL applies.
			{Index: 6, Kind: "soak", Green: 100, Hold: time.Second},
		}
	}
	// The records' TTL is 60s.
	if err := p.CheckPlan(ctx(t), app, plan(time.Minute)); err != nil {
		t.Fatalf("a 60s soak with a 60s TTL: %v", err)
	}
	err := p.CheckPlan(ctx(t), app, plan(30*time.Second))
	if !errors.Is(err, providers.ErrBadConfig) {
		t.Fatalf("a 30s soak with a 60s TTL = %v; want ErrBadConfig", err)
	}
	for _, want := range []string{"plan[4] (soak at 50% green)", "30s is shorter than the TTL of the shop.example.com. A records (1m0s)", "shop.example.com."} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is more than one line", err)
	}

	// The longer TTL of the two records counts.
	setTTL(s, "green", 600)
	if err := p.CheckPlan(ctx(t), app, plan(time.Minute)); err == nil || !strings.Contains(err.Error(), "plan[2]") {
		t.Fatalf("a 5m soak and a 1m soak with a 600s TTL on green = %v; want plan[2]'s soak refused first", err)
	}
}

func TestCheckPlanNeedsTheRecords(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s)
	s.SetZone(zone)
	err := p.CheckPlan(ctx(t), app, []providers.PlanStep{{Index: 1, Kind: "soak", Green: 10, Hold: time.Hour}})
	if !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("CheckPlan without records = %v; want ErrNotFound", err)
	}
}

func TestLingerIsTheColorsTTL(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s)
	setTTL(s, "blue", 120)
	for c, want := range map[providers.Color]time.Duration{providers.Blue: 2 * time.Minute, providers.Green: time.Minute} {
		got, err := p.Linger(ctx(t), app, c)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("Linger(%s) = %s; want %s", c, got, want)
		}
	}
}
