// Package beanstalk releases an app on AWS Elastic Beanstalk the classic
// blue/green way: two environments of one application, the release's version
// deployed to the green environment, and a CNAME swap that moves all the
// traffic at once. It is both an environment and a traffic provider.
//
// Credentials come from the AWS SDK's default chain (environment, shared config
// and credentials files, SSO, web identity, ECS and EC2 instance roles), never
// from release.yaml. The IAM policy it needs:
//
//	elasticbeanstalk:DescribeApplicationVersions   (Provision)
//	elasticbeanstalk:DescribeEnvironments          (Provision, Validate, SetWeight, Weight)
//	elasticbeanstalk:DescribeEnvironmentHealth     (the causes of a failed health check; optional)
//	elasticbeanstalk:UpdateEnvironment             (Provision)
//	elasticbeanstalk:SwapEnvironmentCNAMEs         (SetWeight)
//
// UpdateEnvironment works through CloudFormation, Auto Scaling, EC2, ELB and
// S3 on the caller's behalf: the caller also needs what AWS's managed policy
// AdministratorAccess-AWSElasticBeanstalk grants for an update (among others
// cloudformation:UpdateStack/DescribeStack*, autoscaling:*, ec2:Describe*,
// elasticloadbalancing:*, s3:GetObject on the version bundle and the
// elasticbeanstalk-* bucket), unless the environment has a service role
// (operations role) that Beanstalk assumes instead.
//
// Provision does not create the application version: the release's version
// must already be an application version label (CI uploads the bundle and
// calls CreateApplicationVersion).
//
// Which environment is green: with blueEnvironment and greenEnvironment, the
// names are fixed, and Provision refuses to deploy to green while green holds
// the live CNAME (liveCNAME), which would be an in-place deploy of the live
// app; after a promote, green holds it, so the next release needs the names
// swapped. With environments: [a, b] instead, the two take turns and the same
// release.yaml serves every release: green is the environment that runs the
// release's version (once Provision deployed it), or, before that, the one not
// holding the live CNAME. The traffic calls need the release to tell them
// apart, so the activities use the view For returns (providers.Scoped).
//
// Traffic moves all at once: SetWeight takes 0 (blue holds the live CNAME)
// and 100 (green holds it); any other weight is refused. The provider is a
// providers.PlanChecker: a plan with a step that holds green at another weight
// (a setWeight to 10, a soak or analysis at 50%) is refused by CheckPlan before
// the release touches anything, rather than by SetWeight once green is
// provisioned. For canary weights, use the route53 provider over the two
// environments' CNAMEs.
package beanstalk

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	eb "github.com/aws/aws-sdk-go-v2/service/elasticbeanstalk"
	"github.com/aws/aws-sdk-go-v2/service/elasticbeanstalk/types"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/awsapi"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "beanstalk"

var (
	_ providers.PlanChecker = (*Provider)(nil)
	_ providers.Scoped      = (*Provider)(nil)
)

// defaultHealthTimeout is how long Provision and SetWeight wait for the
// environments to be Ready (and green to be healthy) when healthTimeout is unset.
const defaultHealthTimeout = 15 * time.Minute

// defaultPoll is how often the environments are described while waiting.
const defaultPoll = 10 * time.Second

// Settings are the provider's release.yaml settings.
type Settings struct {
	// Region is the environments' AWS region.
	Region string `json:"region,omitempty"`
	// Application is the Elastic Beanstalk application.
	Application string `json:"application,omitempty"`
	// BlueEnvironment and GreenEnvironment are the two environments' names,
	// fixed: after a promote, the next release swaps them.
	BlueEnvironment  string `json:"blueEnvironment,omitempty"`
	GreenEnvironment string `json:"greenEnvironment,omitempty"`
	// Environments instead names the two environments, which take turns:
	// the one holding liveCNAME is blue, and the release deploys to the other.
	Environments []string `json:"environments,omitempty"`
	// LiveCNAME is the CNAME users reach (shop.eu-west-1.elasticbeanstalk.com):
	// the environment holding it serves the traffic. Required for traffic.
	LiveCNAME string `json:"liveCNAME,omitempty"`
	// HealthTimeout bounds the waits for Ready and Green (default 15m).
	HealthTimeout spec.Duration `json:"healthTimeout,omitempty"`
	// PollInterval is how often the environments are described while
	// waiting (default 10s, at least 1s).
	PollInterval spec.Duration `json:"pollInterval,omitempty"`
	// Endpoint overrides the Elastic Beanstalk endpoint (tests, LocalStack).
	Endpoint string `json:"endpoint,omitempty"`
}

// Provider is an Elastic Beanstalk environment and traffic provider.
type Provider struct {
	s Settings

	conn *conn
	// backoff replaces the SDK retryer's backoff (tests); poll is the
	// wait's interval, pollInterval unless a test shortens it.
	backoff retry.BackoffDelayer
	poll    time.Duration
}

// conn is the Elastic Beanstalk client, made on first use and shared by the
// provider's release views.
type conn struct {
	mu     sync.Mutex
	client *eb.Client
}

// New checks the settings and returns a provider. It does no I/O: the AWS
// configuration and credentials are loaded on first use.
func New(settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	required := []struct{ name, v, what string }{
		{"region", s.Region, "the environments' AWS region, like eu-west-1"},
		{"application", s.Application, "the Elastic Beanstalk application's name"},
	}
	if len(s.Environments) == 0 {
		required = append(required,
			struct{ name, v, what string }{"blueEnvironment", s.BlueEnvironment, "the environment serving the live version; or environments: [a, b]"},
			struct{ name, v, what string }{"greenEnvironment", s.GreenEnvironment, "the environment the release deploys to; or environments: [a, b]"})
	}
	for _, r := range required {
		if strings.TrimSpace(r.v) == "" {
			return nil, providers.BadConfig("%s is required (%s)", r.name, r.what)
		}
	}
	switch {
	case len(s.Environments) > 0 && (s.BlueEnvironment != "" || s.GreenEnvironment != ""):
		return nil, providers.BadConfig("environments and blueEnvironment/greenEnvironment both name the environments: set one")
	case len(s.Environments) > 0 && len(s.Environments) != 2:
		return nil, providers.BadConfig("environments names %d environments; want two, which take turns as blue and green", len(s.Environments))
	case len(s.Environments) == 2 && (strings.TrimSpace(s.Environments[0]) == "" || strings.TrimSpace(s.Environments[1]) == ""):
		return nil, providers.BadConfig("environments %q has an empty name", s.Environments)
	case len(s.Environments) == 2 && s.Environments[0] == s.Environments[1]:
		return nil, providers.BadConfig("environments names %q twice", s.Environments[0])
	case len(s.Environments) == 2 && s.LiveCNAME == "":
		return nil, providers.BadConfig("liveCNAME is required with environments: the environment holding it is blue, the other green")
	case len(s.Environments) == 0 && s.BlueEnvironment == s.GreenEnvironment:
		return nil, providers.BadConfig("blueEnvironment and greenEnvironment are the same environment %q", s.BlueEnvironment)
	}
	if s.LiveCNAME != "" && (strings.Contains(s.LiveCNAME, "/") || strings.Contains(s.LiveCNAME, ":") || !strings.Contains(s.LiveCNAME, ".")) {
		return nil, providers.BadConfig("liveCNAME %q is not a host name like shop.eu-west-1.elasticbeanstalk.com", s.LiveCNAME)
	}
	if d := s.HealthTimeout.D(); d < 0 {
		return nil, providers.BadConfig("healthTimeout %s is negative", d)
	} else if d == 0 {
		s.HealthTimeout = spec.Duration(defaultHealthTimeout)
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, providers.BadConfig("endpoint %q is not an http:// or https:// URL", s.Endpoint)
		}
	}
	switch d := s.PollInterval.D(); {
	case d == 0:
		s.PollInterval = spec.Duration(defaultPoll)
	case d < time.Second:
		return nil, providers.BadConfig("pollInterval %s is below 1s: Elastic Beanstalk throttles callers that describe that often", d)
	}
	return &Provider{s: s, poll: s.PollInterval.D(), conn: &conn{}}, nil
}

// NewBuilder returns the registry entry for the Elastic Beanstalk provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

// api returns the Elastic Beanstalk client, loading the AWS configuration on
// first use; a failure is not kept, so the next call tries again.
func (p *Provider) api(ctx context.Context) (*eb.Client, error) {
	p.conn.mu.Lock()
	defer p.conn.mu.Unlock()
	if p.conn.client != nil {
		return p.conn.client, nil
	}
	cfg, err := awsapi.Config(ctx, p.s.Region, p.backoff)
	if err != nil {
		return nil, err
	}
	p.conn.client = eb.NewFromConfig(cfg, func(o *eb.Options) {
		if p.s.Endpoint != "" {
			o.BaseEndpoint = aws.String(p.s.Endpoint)
		}
	})
	return p.conn.client, nil
}

// Provision deploys the release's version (an existing application version
// label) to the green environment and waits until green is Ready and healthy.
//
// Calls: DescribeApplicationVersions, DescribeEnvironments (green, blue),
// UpdateEnvironment (skipped when green already runs the version: a retry),
// then DescribeEnvironments every poll until Ready and Green, and
// DescribeEnvironmentHealth once if green turns out unhealthy.
func (p *Provider) Provision(ctx context.Context, r providers.Ref) (providers.Pool, error) {
	what := fmt.Sprintf("deploy version %q", r.Version)
	if r.Version == "" {
		return providers.Pool{}, providers.Invalid("%s: the release has no version (the application version label)", what)
	}
	c, err := p.api(ctx)
	if err != nil {
		return providers.Pool{}, fmt.Errorf("%s: %w", what, err)
	}
	vs, err := c.DescribeApplicationVersions(ctx, &eb.DescribeApplicationVersionsInput{
		ApplicationName: aws.String(p.s.Application), VersionLabels: []string{r.Version},
	})
	if err != nil {
		return providers.Pool{}, classify(err, what+": look up the application version")
	}
	if len(vs.ApplicationVersions) == 0 {
		return providers.Pool{}, providers.NotFound("%s: application %s has no application version labelled %q; Cutover does not create it: upload the bundle and run `aws elasticbeanstalk create-application-version --application-name %s --version-label %s --source-bundle ...` before the release",
			what, p.s.Application, r.Version, p.s.Application, r.Version)
	}
	if v := vs.ApplicationVersions[0]; v.Status == types.ApplicationVersionStatusFailed {
		return providers.Pool{}, providers.Invalid("%s: application version %q failed to process", what, r.Version)
	}
	deadline := time.Now().Add(p.s.HealthTimeout.D())
	envs, err := p.describe(ctx, c, what)
	if err != nil {
		return providers.Pool{}, err
	}
	n, err := p.resolve(envs, r.Version, what)
	if err != nil {
		return providers.Pool{}, err
	}
	green := n.green
	what = fmt.Sprintf("deploy version %q to environment %s", r.Version, green)
	g := envs[green]
	if p.live(g) && len(p.s.Environments) > 0 {
		return providers.Pool{}, providers.Invalid("%s: version %q is already live there (environment %s holds the live CNAME %s)", what, r.Version, green, p.s.LiveCNAME)
	}
	if p.live(g) {
		return providers.Pool{}, providers.Invalid("%s: green environment %s holds the live CNAME %s; deploying to it would update the live app in place: swap blueEnvironment and greenEnvironment in release.yaml, or name both in environments: [a, b] to let them take turns", what, green, p.s.LiveCNAME)
	}
	if aws.ToString(g.VersionLabel) != r.Version {
		if g.Status != types.EnvironmentStatusReady {
			// UpdateEnvironment refuses an environment that is not Ready.
			if _, err := p.waitFor(ctx, c, what, deadline, func(m map[string]types.EnvironmentDescription) (bool, error) {
				return m[green].Status == types.EnvironmentStatusReady, nil
			}); err != nil {
				return providers.Pool{}, err
			}
		}
		if _, err := c.UpdateEnvironment(ctx, &eb.UpdateEnvironmentInput{
			ApplicationName: aws.String(p.s.Application), EnvironmentName: aws.String(green), VersionLabel: aws.String(r.Version),
		}); err != nil {
			return providers.Pool{}, classify(err, what)
		}
	}
	env, err := p.waitFor(ctx, c, what, deadline, func(m map[string]types.EnvironmentDescription) (bool, error) {
		return p.healthy(ctx, c, what, m[green], r.Version)
	})
	if err != nil {
		return providers.Pool{}, err
	}
	return providers.Pool{Color: providers.Green, Version: r.Version, Instances: []string{aws.ToString(env[green].CNAME)}}, nil
}

// healthy says whether the environment is Ready, runs version and is Green; a
// Ready environment that is Red or Degraded, or runs another version, fails.
func (p *Provider) healthy(ctx context.Context, c *eb.Client, what string, e types.EnvironmentDescription, version string) (bool, error) {
	if e.Status != types.EnvironmentStatusReady {
		return false, nil
	}
	name := aws.ToString(e.EnvironmentName)
	if got := aws.ToString(e.VersionLabel); got != version {
		return false, providers.CheckFailed("%s: environment %s is Ready with version %q, not %q: the deployment failed (see the environment's events)", what, name, got, version)
	}
	if e.Health == types.EnvironmentHealthGreen || e.HealthStatus == types.EnvironmentHealthStatusOk {
		return true, nil
	}
	switch {
	case e.Health == types.EnvironmentHealthRed,
		e.HealthStatus == types.EnvironmentHealthStatusDegraded, e.HealthStatus == types.EnvironmentHealthStatusSevere:
		return false, providers.CheckFailed("%s: environment %s is %s", what, name, p.causes(ctx, c, e))
	}
	return false, nil // Yellow, Grey, Pending: wait
}

// causes describes an unhealthy environment: its health with the causes that
// DescribeEnvironmentHealth reports (enhanced health only), else the health.
func (p *Provider) causes(ctx context.Context, c *eb.Client, e types.EnvironmentDescription) string {
	s := string(e.Health)
	if e.HealthStatus != "" {
		s += " (" + string(e.HealthStatus) + ")"
	}
	out, err := c.DescribeEnvironmentHealth(ctx, &eb.DescribeEnvironmentHealthInput{
		EnvironmentName: e.EnvironmentName,
		AttributeNames:  []types.EnvironmentHealthAttribute{types.EnvironmentHealthAttributeColor, types.EnvironmentHealthAttributeHealthStatus, types.EnvironmentHealthAttributeCauses},
	})
	if err == nil && len(out.Causes) > 0 {
		s += ": " + strings.Join(out.Causes, "; ")
	}
	return s
}

// Validate checks that green is Ready, runs the release's version and is
// Green. The smoke paths are not run: this provider only reads Beanstalk's
// health (whose load balancer health check already probes the app's health
// URL); green answers on its own CNAME (Provision's pool instance) for any
// smoke test run elsewhere.
func (p *Provider) Validate(ctx context.Context, r providers.Ref, smoke []string) error {
	what := "validate green"
	c, err := p.api(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	envs, err := p.describe(ctx, c, what)
	if err != nil {
		return err
	}
	n, err := p.resolve(envs, r.Version, what)
	if err != nil {
		return err
	}
	what = fmt.Sprintf("validate environment %s", n.green)
	g := envs[n.green]
	ok, err := p.healthy(ctx, c, what, g, r.Version)
	if err != nil {
		return err
	}
	if !ok {
		// Updating or Yellow: not permanent, a retry may pass.
		return fmt.Errorf("%s: environment is %s with health %s, not Ready and Green", what, g.Status, g.Health)
	}
	return nil
}

// Decommission keeps the environment: terminating a Beanstalk environment
// (and its CNAME, load balancer and instances) is an operator's decision, and
// the next release deploys to it again. It returns nil without any call.
func (p *Provider) Decommission(ctx context.Context, r providers.Ref, col providers.Color) error {
	return nil
}

// SetWeight swaps the environments' CNAMEs so that green (100) or blue (0)
// holds the live CNAME, and waits until both environments are Ready again.
// Other weights are refused: the swap is all at once. With environments, it
// needs the release (For) to tell blue from green.
//
// Calls: DescribeEnvironments (until both are Ready), SwapEnvironmentCNAMEs
// (skipped when the live CNAME is already where it should be), then
// DescribeEnvironments every poll until both are Ready and the CNAME moved.
func (p *Provider) SetWeight(ctx context.Context, app string, green int) error {
	if len(p.s.Environments) > 0 {
		return p.unscoped(fmt.Sprintf("set green weight to %d", green))
	}
	return p.setWeight(ctx, green, "")
}

// Weight is 100 when green holds the live CNAME, 0 when blue does. With
// environments, it needs the release (For) to tell blue from green.
//
// Calls: DescribeEnvironments.
func (p *Provider) Weight(ctx context.Context, app string) (int, error) {
	if len(p.s.Environments) > 0 {
		return 0, p.unscoped("read green's weight")
	}
	return p.weightOf(ctx, "")
}

func (p *Provider) unscoped(what string) error {
	return providers.BadConfig("%s on environments %s: which is green depends on the release; use the provider through For", what, strings.Join(p.s.Environments, " and "))
}

// For returns the provider as the release of r.Version sees it. With
// environments, green is the environment that runs r.Version (the release
// deployed it there), or, before it does, the one not holding the live
// CNAME; with blueEnvironment and greenEnvironment, the release changes
// nothing.
func (p *Provider) For(r providers.Ref) providers.Traffic {
	return release{p: p, version: r.Version}
}

// release is the provider as one release sees it.
type release struct {
	p       *Provider
	version string
}

// Type names the provider.
func (v release) Type() string { return Type }

// SetWeight is Provider.SetWeight for the release.
func (v release) SetWeight(ctx context.Context, app string, green int) error {
	return v.p.setWeight(ctx, green, v.version)
}

// Weight is Provider.Weight for the release.
func (v release) Weight(ctx context.Context, app string) (int, error) {
	return v.p.weightOf(ctx, v.version)
}

func (p *Provider) setWeight(ctx context.Context, green int, version string) error {
	what := fmt.Sprintf("set green weight to %d on environments %s", green, strings.Join(p.names(), " and "))
	if green != 0 && green != 100 {
		return providers.Invalid("%s: Elastic Beanstalk swaps CNAMEs all at once: use setWeight only through promote, or the route53 provider over the two environment CNAMEs for 10/50", what)
	}
	if p.s.LiveCNAME == "" {
		return providers.BadConfig("%s: liveCNAME is required to use beanstalk as a traffic provider (the CNAME users reach)", what)
	}
	c, err := p.api(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	deadline := time.Now().Add(p.s.HealthTimeout.D())
	// Both Ready first: a swap under way has not moved the CNAMEs yet, and
	// SwapEnvironmentCNAMEs refuses environments that are not Ready.
	ready := func(m map[string]types.EnvironmentDescription) (bool, error) {
		for _, n := range p.names() {
			if m[n].Status != types.EnvironmentStatusReady {
				return false, nil
			}
		}
		return true, nil
	}
	envs, err := p.waitFor(ctx, c, what, deadline, ready)
	if err != nil {
		return err
	}
	n, err := p.resolve(envs, version, what)
	if err != nil {
		return err
	}
	what = fmt.Sprintf("set green weight to %d on environments %s (blue) and %s (green)", green, n.blue, n.green)
	if green > 0 && len(p.s.Environments) > 0 && aws.ToString(envs[n.green].VersionLabel) != version {
		// Green does not run the release yet: swapping would put the live
		// version on the other side, not the release.
		return providers.CheckFailed("%s: environment %s runs version %q, not the release's %q: provision it first", what, n.green, aws.ToString(envs[n.green].VersionLabel), version)
	}
	got, err := p.weight(envs, n, what)
	if err != nil {
		return err
	}
	if got == green {
		return nil
	}
	if _, err := c.SwapEnvironmentCNAMEs(ctx, &eb.SwapEnvironmentCNAMEsInput{
		SourceEnvironmentName: aws.String(n.blue), DestinationEnvironmentName: aws.String(n.green),
	}); err != nil {
		return classify(err, what+": swap CNAMEs")
	}
	if envs, err = p.waitFor(ctx, c, what+": after the swap", deadline, ready); err != nil {
		return err
	}
	if got, err = p.weight(envs, n, what+": read back"); err != nil {
		return err
	}
	if got != green {
		return fmt.Errorf("%s: read back weight %d after the CNAME swap", what, got)
	}
	return nil
}

func (p *Provider) weightOf(ctx context.Context, version string) (int, error) {
	what := fmt.Sprintf("read which of environments %s holds %s", strings.Join(p.names(), " and "), p.s.LiveCNAME)
	if p.s.LiveCNAME == "" {
		return 0, providers.BadConfig("%s: liveCNAME is required to use beanstalk as a traffic provider (the CNAME users reach)", what)
	}
	c, err := p.api(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	envs, err := p.describe(ctx, c, what)
	if err != nil {
		return 0, err
	}
	n, err := p.resolve(envs, version, what)
	if err != nil {
		return 0, err
	}
	return p.weight(envs, n, what)
}

// roles are a release's blue and green environments.
type roles struct{ blue, green string }

// names are the two environments, as release.yaml names them.
func (p *Provider) names() []string {
	if len(p.s.Environments) > 0 {
		return p.s.Environments
	}
	return []string{p.s.BlueEnvironment, p.s.GreenEnvironment}
}

// resolve says which environment is blue and which green for the release of
// version: fixed by release.yaml, or, with environments, green is the one
// that runs version, else the one not holding the live CNAME.
func (p *Provider) resolve(envs map[string]types.EnvironmentDescription, version, what string) (roles, error) {
	if len(p.s.Environments) == 0 {
		return roles{blue: p.s.BlueEnvironment, green: p.s.GreenEnvironment}, nil
	}
	a, b := p.s.Environments[0], p.s.Environments[1]
	runs := func(n string) bool { return version != "" && aws.ToString(envs[n].VersionLabel) == version }
	switch {
	case runs(a) && runs(b):
		return roles{}, providers.Invalid("%s: environments %s and %s both run version %q, so neither can be told apart as the release's green", what, a, b, version)
	case runs(a):
		return roles{blue: b, green: a}, nil
	case runs(b):
		return roles{blue: a, green: b}, nil
	case p.live(envs[a]):
		return roles{blue: a, green: b}, nil
	case p.live(envs[b]):
		return roles{blue: b, green: a}, nil
	}
	return roles{}, providers.Invalid("%s: neither environment holds the live CNAME %s (%s: %s, %s: %s)", what, p.s.LiveCNAME,
		a, aws.ToString(envs[a].CNAME), b, aws.ToString(envs[b].CNAME))
}

// CheckPlan refuses (BadConfig) a plan whose steps hold green at a weight
// other than 0% or 100%, naming the first such step: a CNAME swap cannot
// split the traffic. It makes no call.
func (p *Provider) CheckPlan(ctx context.Context, app string, plan []providers.PlanStep) error {
	for _, st := range plan {
		if st.Green == 0 || st.Green == 100 {
			continue
		}
		step := fmt.Sprintf("plan[%d]", st.Index)
		if st.Kind != "" {
			step += " (" + st.Kind + ")"
		}
		return providers.BadConfig("%s: beanstalk swaps the environments' CNAMEs all at once, so green is at 0%% or 100%%, never %d%%: remove the steps between provision and promote that hold a partial weight, or split traffic with the route53 provider over the two environments' CNAMEs",
			step, st.Green)
	}
	return nil
}

func (p *Provider) weight(envs map[string]types.EnvironmentDescription, n roles, what string) (int, error) {
	switch {
	case p.live(envs[n.green]):
		return 100, nil
	case p.live(envs[n.blue]):
		return 0, nil
	}
	return 0, providers.Invalid("%s: neither environment holds the live CNAME %s (blue %s: %s, green %s: %s)", what, p.s.LiveCNAME,
		n.blue, aws.ToString(envs[n.blue].CNAME), n.green, aws.ToString(envs[n.green].CNAME))
}

// live says whether the environment holds liveCNAME.
func (p *Provider) live(e types.EnvironmentDescription) bool {
	norm := func(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }
	return p.s.LiveCNAME != "" && norm(aws.ToString(e.CNAME)) == norm(p.s.LiveCNAME)
}

// describe returns the blue and green environments by name; either missing
// (or terminated) is NotFound.
func (p *Provider) describe(ctx context.Context, c *eb.Client, what string) (map[string]types.EnvironmentDescription, error) {
	out, err := c.DescribeEnvironments(ctx, &eb.DescribeEnvironmentsInput{
		ApplicationName:  aws.String(p.s.Application),
		EnvironmentNames: p.names(),
		IncludeDeleted:   aws.Bool(false),
	})
	if err != nil {
		return nil, classify(err, what+": describe the environments")
	}
	m := map[string]types.EnvironmentDescription{}
	for _, e := range out.Environments {
		if e.Status == types.EnvironmentStatusTerminated || e.Status == types.EnvironmentStatusTerminating {
			continue
		}
		m[aws.ToString(e.EnvironmentName)] = e
	}
	for _, n := range p.names() {
		if _, ok := m[n]; !ok {
			return nil, providers.NotFound("%s: application %s has no environment named %s", what, p.s.Application, n)
		}
	}
	return m, nil
}

// waitFor describes the environments every poll until done says so, ctx ends,
// or the deadline passes (a failed check: the environments never got there).
func (p *Provider) waitFor(ctx context.Context, c *eb.Client, what string, deadline time.Time, done func(map[string]types.EnvironmentDescription) (bool, error)) (map[string]types.EnvironmentDescription, error) {
	for {
		envs, err := p.describe(ctx, c, what)
		if err != nil {
			return nil, err
		}
		ok, err := done(envs)
		if err != nil || ok {
			return envs, err
		}
		if !time.Now().Before(deadline) {
			var st []string
			for _, n := range p.names() {
				e := envs[n]
				st = append(st, fmt.Sprintf("%s %s/%s", n, e.Status, e.Health))
			}
			return nil, providers.CheckFailed("%s: not done within healthTimeout %s (%s)", what, p.s.HealthTimeout, strings.Join(st, ", "))
		}
		t := time.NewTimer(p.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// classify gives an Elastic Beanstalk error its kind through awsapi.Classify;
// Beanstalk reports missing permissions as InsufficientPrivilegesException
// and missing environments as InvalidParameterValue (which Classify makes
// Invalid).
func classify(err error, what string) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InsufficientPrivilegesException" {
		return providers.Invalid("%s: %s: %s", what, ae.ErrorCode(), ae.ErrorMessage())
	}
	return awsapi.Classify(err, what)
}
