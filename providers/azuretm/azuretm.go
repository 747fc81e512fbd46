// Package azuretm splits an app's traffic between blue and green with an Azure
// Traffic Manager profile whose routing method is Weighted: the profile has a
// blue and a green endpoint, and SetWeight changes their weights.
//
// Credentials come from azidentity's DefaultAzureCredential (environment,
// workload identity, managed identity, Azure CLI, ...), never from release.yaml.
// The role it needs, on the profile (Traffic Manager Contributor covers it):
//
//	Microsoft.Network/trafficManagerProfiles/read
//	Microsoft.Network/trafficManagerProfiles/<endpointType>/read
//	Microsoft.Network/trafficManagerProfiles/<endpointType>/write
//
// where <endpointType> is azureEndpoints, externalEndpoints or nestedEndpoints.
//
// Traffic Manager weights are 1..1000, so green's percent g becomes the weights
// 1000*(100-g)/100 (blue) and 1000*g/100 (green), clamped to 1..1000; 0% is made
// by disabling green (endpointStatus Disabled) and 100% by disabling blue. The
// endpoint that stays enabled is updated first, so the profile never has both
// endpoints disabled. Traffic Manager answers DNS queries, so clients follow a
// change once their resolvers' cached answers expire (the profile's TTL).
package azuretm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/trafficmanager/armtrafficmanager"

	"github.com/cutoverhq/cutover/providers"
)

// Type is the provider's name in release.yaml.
const Type = "azuretm"

// maxWeight is the largest weight Traffic Manager accepts (the smallest is 1).
const maxWeight = 1000

// Settings are the provider's release.yaml settings.
type Settings struct {
	// SubscriptionID is the Azure subscription that holds the profile.
	SubscriptionID string `json:"subscriptionId,omitempty"`
	// ResourceGroup is the profile's resource group.
	ResourceGroup string `json:"resourceGroup,omitempty"`
	// Profile is the Traffic Manager profile's name.
	Profile string `json:"profile,omitempty"`
	// BlueEndpoint and GreenEndpoint are the names of the profile's two endpoints.
	BlueEndpoint  string `json:"blueEndpoint,omitempty"`
	GreenEndpoint string `json:"greenEndpoint,omitempty"`
	// EndpointType is the endpoints' type: azureEndpoints (default),
	// externalEndpoints or nestedEndpoints.
	EndpointType string `json:"endpointType,omitempty"`
}

// Provider is an Azure Traffic Manager traffic provider.
type Provider struct {
	s   Settings
	typ armtrafficmanager.EndpointType

	mu        sync.Mutex
	endpoints *armtrafficmanager.EndpointsClient
	profiles  *armtrafficmanager.ProfilesClient
	// weighted is set once the profile is known to route by weight.
	weighted bool

	// Tests set these: a credential and transport instead of
	// DefaultAzureCredential and the network, and no SDK retries.
	cred      azcore.TokenCredential
	transport policy.Transporter
	noRetry   bool
}

var (
	guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// resourceGroupName is Azure's rule for resource group names.
	resourceGroupName = regexp.MustCompile(`^[-\w.()]{1,90}$`)
	// resourceName accepts profile and endpoint names (they go in the URL path).
	resourceName = regexp.MustCompile(`^[^/\\?#%\s]{1,260}$`)
)

// New checks the settings and returns a provider. It does no I/O: the
// credential and clients are made on first use.
func New(settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	if s.SubscriptionID == "" {
		return nil, providers.BadConfig("subscriptionId is required (the Azure subscription ID that holds the profile)")
	}
	if !guid.MatchString(s.SubscriptionID) {
		return nil, providers.BadConfig("subscriptionId %q is not an Azure subscription ID (a GUID like 00000000-0000-0000-0000-000000000000)", s.SubscriptionID)
	}
	if s.ResourceGroup == "" {
		return nil, providers.BadConfig("resourceGroup is required (the Traffic Manager profile's resource group)")
	}
	if !resourceGroupName.MatchString(s.ResourceGroup) || strings.HasSuffix(s.ResourceGroup, ".") {
		return nil, providers.BadConfig("resourceGroup %q is not a resource group name (1-90 letters, digits, '-', '_', '.', '(', ')', not ending in '.')", s.ResourceGroup)
	}
	for _, n := range []struct{ name, v, what string }{
		{"profile", s.Profile, "the Traffic Manager profile's name"},
		{"blueEndpoint", s.BlueEndpoint, "the name of the profile's endpoint for blue"},
		{"greenEndpoint", s.GreenEndpoint, "the name of the profile's endpoint for green"},
	} {
		if n.v == "" {
			return nil, providers.BadConfig("%s is required (%s)", n.name, n.what)
		}
		if !resourceName.MatchString(n.v) {
			return nil, providers.BadConfig("%s %q is not a name (no '/', '\\', '?', '#', '%%' or spaces)", n.name, n.v)
		}
	}
	if s.BlueEndpoint == s.GreenEndpoint {
		return nil, providers.BadConfig("blueEndpoint and greenEndpoint are the same endpoint %q", s.BlueEndpoint)
	}
	p := &Provider{s: s}
	switch strings.ToLower(s.EndpointType) {
	case "", "azureendpoints":
		p.typ = armtrafficmanager.EndpointTypeAzureEndpoints
	case "externalendpoints":
		p.typ = armtrafficmanager.EndpointTypeExternalEndpoints
	case "nestedendpoints":
		p.typ = armtrafficmanager.EndpointTypeNestedEndpoints
	default:
		return nil, providers.BadConfig("endpointType %q is not one of azureEndpoints, externalEndpoints, nestedEndpoints", s.EndpointType)
	}
	return p, nil
}

// NewBuilder returns the registry entry for the Azure Traffic Manager provider.
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

// clients returns the endpoints and profiles clients, making the credential on
// first use; a failure is not kept, so the next call tries again.
func (p *Provider) clients() (*armtrafficmanager.EndpointsClient, *armtrafficmanager.ProfilesClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.endpoints != nil {
		return p.endpoints, p.profiles, nil
	}
	cred := p.cred
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, nil, fmt.Errorf("make the Azure credential (DefaultAzureCredential): %w", err)
		}
		cred = c
	}
	opts := &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Retry: policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Second, MaxRetryDelay: 5 * time.Second},
		},
		// Cutover creates no resources: it never needs to register
		// Microsoft.Network, which would take a broader role.
		DisableRPRegistration: true,
	}
	if p.noRetry {
		opts.Retry.MaxRetries = -1
	}
	if p.transport != nil {
		opts.Transport = p.transport
	}
	f, err := armtrafficmanager.NewClientFactory(p.s.SubscriptionID, cred, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("make the Traffic Manager client: %w", err)
	}
	p.endpoints, p.profiles = f.NewEndpointsClient(), f.NewProfilesClient()
	return p.endpoints, p.profiles, nil
}

// state is an endpoint's part of the split.
type state struct {
	Enabled bool
	Weight  int64
}

// split returns blue's and green's endpoint states for green percent of the
// traffic: weights on Traffic Manager's 1..1000 scale, the endpoint that gets
// no traffic disabled.
func split(green int) (blue, grn state) {
	clamp := func(w int) int64 { return int64(min(max(w, 1), maxWeight)) }
	blue = state{Enabled: green < 100, Weight: clamp(maxWeight * (100 - green) / 100)}
	grn = state{Enabled: green > 0, Weight: clamp(maxWeight * green / 100)}
	return blue, grn
}

// percent is green's share of the traffic, in percent, given both endpoints'
// states; ok is false when both are disabled.
func percent(blue, green state) (int, bool) {
	switch {
	case !blue.Enabled && !green.Enabled:
		return 0, false
	case !green.Enabled:
		return 0, true
	case !blue.Enabled:
		return 100, true
	}
	total := blue.Weight + green.Weight
	return int((green.Weight*100 + total/2) / total), true
}

// SetWeight sends green percent of the traffic to green: it updates both
// endpoints (the one that stays enabled first), then reads them back.
func (p *Provider) SetWeight(ctx context.Context, app string, green int) error {
	what := fmt.Sprintf("set green weight to %d on Traffic Manager profile %s", green, p.s.Profile)
	if green < 0 || green > 100 {
		return providers.Invalid("%s: the weight is outside 0..100", what)
	}
	ec, err := p.ready(ctx, what)
	if err != nil {
		return err
	}
	blue, grn := split(green)
	type step struct {
		name string
		st   state
	}
	// Disabling goes last: at 0% blue is updated (enabled) before green is
	// disabled; otherwise green, which gains traffic on the way up, goes first.
	steps := []step{{p.s.GreenEndpoint, grn}, {p.s.BlueEndpoint, blue}}
	if green == 0 {
		steps[0], steps[1] = steps[1], steps[0]
	}
	for _, st := range steps {
		status := armtrafficmanager.EndpointStatusDisabled
		if st.st.Enabled {
			status = armtrafficmanager.EndpointStatusEnabled
		}
		w := st.st.Weight
		_, err := ec.Update(ctx, p.s.ResourceGroup, p.s.Profile, p.typ, st.name, armtrafficmanager.Endpoint{
			Properties: &armtrafficmanager.EndpointProperties{Weight: &w, EndpointStatus: &status},
		}, nil)
		if err != nil {
			return classify(err, fmt.Sprintf("%s: update endpoint %s (%s, weight %d)", what, st.name, status, w))
		}
	}
	gotBlue, gotGreen, err := p.read(ctx, ec, what+": read back")
	if err != nil {
		return err
	}
	if gotBlue != blue || gotGreen != grn {
		// Not permanent: a retry sets it again.
		return fmt.Errorf("%s: read back blue %s, green %s; want blue %s, green %s", what, gotBlue, gotGreen, blue, grn)
	}
	return nil
}

func (s state) String() string {
	if !s.Enabled {
		return fmt.Sprintf("disabled (weight %d)", s.Weight)
	}
	return fmt.Sprintf("enabled weight %d", s.Weight)
}

// Weight reads green's share of the traffic from both endpoints' status and weight.
func (p *Provider) Weight(ctx context.Context, app string) (int, error) {
	what := fmt.Sprintf("read the weights of Traffic Manager profile %s", p.s.Profile)
	ec, err := p.ready(ctx, what)
	if err != nil {
		return 0, err
	}
	blue, green, err := p.read(ctx, ec, what)
	if err != nil {
		return 0, err
	}
	w, ok := percent(blue, green)
	if !ok {
		return 0, providers.Invalid("%s: endpoints %s and %s are both disabled", what, p.s.BlueEndpoint, p.s.GreenEndpoint)
	}
	return w, nil
}

// ready returns the endpoints client once the profile is known to use the
// Weighted routing method (checked once per provider).
func (p *Provider) ready(ctx context.Context, what string) (*armtrafficmanager.EndpointsClient, error) {
	ec, pc, err := p.clients()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p.mu.Lock()
	weighted := p.weighted
	p.mu.Unlock()
	if weighted {
		return ec, nil
	}
	resp, err := pc.Get(ctx, p.s.ResourceGroup, p.s.Profile, nil)
	if err != nil {
		return nil, classify(err, what+": read the profile")
	}
	var method armtrafficmanager.TrafficRoutingMethod
	if resp.Properties != nil && resp.Properties.TrafficRoutingMethod != nil {
		method = *resp.Properties.TrafficRoutingMethod
	}
	if method != armtrafficmanager.TrafficRoutingMethodWeighted {
		return nil, providers.Invalid("%s: its traffic routing method is %q; Cutover needs Weighted", what, method)
	}
	p.mu.Lock()
	p.weighted = true
	p.mu.Unlock()
	return ec, nil
}

// CheckPlan refuses a plan that judges green at a partial weight for less
// than the profile's DNS TTL (providers.CheckTTL).
//
// Calls: Profiles.Get.
func (p *Provider) CheckPlan(ctx context.Context, app string, plan []providers.PlanStep) error {
	what := fmt.Sprintf("check the plan against the TTL of Traffic Manager profile %s", p.s.Profile)
	ttl, err := p.ttl(ctx, what)
	if err != nil {
		return err
	}
	return providers.CheckTTL(plan, ttl, fmt.Sprintf("the DNS TTL of Traffic Manager profile %s", p.s.Profile))
}

// Linger is the profile's DNS TTL: resolvers that cached an answer naming a
// color's endpoint keep sending clients there until it expires.
//
// Calls: Profiles.Get.
func (p *Provider) Linger(ctx context.Context, app string, c providers.Color) (time.Duration, error) {
	return p.ttl(ctx, fmt.Sprintf("read the DNS TTL of Traffic Manager profile %s", p.s.Profile))
}

// ttl reads the profile's DNS TTL.
func (p *Provider) ttl(ctx context.Context, what string) (time.Duration, error) {
	_, pc, err := p.clients()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	resp, err := pc.Get(ctx, p.s.ResourceGroup, p.s.Profile, nil)
	if err != nil {
		return 0, classify(err, what)
	}
	if resp.Properties == nil || resp.Properties.DNSConfig == nil || resp.Properties.DNSConfig.TTL == nil {
		return 0, fmt.Errorf("%s: the profile has no dnsConfig.ttl", what)
	}
	return time.Duration(*resp.Properties.DNSConfig.TTL) * time.Second, nil
}

// read returns blue's and green's endpoint states.
func (p *Provider) read(ctx context.Context, ec *armtrafficmanager.EndpointsClient, what string) (blue, green state, err error) {
	get := func(name string) (state, error) {
		resp, err := ec.Get(ctx, p.s.ResourceGroup, p.s.Profile, p.typ, name, nil)
		if err != nil {
			return state{}, classify(err, fmt.Sprintf("%s: read endpoint %s", what, name))
		}
		st := state{Enabled: true, Weight: 1} // Traffic Manager's defaults
		if pr := resp.Properties; pr != nil {
			if pr.EndpointStatus != nil {
				st.Enabled = *pr.EndpointStatus == armtrafficmanager.EndpointStatusEnabled
			}
			if pr.Weight != nil {
				st.Weight = *pr.Weight
			}
		}
		return st, nil
	}
	if blue, err = get(p.s.BlueEndpoint); err != nil {
		return state{}, state{}, err
	}
	if green, err = get(p.s.GreenEndpoint); err != nil {
		return state{}, state{}, err
	}
	return blue, green, nil
}

// classify wraps an Azure error with what was being done and gives it its
// kind: the one place where Azure errors become permanent or retryable.
func classify(err error, what string) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		var ae *azidentity.AuthenticationFailedError
		if errors.As(err, &ae) && ae.RawResponse != nil && ae.RawResponse.StatusCode >= 400 && ae.RawResponse.StatusCode < 500 && ae.RawResponse.StatusCode != http.StatusTooManyRequests {
			return providers.Invalid("%s: authentication failed: %s", what, firstLine(err.Error()))
		}
		return fmt.Errorf("%s: %w", what, err) // the network, a timeout, no credential yet: retry
	}
	code, msg := re.ErrorCode, azureMessage(re)
	detail := code
	if msg != "" {
		detail = strings.TrimPrefix(code+": "+msg, ": ")
	}
	if detail == "" {
		detail = http.StatusText(re.StatusCode)
	}
	switch s := re.StatusCode; {
	case s == http.StatusTooManyRequests || s >= 500:
		return azureError{fmt.Sprintf("%s: HTTP %d %s", what, s, detail), err}
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return providers.Invalid("%s: HTTP %d %s", what, s, detail)
	case s == http.StatusNotFound:
		return providers.NotFound("%s: HTTP %d %s", what, s, detail)
	case s == http.StatusBadRequest || s == http.StatusConflict:
		return providers.Invalid("%s: HTTP %d %s", what, s, detail)
	}
	return azureError{fmt.Sprintf("%s: HTTP %d %s", what, re.StatusCode, detail), err}
}

// azureError is a retryable Azure error with a one-line message; it keeps the
// SDK's error (whose own text spans many lines) for errors.As.
type azureError struct {
	msg string
	err error
}

func (e azureError) Error() string { return e.msg }
func (e azureError) Unwrap() error { return e.err }

// azureMessage is the message of an ARM error body ({"error":{"code","message"}}).
func azureMessage(re *azcore.ResponseError) string {
	if re.RawResponse == nil {
		return ""
	}
	b, err := runtime.Payload(re.RawResponse)
	if err != nil || len(b) == 0 {
		return ""
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) != nil {
		return ""
	}
	return firstLine(body.Error.Message)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}
