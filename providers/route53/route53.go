// Package route53 splits an app's traffic between blue and green with two
// Amazon Route 53 weighted records of the same name and type, told apart by
// their set identifiers; SetWeight changes their weights.
//
// Both records must exist (Cutover changes only their Weight; their values,
// alias targets, TTL and health checks stay as they are). DNS clients cache
// answers for the records' TTL, so a weight takes effect over that time.
//
// Credentials come from the AWS SDK's default chain, never from release.yaml.
// The IAM policy it needs:
//
//	route53:ListResourceRecordSets, route53:ChangeResourceRecordSets  (the hosted zone)
//	route53:GetChange                                                 (arn:aws:route53:::change/*)
package route53

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/awsapi"
)

// Type is the provider's name in release.yaml.
const Type = "route53"

// Settings are the provider's release.yaml settings.
type Settings struct {
	// HostedZoneID is the hosted zone holding the records (Z0123456789ABC).
	HostedZoneID string `json:"hostedZoneId"`
	// RecordName is the records' name (shop.example.com).
	RecordName string `json:"recordName"`
	// RecordType is the records' type: A, AAAA or CNAME.
	RecordType string `json:"recordType"`
	// BlueSetIdentifier and GreenSetIdentifier tell the two weighted records apart.
	BlueSetIdentifier  string `json:"blueSetIdentifier"`
	GreenSetIdentifier string `json:"greenSetIdentifier"`
	// Region signs the requests (default us-east-1; Route 53 is global).
	Region string `json:"region,omitempty"`
	// Endpoint overrides the Route 53 endpoint (tests, LocalStack).
	Endpoint string `json:"endpoint,omitempty"`
}

// Provider is a Route 53 weighted-records traffic provider.
type Provider struct {
	s    Settings
	name string // RecordName in Route 53's form: lower case, ending in a dot

	mu     sync.Mutex
	client *r53.Client
	// poll is how often GetChange is asked whether a change is INSYNC.
	poll time.Duration
	// backoff replaces the SDK retryer's backoff (tests).
	backoff retry.BackoffDelayer
}

var zoneID = regexp.MustCompile(`^Z[A-Z0-9]{1,31}$`)

// New checks the settings and returns a provider. It does no I/O.
func New(settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	s.HostedZoneID = strings.TrimPrefix(s.HostedZoneID, "/hostedzone/")
	switch {
	case s.HostedZoneID == "":
		return nil, providers.BadConfig("hostedZoneId is required (the hosted zone's ID, like Z0123456789ABCDEFGHIJ)")
	case !zoneID.MatchString(s.HostedZoneID):
		return nil, providers.BadConfig("hostedZoneId %q is not a hosted zone ID like Z0123456789ABCDEFGHIJ", s.HostedZoneID)
	case s.RecordName == "":
		return nil, providers.BadConfig("recordName is required (the weighted records' name, like shop.example.com)")
	case strings.ContainsAny(s.RecordName, " *\\") || strings.HasPrefix(s.RecordName, "."):
		return nil, providers.BadConfig("recordName %q is not a DNS name like shop.example.com (wildcards are not supported)", s.RecordName)
	case s.RecordType == "":
		return nil, providers.BadConfig("recordType is required: A, AAAA or CNAME")
	case s.RecordType != "A" && s.RecordType != "AAAA" && s.RecordType != "CNAME":
		return nil, providers.BadConfig("recordType %q is not A, AAAA or CNAME", s.RecordType)
	case s.BlueSetIdentifier == "":
		return nil, providers.BadConfig("blueSetIdentifier is required (the blue record's set identifier)")
	case s.GreenSetIdentifier == "":
		return nil, providers.BadConfig("greenSetIdentifier is required (the green record's set identifier)")
	case s.BlueSetIdentifier == s.GreenSetIdentifier:
		return nil, providers.BadConfig("blueSetIdentifier and greenSetIdentifier are both %q", s.BlueSetIdentifier)
	}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, providers.BadConfig("endpoint %q is not an http:// or https:// URL", s.Endpoint)
		}
	}
	name := strings.ToLower(s.RecordName)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return &Provider{s: s, name: name, poll: 5 * time.Second}, nil
}

// NewBuilder returns the registry entry for the Route 53 provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

var (
	_ providers.Traffic     = (*Provider)(nil)
	_ providers.PlanChecker = (*Provider)(nil)
	_ providers.Lingerer    = (*Provider)(nil)
)

func (p *Provider) r53(ctx context.Context) (*r53.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	cfg, err := awsapi.Config(ctx, p.s.Region, p.backoff)
	if err != nil {
		return nil, err
	}
	p.client = r53.NewFromConfig(cfg, func(o *r53.Options) {
		if p.s.Endpoint != "" {
			o.BaseEndpoint = aws.String(p.s.Endpoint)
		}
	})
	return p.client, nil
}

func (p *Provider) where() string {
	return fmt.Sprintf("%s %s records %q/%q in hosted zone %s", p.name, p.s.RecordType, p.s.BlueSetIdentifier, p.s.GreenSetIdentifier, p.s.HostedZoneID)
}

// SetWeight sets the blue record's weight to 100-green and the green record's
// to green in one change, waits until Route 53 reports the change INSYNC, and
// reads the weights back.
func (p *Provider) SetWeight(ctx context.Context, app string, green int) error {
	what := fmt.Sprintf("set green weight to %d on %s", green, p.where())
	if green < 0 || green > 100 {
		return providers.Invalid("%s: the weight is outside 0..100", what)
	}
	c, err := p.r53(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	blue, gr, err := p.records(ctx, c, what)
	if err != nil {
		return err
	}
	blue.Weight, gr.Weight = aws.Int64(int64(100-green)), aws.Int64(int64(green))
	out, err := c.ChangeResourceRecordSets(ctx, &r53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(p.s.HostedZoneID),
		ChangeBatch: &types.ChangeBatch{
			Comment: aws.String(fmt.Sprintf("cutover: %s green weight %d", app, green)),
			Changes: []types.Change{
				{Action: types.ChangeActionUpsert, ResourceRecordSet: &blue},
				{Action: types.ChangeActionUpsert, ResourceRecordSet: &gr},
			},
		},
	})
	if err != nil {
		return classify(err, what)
	}
	if err := p.waitInSync(ctx, c, out.ChangeInfo, what); err != nil {
		return err
	}
	blue, gr, err = p.records(ctx, c, what+": read back")
	if err != nil {
		return err
	}
	if b, g := aws.ToInt64(blue.Weight), aws.ToInt64(gr.Weight); b != int64(100-green) || g != int64(green) {
		return fmt.Errorf("%s: read back blue weight %d, green weight %d; want %d and %d", what, b, g, 100-green, green)
	}
	return nil
}

// waitInSync polls GetChange until the change is INSYNC or ctx ends (then the
// error is retryable: the activity's retry upserts again and waits again).
func (p *Provider) waitInSync(ctx context.Context, c *r53.Client, ci *types.ChangeInfo, what string) error {
	for ci != nil && ci.Status != types.ChangeStatusInsync {
		t := time.NewTimer(p.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: change %s is still %s: %w", what, aws.ToString(ci.Id), ci.Status, ctx.Err())
		case <-t.C:
		}
		out, err := c.GetChange(ctx, &r53.GetChangeInput{Id: ci.Id})
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("%s: change %s is still %s: %w", what, aws.ToString(ci.Id), ci.Status, ctx.Err())
		}
		if err != nil {
			return classify(err, what+": wait for change "+aws.ToString(ci.Id))
		}
		ci = out.ChangeInfo
	}
	return nil
}

// Weight reads green's share of the two records' weights, in percent. Route 53
// answers with equal probability when every weight is 0: that is 50%.
func (p *Provider) Weight(ctx context.Context, app string) (int, error) {
	what := "read the weights of " + p.where()
	c, err := p.r53(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	blue, green, err := p.records(ctx, c, what)
	if err != nil {
		return 0, err
	}
	b, g := aws.ToInt64(blue.Weight), aws.ToInt64(green.Weight)
	if b+g == 0 {
		return 50, nil
	}
	return int((g*100 + (b+g)/2) / (b + g)), nil
}

// aliasTTL is the TTL Route 53 gives an alias record: the target's own, which
// is 60s for ELB load balancers (and the Elastic Beanstalk environments behind
// them); the record itself has none.
const aliasTTL = 60 * time.Second

// ttl is how long resolvers may cache the record's answer.
func ttl(r types.ResourceRecordSet) time.Duration {
	if r.AliasTarget != nil || r.TTL == nil {
		return aliasTTL
	}
	return time.Duration(aws.ToInt64(r.TTL)) * time.Second
}

// CheckPlan refuses a plan that judges green at a partial weight for less
// than the longer of the records' TTLs (providers.CheckTTL).
//
// Calls: ListResourceRecordSets.
func (p *Provider) CheckPlan(ctx context.Context, app string, plan []providers.PlanStep) error {
	blue, green, err := p.ttls(ctx, "check the plan against the TTL of "+p.where())
	if err != nil {
		return err
	}
	return providers.CheckTTL(plan, max(blue, green), fmt.Sprintf("the TTL of the %s %s records", p.name, p.s.RecordType))
}

// Linger is the TTL of the color's record: a resolver that cached an answer
// naming that color keeps sending clients there until the answer expires.
//
// Calls: ListResourceRecordSets.
func (p *Provider) Linger(ctx context.Context, app string, col providers.Color) (time.Duration, error) {
	blue, green, err := p.ttls(ctx, fmt.Sprintf("read the TTL of %s's record in %s", col, p.where()))
	if col == providers.Green {
		return green, err
	}
	return blue, err
}

// ttls reads the blue and the green record's TTL.
func (p *Provider) ttls(ctx context.Context, what string) (blue, green time.Duration, err error) {
	c, err := p.r53(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", what, err)
	}
	b, g, err := p.records(ctx, c, what)
	if err != nil {
		return 0, 0, err
	}
	return ttl(b), ttl(g), nil
}

// records finds the blue and the green weighted record.
func (p *Provider) records(ctx context.Context, c *r53.Client, what string) (blue, green types.ResourceRecordSet, err error) {
	var found [2]bool
	in := &r53.ListResourceRecordSetsInput{
		HostedZoneId:    aws.String(p.s.HostedZoneID),
		StartRecordName: aws.String(p.name),
		StartRecordType: types.RRType(p.s.RecordType),
	}
	for {
		out, err := c.ListResourceRecordSets(ctx, in)
		if err != nil {
			return blue, green, classify(err, what)
		}
		past := false
		for _, r := range out.ResourceRecordSets {
			if !p.same(aws.ToString(r.Name), string(r.Type)) {
				past = true
				break
			}
			switch aws.ToString(r.SetIdentifier) {
			case p.s.BlueSetIdentifier:
				blue, found[0] = r, true
			case p.s.GreenSetIdentifier:
				green, found[1] = r, true
			}
		}
		if past || !out.IsTruncated || !p.same(aws.ToString(out.NextRecordName), string(out.NextRecordType)) {
			break
		}
		in.StartRecordIdentifier = out.NextRecordIdentifier
	}
	for i, id := range []string{p.s.BlueSetIdentifier, p.s.GreenSetIdentifier} {
		if !found[i] {
			return blue, green, providers.NotFound("%s: hosted zone %s has no %s %s record with set identifier %q", what, p.s.HostedZoneID, p.name, p.s.RecordType, id)
		}
	}
	for _, r := range []types.ResourceRecordSet{blue, green} {
		if r.Weight == nil {
			return blue, green, providers.Invalid("%s: record %q is not a weighted record", what, aws.ToString(r.SetIdentifier))
		}
	}
	return blue, green, nil
}

func (p *Provider) same(name, typ string) bool {
	return strings.EqualFold(strings.TrimSuffix(name, "."), strings.TrimSuffix(p.name, ".")) && typ == p.s.RecordType
}

// classify gives a Route 53 error its kind through awsapi.Classify, with the
// codes Route 53 uses for things that do not exist.
func classify(err error, what string) error {
	return awsapi.Classify(err, what, "NoSuchHostedZone", "NoSuchChange")
}
