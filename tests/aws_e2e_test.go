package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers/awsapi/awstest"
	"github.com/cutoverhq/cutover/providers/beanstalk/ebfake"
	"github.com/cutoverhq/cutover/providers/route53/r53fake"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// The AWS end-to-end tests release through the real worker and CLI with the
// AWS providers pointed (endpoint:) at the in-process fakes, which speak the
// services' wire protocols: Elastic Beanstalk (ebfake, AWS Query) and Route 53
// (r53fake, REST-XML). The worker runs the real AWS SDK with static test
// credentials from the environment (awstest.Env, inherited by the worker
// processes); every request stays on loopback.

const (
	ebApp      = "shop"
	ebBlue     = "shop-blue"
	ebGreen    = "shop-green"
	liveCNAME  = "shop.eu-west-1.elasticbeanstalk.com"
	greenCNAME = "shop-green.eu-west-1.elasticbeanstalk.com"
	r53Zone    = "Z0CUTOVERE2E"
	r53Name    = "shop.example.com"
)

// awsCluster is a dev server with one worker whose environment carries the
// AWS test credentials. It must be started after awstest.Env.
func awsCluster(t *testing.T) *cluster {
	awstest.Env(t, "AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", "AWS_ENDPOINT_URL_ROUTE_53")
	return startClusterWith(t, 1)
}

// newEBFake is application shop with versions v1 and v2, and environments
// shop-blue (holding the live CNAME) and shop-green, both Ready, Green and
// running v1. An update or swap takes polls DescribeEnvironments calls; the
// specs set pollInterval to 1s, so each poll past the first adds a second.
func newEBFake(t *testing.T, polls int) *ebfake.Server {
	s := ebfake.New()
	t.Cleanup(s.Close)
	s.AddVersion(ebApp, "v1")
	s.AddVersion(ebApp, "v2")
	s.SetEnv(ebfake.Env{Name: ebBlue, Application: ebApp, CNAME: liveCNAME, VersionLabel: "v1", Status: "Ready", Health: "Green", HealthStatus: "Ok"})
	s.SetEnv(ebfake.Env{Name: ebGreen, Application: ebApp, CNAME: greenCNAME, VersionLabel: "v1", Status: "Ready", Health: "Green", HealthStatus: "Ok"})
	s.AfterUpdate(polls, "Green", "Ok")
	return s
}

// weightChange is one ChangeResourceRecordSets that r53fake accepted.
type weightChange struct {
	at          time.Time
	blue, green int
}

// r53Recorder is r53fake with the weights of every change it accepted.
type r53Recorder struct {
	fake *r53fake.Server
	URL  string
}

// newR53Fake is hosted zone r53Zone with two weighted CNAME records
// shop.example.com, shop-blue (weight 100, blue's environment CNAME) and
// shop-green (weight 0, green's), with the given TTL. Changes are INSYNC at
// once, so SetWeight does not wait the provider's 5s GetChange poll.
func newR53Fake(t *testing.T, ttl int) *r53Recorder {
	f := r53fake.New()
	t.Cleanup(f.Close)
	f.SetPendingPolls(0)
	blue := r53fake.Weighted(r53Name, "CNAME", ebBlue, 100, liveCNAME)
	green := r53fake.Weighted(r53Name, "CNAME", ebGreen, 0, greenCNAME)
	blue.TTL, green.TTL = ttl, ttl
	f.SetZone(r53Zone, blue, green)
	return &r53Recorder{fake: f, URL: f.URL}
}

func (r *r53Recorder) weightChanges() []weightChange {
	var out []weightChange
	for _, ch := range r.fake.Changes() {
		c := weightChange{at: ch.At, blue: -1, green: -1}
		for _, rec := range ch.Records {
			if rec.Weight == nil {
				continue
			}
			switch rec.SetIdentifier {
			case ebBlue:
				c.blue = *rec.Weight
			case ebGreen:
				c.green = *rec.Weight
			}
		}
		out = append(out, c)
	}
	return out
}

// weights reads the records' weights and TTLs from the fake, by set identifier.
func (r *r53Recorder) weights(t *testing.T) (weights, ttls map[string]int) {
	t.Helper()
	weights, ttls = map[string]int{}, map[string]int{}
	for _, rec := range r.fake.Zone(r53Zone) {
		if rec.Weight == nil {
			t.Fatalf("record %+v has no weight", rec)
		}
		weights[rec.SetIdentifier], ttls[rec.SetIdentifier] = *rec.Weight, rec.TTL
	}
	return weights, ttls
}

func count(calls []string, op string) int {
	n := 0
	for _, c := range calls {
		if c == op {
			n++
		}
	}
	return n
}

// beanstalkSettings is the beanstalk provider's settings block (YAML flow map).
func beanstalkSettings(eb *ebfake.Server, extra string) string {
	return fmt.Sprintf(`{region: eu-west-1, application: %s, blueEnvironment: %s, greenEnvironment: %s, healthTimeout: 30s, pollInterval: 1s, endpoint: "%s"%s}`,
		ebApp, ebBlue, ebGreen, eb.URL, extra)
}

// route53Spec is a release of shop v2 on beanstalk with route53 weights over
// the two environments' CNAMEs; soak is the soaks' duration.
func route53Spec(t *testing.T, eb *ebfake.Server, r53 *r53Recorder, soak string) string {
	return writeSpec(t, fmt.Sprintf(`app: shop
version: v2
providers:
  environment:
    type: beanstalk
    settings: %s
  traffic:
    type: route53
    settings:
      hostedZoneId: %s
      recordName: %s
      recordType: CNAME
      blueSetIdentifier: %s
      greenSetIdentifier: %s
      endpoint: "%s"
  analysis: {type: memory}
plan:
  - provision
  - validate
  - setWeight: 10
  - soak: {duration: %[7]s, interval: 1s}
  - setWeight: 50
  - soak: {duration: %[7]s, interval: 1s}
  - promote
  - decommission
`, beanstalkSettings(eb, ""), r53Zone, r53Name, ebBlue, ebGreen, r53.URL, soak))
}

func writeSpec(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// releaseWait runs `cutover release -f spec --wait` to its end and returns its
// combined output and exit code.
func (c *cluster) releaseWait(spec string, within time.Duration) (string, int) {
	c.t.Helper()
	out, errOut, code := harness.Run(c.t, within, c.env, c.cli, "release", "-f", spec, "--wait")
	return out + errOut, code
}

// finalStatus is `cutover status --json` of the app's last release.
func (c *cluster) finalStatus(app string) workflows.Status {
	c.t.Helper()
	out, errOut, code := c.cutover("status", app, "--json")
	var st workflows.Status
	if code != 0 {
		c.t.Fatalf("status %s: exit %d: %s", app, code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("status %s --json: %v\n%s", app, err, out)
	}
	return st
}

// requireUntouched checks that the fakes saw no change: green still runs v1,
// blue holds the live CNAME, and no UpdateEnvironment or CNAME swap was made.
func requireUntouched(t *testing.T, eb *ebfake.Server) {
	t.Helper()
	acts := eb.Actions()
	for _, a := range []string{"UpdateEnvironment", "SwapEnvironmentCNAMEs"} {
		if slices.Contains(acts, a) {
			t.Errorf("ebfake saw %s (actions %v); want nothing changed", a, acts)
		}
	}
	if g := eb.Env(ebGreen); g.VersionLabel != "v1" || g.CNAME != greenCNAME {
		t.Errorf("green after the refusal: %+v; want v1 on %s", g, greenCNAME)
	}
	if b := eb.Env(ebBlue); b.CNAME != liveCNAME {
		t.Errorf("blue after the refusal: %+v; want it holding %s", b, liveCNAME)
	}
}

func TestAWSBeanstalkWithRoute53Weights(t *testing.T) {
	c := awsCluster(t)
	// Green's update is Updating for one DescribeEnvironments, Ready on the
	// next, a poll (1s) later.
	eb := newEBFake(t, 2)
	r53 := newR53Fake(t, 1)
	spec := route53Spec(t, eb, r53, "2s")

	start := time.Now()
	out, code := c.releaseWait(spec, 2*time.Minute)
	t.Logf("release took %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("release --wait exited %d, want 0 (promoted)\n%s", code, out)
	}
	if !strings.Contains(out, "outcome: promoted") {
		t.Errorf("release output lacks the outcome:\n%s", out)
	}
	st := c.finalStatus("shop")
	if st.Outcome != workflows.OutcomePromoted || st.Weights != (workflows.Weights{Green: 100}) {
		t.Errorf("status: outcome %s, weights %+v; want promoted, all on green", st.Outcome, st.Weights)
	}

	// Beanstalk: green runs v2, deployed by one UpdateEnvironment; the CNAMEs
	// were not swapped (route53 moves the traffic).
	if g := eb.Env(ebGreen); g.VersionLabel != "v2" || g.Status != "Ready" || g.Health != "Green" || g.CNAME != greenCNAME {
		t.Errorf("green environment: %+v; want Ready, Green, v2 on %s", g, greenCNAME)
	}
	if b := eb.Env(ebBlue); b.VersionLabel != "v1" || b.CNAME != liveCNAME {
		t.Errorf("blue environment: %+v; want v1 on %s, untouched", b, liveCNAME)
	}
	var updates []string
	for _, call := range eb.Calls() {
		if call.Action == "UpdateEnvironment" {
			updates = append(updates, call.Form.Get("EnvironmentName")+"="+call.Form.Get("VersionLabel"))
		}
	}
	if !slices.Equal(updates, []string{"shop-green=v2"}) {
		t.Errorf("UpdateEnvironment calls %v; want one, shop-green=v2", updates)
	}
	if acts := eb.Actions(); slices.Contains(acts, "SwapEnvironmentCNAMEs") {
		t.Errorf("ebfake saw a CNAME swap (actions %v); route53 is the traffic provider", acts)
	}

	// Route 53: all on green now, the weights went 10, 50, 100 in one change
	// each, and the records' TTL and values are as they were.
	weights, ttls := r53.weights(t)
	if weights[ebBlue] != 0 || weights[ebGreen] != 100 {
		t.Errorf("record weights %v; want shop-blue 0, shop-green 100", weights)
	}
	if ttls[ebBlue] != 1 || ttls[ebGreen] != 1 {
		t.Errorf("record TTLs %v; want both still 1", ttls)
	}
	for _, rec := range r53.fake.Zone(r53Zone) {
		want := map[string]string{ebBlue: liveCNAME, ebGreen: greenCNAME}[rec.SetIdentifier]
		if len(rec.Values) != 1 || rec.Values[0].Value != want {
			t.Errorf("record %s values %v; want %s", rec.SetIdentifier, rec.Values, want)
		}
	}
	changes := r53.weightChanges()
	var history []string
	for _, ch := range changes {
		history = append(history, fmt.Sprintf("%d/%d", ch.blue, ch.green))
	}
	if want := []string{"90/10", "50/50", "0/100"}; !slices.Equal(history, want) {
		t.Errorf("weight changes (blue/green) %v; want %v", history, want)
	}
	if n := count(r53.fake.Calls(), "ChangeResourceRecordSets"); n != 3 {
		t.Errorf("r53fake saw %d ChangeResourceRecordSets; want 3", n)
	}

	// The soaks held each partial weight for their 2s.
	if len(changes) == 3 {
		for i, ch := range changes[:2] {
			if d := changes[i+1].at.Sub(ch.at); d < 2*time.Second {
				t.Errorf("green held %d%% for %s; want at least the 2s soak", ch.green, d)
			}
		}
	}

	// Blue's decommission waited the linger (blue's record TTL, 1s) after its
	// weight went to 0, and not the whole drain time.
	var dec workflows.StepRecord
	for _, s := range st.Steps {
		if s.Kind == "decommission" {
			dec = s
		}
	}
	if dec.Ended.IsZero() || len(changes) != 3 {
		t.Fatalf("decommission step %+v, %d weight changes", dec, len(changes))
	}
	if since := dec.Ended.Sub(changes[2].at); since < time.Second {
		t.Errorf("decommission ended %s after blue's weight went to 0; want at least the 1s TTL", since)
	}
	if d := dec.Duration(time.Now()); d > 15*time.Second {
		t.Errorf("decommission took %s; want about the 1s TTL, not the drain time", d)
	}
}

func TestAWSPreflightRefusesASoakShorterThanTheTTL(t *testing.T) {
	c := awsCluster(t)
	eb := newEBFake(t, 1)
	r53 := newR53Fake(t, 60)
	spec := route53Spec(t, eb, r53, "2s")

	start := time.Now()
	out, code := c.releaseWait(spec, time.Minute)
	t.Logf("release took %s", time.Since(start).Round(time.Millisecond))
	if code != 1 {
		t.Fatalf("release --wait exited %d; want 1 (failed: the preflight refuses the plan)\n%s", code, out)
	}
	t.Logf("refused:\n%s", grepLines(out, "preflight"))
	for _, want := range []string{"preflight", "route53", "plan[3]", "soak at 10% green", "2s is shorter than", "TTL", "1m0s", "nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("release output lacks %q:\n%s", want, out)
		}
	}
	st := c.finalStatus("shop")
	if st.Outcome != workflows.OutcomeFailed || st.Weights != (workflows.Weights{Blue: 100}) {
		t.Errorf("status: outcome %s, weights %+v; want failed, all on blue", st.Outcome, st.Weights)
	}
	for _, s := range st.Steps {
		if s.State != workflows.StatePending {
			t.Errorf("step %d %s is %s; want no step run", s.Index, s.Kind, s.State)
		}
	}

	requireUntouched(t, eb)
	calls := r53.fake.Calls()
	if count(calls, "ListResourceRecordSets") == 0 {
		t.Errorf("r53fake calls %v; want the preflight to have read the records", calls)
	}
	if n := count(calls, "ChangeResourceRecordSets"); n != 0 {
		t.Errorf("r53fake saw %d ChangeResourceRecordSets (calls %v); want none", n, calls)
	}
	if weights, _ := r53.weights(t); weights[ebBlue] != 100 || weights[ebGreen] != 0 {
		t.Errorf("record weights %v; want shop-blue 100, shop-green 0 as they were", weights)
	}
}

// swapSpec is a release of shop v2 on beanstalk alone: environment and
// traffic (the CNAME swap) with the live CNAME.
func swapSpec(t *testing.T, eb *ebfake.Server, steps string) string {
	settings := beanstalkSettings(eb, ", liveCNAME: "+liveCNAME)
	return writeSpec(t, fmt.Sprintf(`app: shop
version: v2
providers:
  environment: {type: beanstalk, settings: %s}
  traffic: {type: beanstalk, settings: %s}
  analysis: {type: memory}
plan:
%s`, settings, settings, steps))
}

func TestAWSBeanstalkSwap(t *testing.T) {
	c := awsCluster(t)

	t.Run("classic blue-green swaps the live CNAME to green", func(t *testing.T) {
		c.t = t
		// Updates and swaps are done at the first describe after them: no poll.
		eb := newEBFake(t, 1)
		spec := swapSpec(t, eb, "  - provision\n  - validate\n  - promote\n  - decommission\n")
		start := time.Now()
		out, code := c.releaseWait(spec, 2*time.Minute)
		t.Logf("release took %s", time.Since(start).Round(time.Millisecond))
		if code != 0 {
			t.Fatalf("release --wait exited %d, want 0 (promoted)\n%s", code, out)
		}
		if st := c.finalStatus("shop"); st.Outcome != workflows.OutcomePromoted || st.Weights != (workflows.Weights{Green: 100}) {
			t.Errorf("status: outcome %s, weights %+v; want promoted, all on green", st.Outcome, st.Weights)
		}
		if g := eb.Env(ebGreen); g.CNAME != liveCNAME || g.VersionLabel != "v2" || g.Status != "Ready" || g.Health != "Green" {
			t.Errorf("green environment: %+v; want Ready, Green, v2 holding %s", g, liveCNAME)
		}
		if b := eb.Env(ebBlue); b.CNAME != greenCNAME || b.VersionLabel != "v1" {
			t.Errorf("blue environment: %+v; want v1 on %s after the swap", b, greenCNAME)
		}
		acts := eb.Actions()
		if n := count(acts, "SwapEnvironmentCNAMEs"); n != 1 {
			t.Errorf("ebfake saw %d CNAME swaps (actions %v); want 1", n, acts)
		}
		if n := count(acts, "UpdateEnvironment"); n != 1 {
			t.Errorf("ebfake saw %d UpdateEnvironment (actions %v); want 1", n, acts)
		}
	})

	t.Run("environments take turns: one set of settings, release after release", func(t *testing.T) {
		c.t = t
		eb := newEBFake(t, 1)
		eb.AddVersion(ebApp, "v3")
		settings := fmt.Sprintf(`{region: eu-west-1, application: %s, environments: [%s, %s], liveCNAME: %s, healthTimeout: 30s, pollInterval: 1s, endpoint: "%s"}`,
			ebApp, ebBlue, ebGreen, liveCNAME, eb.URL)
		for _, r := range []struct{ version, live string }{{"v2", ebGreen}, {"v3", ebBlue}} {
			spec := writeSpec(t, fmt.Sprintf(`app: shop
version: %s
providers:
  environment: {type: beanstalk, settings: %s}
  traffic: {type: beanstalk, settings: %s}
  analysis: {type: memory}
plan: [provision, validate, promote, decommission]
`, r.version, settings, settings))
			if out, code := c.releaseWait(spec, 2*time.Minute); code != 0 {
				t.Fatalf("release of %s exited %d, want 0 (promoted)\n%s", r.version, code, out)
			}
			if e := eb.Env(r.live); e.CNAME != liveCNAME || e.VersionLabel != r.version {
				t.Errorf("after %s: environment %s is %+v; want it running %s with the live CNAME", r.version, r.live, e, r.version)
			}
		}
		var deployed []string
		for _, call := range eb.Calls() {
			if call.Action == "UpdateEnvironment" {
				deployed = append(deployed, call.Form.Get("EnvironmentName")+"="+call.Form.Get("VersionLabel"))
			}
		}
		if want := []string{ebGreen + "=v2", ebBlue + "=v3"}; !slices.Equal(deployed, want) {
			t.Errorf("deployments %v; want %v (each release to the environment not live)", deployed, want)
		}
	})

	t.Run("a partial weight is refused by the preflight", func(t *testing.T) {
		c.t = t
		eb := newEBFake(t, 1)
		spec := swapSpec(t, eb, "  - provision\n  - validate\n  - setWeight: 10\n  - promote\n  - decommission\n")
		out, code := c.releaseWait(spec, time.Minute)
		if code != 1 {
			t.Fatalf("release --wait exited %d; want 1 (failed: the preflight refuses setWeight 10)\n%s", code, out)
		}
		t.Logf("refused:\n%s", grepLines(out, "preflight"))
		for _, want := range []string{"preflight", "beanstalk", "plan[2]", "all at once", "10%", "nothing was changed"} {
			if !strings.Contains(out, want) {
				t.Errorf("release output lacks %q:\n%s", want, out)
			}
		}
		if st := c.finalStatus("shop"); st.Outcome != workflows.OutcomeFailed || st.Weights != (workflows.Weights{Blue: 100}) {
			t.Errorf("status: outcome %s, weights %+v; want failed, all on blue", st.Outcome, st.Weights)
		}
		requireUntouched(t, eb)
	})
}
