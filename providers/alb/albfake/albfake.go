// Package albfake is an in-memory Elastic Load Balancing v2 API for tests: an
// HTTP server that speaks ELBv2's wire protocol (awsquery: form-encoded POSTs,
// XML responses and errors as the AWS API reference shows them) for
// DescribeListeners, ModifyListener, DescribeRules, ModifyRule,
// DescribeTargetHealth and DescribeTargetGroupAttributes, so that the real AWS
// SDK's serializers, signer, retryer and deserializers run against it.
//
// It keeps listeners' and rules' actions and target groups' targets and
// attributes, and can fail the way AWS does: throttling, 5xx, access denied,
// not found.
package albfake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cutoverhq/cutover/providers/awsapi/awsquery"
)

// service is the API this fake speaks, in the AWS Query protocol.
var service = awsquery.Service{Name: "ELBv2", Version: "2015-12-01", Xmlns: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"}

// Server is a fake ELBv2 endpoint; URL is its address (for BaseEndpoint).
type Server struct {
	URL string
	// Calls records the requests received.
	awsquery.Log
	srv *httptest.Server

	mu        sync.Mutex
	listeners map[string][]Action
	rules     map[string][]Action
	groups    map[string][]Target
	attrs     map[string]map[string]string // SetAttributes'; absent: defaultAttributes
	fail      *Failure
	notFound  bool
	ignore    bool
	reqID     atomic.Int64
}

// Action is a listener's or rule's action.
type Action struct {
	Type           string         `xml:"Type"`
	Order          int            `xml:"Order,omitempty"`
	TargetGroupArn string         `xml:"TargetGroupArn,omitempty"`
	ForwardConfig  *ForwardConfig `xml:"ForwardConfig,omitempty"`
}

// ForwardConfig is a forward action's target groups and stickiness.
type ForwardConfig struct {
	TargetGroups []TargetGroupTuple `xml:"TargetGroups>member"`
	Stickiness   *Stickiness        `xml:"TargetGroupStickinessConfig,omitempty"`
}

// TargetGroupTuple is one target group of a forward action and its weight.
type TargetGroupTuple struct {
	TargetGroupArn string `xml:"TargetGroupArn"`
	Weight         int    `xml:"Weight"`
}

// Stickiness is a forward action's target group stickiness.
type Stickiness struct {
	Enabled         bool `xml:"Enabled"`
	DurationSeconds int  `xml:"DurationSeconds,omitempty"`
}

// Target is a registered target and its health.
type Target struct {
	ID          string
	Port        int
	State       string // healthy, unhealthy, initial, draining, unused, unavailable
	Reason      string // Target.FailedHealthChecks, Target.DeregistrationInProgress, ...
	Description string
}

// Failure is an error the server answers every call (or every call of Action)
// with until Restore.
type Failure struct {
	Action  string // empty: every action
	Status  int
	Code    string
	Message string
}

// Call is a request the server received.
type Call = awsquery.Call

// New starts a server; it is closed when Close is called.
func New() *Server {
	s := &Server{listeners: map[string][]Action{}, rules: map[string][]Action{}, groups: map[string][]Target{}, attrs: map[string]map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Forward returns a forward action to blue and green at the given weights.
func Forward(blue string, blueWeight int, green string, greenWeight int) Action {
	return Action{Type: "forward", ForwardConfig: &ForwardConfig{TargetGroups: []TargetGroupTuple{
		{TargetGroupArn: blue, Weight: blueWeight}, {TargetGroupArn: green, Weight: greenWeight},
	}, Stickiness: &Stickiness{}}}
}

// SetListener creates or replaces a listener with its default actions.
func (s *Server) SetListener(arn string, actions ...Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners[arn] = actions
}

// SetRule creates or replaces a rule with its actions.
func (s *Server) SetRule(arn string, actions ...Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules[arn] = actions
}

// defaultAttributes are the attributes DescribeTargetGroupAttributes reports
// for a target group that SetAttributes was not called for: some of those AWS
// gives a new ALB target group of instances, deregistration_delay.timeout_seconds
// 300 among them. Never changed.
var defaultAttributes = map[string]string{
	"deregistration_delay.timeout_seconds":  "300",
	"load_balancing.algorithm.type":         "round_robin",
	"slow_start.duration_seconds":           "0",
	"stickiness.enabled":                    "false",
	"stickiness.type":                       "lb_cookie",
	"stickiness.lb_cookie.duration_seconds": "86400",
}

// SetAttributes makes DescribeTargetGroupAttributes report exactly kv for the
// target group, creating the target group without targets if it does not
// exist. A map without deregistration_delay.timeout_seconds is a target group
// that reports none; nil goes back to AWS's defaults, which a target group
// reports until SetAttributes (deregistration_delay.timeout_seconds 300 among
// them).
func (s *Server) SetAttributes(tg string, kv map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[tg]; !ok {
		s.groups[tg] = nil
	}
	if kv == nil {
		delete(s.attrs, tg)
		return
	}
	m := make(map[string]string, len(kv))
	for k, v := range kv {
		m[k] = v
	}
	s.attrs[tg] = m
}

// SetTargets creates or replaces a target group with its targets.
func (s *Server) SetTargets(tg string, targets ...Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[tg] = append([]Target(nil), targets...)
}

// Listener returns a listener's default actions.
func (s *Server) Listener(arn string) []Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listeners[arn]
}

// Rule returns a rule's actions.
func (s *Server) Rule(arn string) []Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules[arn]
}

// Fail makes the server answer with f until Restore.
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = &f
}

// FailNotFound makes the server answer every call as if the listener, rule or
// target group did not exist, until Restore.
func (s *Server) FailNotFound() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notFound = true
}

// IgnoreWrites makes ModifyListener and ModifyRule succeed without changing
// anything (a read-back that disagrees).
func (s *Server) IgnoreWrites(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignore = on
}

// Restore ends Fail and FailNotFound.
func (s *Server) Restore() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.notFound = nil, false
}

// apiError is an error answer.
type apiError = awsquery.Error

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.reqID.Add(1))
	action, f, ok := service.Parse(w, r, id)
	if !ok {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.Record(action, f)
	if fl := s.fail; fl != nil && (fl.Action == "" || fl.Action == action) {
		service.WriteError(w, id, *awsquery.NewError(fl.Status, fl.Code, fl.Message))
		return
	}
	var result any
	var aerr *apiError
	switch action {
	case "DescribeListeners":
		result, aerr = s.describe(f, "ListenerArns", s.listeners, "ListenerNotFound", "listeners", listenerXML)
	case "DescribeRules":
		result, aerr = s.describe(f, "RuleArns", s.rules, "RuleNotFound", "rules", ruleXML)
	case "ModifyListener":
		result, aerr = s.modify(f, "ListenerArn", "DefaultActions", s.listeners, "ListenerNotFound", "listener", listenerXML)
	case "ModifyRule":
		result, aerr = s.modify(f, "RuleArn", "Actions", s.rules, "RuleNotFound", "rule", ruleXML)
	case "DescribeTargetHealth":
		result, aerr = s.targetHealth(f)
	case "DescribeTargetGroupAttributes":
		result, aerr = s.targetGroupAttributes(f)
	default:
		aerr = service.UnknownAction(action)
	}
	if aerr != nil {
		service.WriteError(w, id, *aerr)
		return
	}
	service.WriteResult(w, id, action, result)
}

type listenersResult struct {
	Members []any `xml:"Listeners>member"`
}

type rulesResult struct {
	Members []any `xml:"Rules>member"`
}

type listenerMember struct {
	ListenerArn     string   `xml:"ListenerArn"`
	LoadBalancerArn string   `xml:"LoadBalancerArn"`
	Port            int      `xml:"Port"`
	Protocol        string   `xml:"Protocol"`
	DefaultActions  []Action `xml:"DefaultActions>member"`
}

type ruleMember struct {
	RuleArn   string   `xml:"RuleArn"`
	Priority  string   `xml:"Priority"`
	IsDefault bool     `xml:"IsDefault"`
	Actions   []Action `xml:"Actions>member"`
}

func listenerXML(arn string, actions []Action) any {
	lb := strings.Replace(arn, ":listener/", ":loadbalancer/", 1)
	if i := strings.LastIndex(lb, "/"); i > 0 {
		lb = lb[:i]
	}
	return listenerMember{ListenerArn: arn, LoadBalancerArn: lb, Port: 443, Protocol: "HTTPS", DefaultActions: withOrder(actions)}
}

func ruleXML(arn string, actions []Action) any {
	return ruleMember{RuleArn: arn, Priority: "10", Actions: withOrder(actions)}
}

// withOrder numbers the actions as AWS reports them.
func withOrder(actions []Action) []Action {
	out := make([]Action, len(actions))
	for i, a := range actions {
		if a.Order == 0 {
			a.Order = i + 1
		}
		// AWS reports a single target group's ARN on the action too.
		if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) == 1 && a.TargetGroupArn == "" {
			a.TargetGroupArn = a.ForwardConfig.TargetGroups[0].TargetGroupArn
		}
		out[i] = a
	}
	return out
}

func (s *Server) describe(f url.Values, listKey string, m map[string][]Action, notFound, noun string, member func(string, []Action) any) (any, *apiError) {
	arns := awsquery.List(f, listKey)
	if len(arns) == 0 {
		return nil, awsquery.NewError(400, "ValidationError", fmt.Sprintf("%s must be given (the fake lists no %s)", listKey, noun))
	}
	var out []any
	for _, arn := range arns {
		actions, ok := m[arn]
		if !ok || s.notFound {
			return nil, awsquery.NewError(400, notFound, fmt.Sprintf("One or more %s not found", noun))
		}
		out = append(out, member(arn, actions))
	}
	if listKey == "ListenerArns" {
		return listenersResult{out}, nil
	}
	return rulesResult{out}, nil
}

func (s *Server) modify(f url.Values, arnKey, actionsKey string, m map[string][]Action, notFound, noun string, member func(string, []Action) any) (any, *apiError) {
	arn := f.Get(arnKey)
	if arn == "" {
		return nil, awsquery.NewError(400, "ValidationError", fmt.Sprintf("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(arnKey)))
	}
	if _, ok := m[arn]; !ok || s.notFound {
		return nil, awsquery.NewError(400, notFound, fmt.Sprintf("One or more %ss not found", noun))
	}
	actions, aerr := s.parseActions(f, actionsKey)
	if aerr != nil {
		return nil, aerr
	}
	if actions != nil && !s.ignore {
		m[arn] = actions
	}
	res := []any{member(arn, m[arn])}
	if noun == "listener" {
		return listenersResult{res}, nil
	}
	return rulesResult{res}, nil
}

func (s *Server) parseActions(f url.Values, key string) ([]Action, *apiError) {
	var out []Action
	for _, p := range members(f, key) {
		a := Action{Type: f.Get(p + "Type"), TargetGroupArn: f.Get(p + "TargetGroupArn")}
		if a.Type == "" {
			return nil, awsquery.NewError(400, "ValidationError", fmt.Sprintf("an action type must be specified (%sType)", p))
		}
		if o := f.Get(p + "Order"); o != "" {
			a.Order, _ = strconv.Atoi(o)
		}
		fp := p + "ForwardConfig."
		if tgs := members(f, fp+"TargetGroups"); len(tgs) > 0 {
			a.ForwardConfig = &ForwardConfig{}
			for _, tp := range tgs {
				tg := TargetGroupTuple{TargetGroupArn: f.Get(tp + "TargetGroupArn"), Weight: 1}
				if w := f.Get(tp + "Weight"); w != "" {
					n, err := strconv.Atoi(w)
					if err != nil || n < 0 || n > 999 {
						return nil, awsquery.NewError(400, "ValidationError", fmt.Sprintf("weight %q must be between 0 and 999", w))
					}
					tg.Weight = n
				}
				if _, ok := s.groups[tg.TargetGroupArn]; !ok || s.notFound {
					return nil, awsquery.NewError(400, "TargetGroupNotFound", fmt.Sprintf("Target groups '%s' not found", tg.TargetGroupArn))
				}
				a.ForwardConfig.TargetGroups = append(a.ForwardConfig.TargetGroups, tg)
			}
			st := &Stickiness{}
			if f.Get(fp+"TargetGroupStickinessConfig.Enabled") == "true" {
				st.Enabled = true
				st.DurationSeconds, _ = strconv.Atoi(f.Get(fp + "TargetGroupStickinessConfig.DurationSeconds"))
				if st.DurationSeconds < 1 || st.DurationSeconds > 604800 {
					return nil, awsquery.NewError(400, "ValidationError", "Target group stickiness duration must be between 1 and 604800 seconds")
				}
			}
			a.ForwardConfig.Stickiness = st
		}
		if a.Type == "forward" && a.ForwardConfig == nil && a.TargetGroupArn == "" {
			return nil, awsquery.NewError(400, "ValidationError", "A target group ARN must be specified")
		}
		out = append(out, a)
	}
	return out, nil
}

type targetHealthResult struct {
	Members []targetHealthMember `xml:"TargetHealthDescriptions>member"`
}

type targetHealthMember struct {
	Target          targetXML       `xml:"Target"`
	HealthCheckPort string          `xml:"HealthCheckPort"`
	TargetHealth    targetHealthXML `xml:"TargetHealth"`
}

type targetXML struct {
	ID   string `xml:"Id"`
	Port int    `xml:"Port"`
}

type targetHealthXML struct {
	State       string `xml:"State"`
	Reason      string `xml:"Reason,omitempty"`
	Description string `xml:"Description,omitempty"`
}

func (s *Server) targetHealth(f url.Values) (any, *apiError) {
	tg := f.Get("TargetGroupArn")
	targets, ok := s.groups[tg]
	if !ok || s.notFound {
		return nil, awsquery.NewError(400, "TargetGroupNotFound", fmt.Sprintf("Target groups '%s' not found", tg))
	}
	var out targetHealthResult
	for _, t := range targets {
		out.Members = append(out.Members, targetHealthMember{
			Target:          targetXML{ID: t.ID, Port: t.Port},
			HealthCheckPort: strconv.Itoa(t.Port),
			TargetHealth:    targetHealthXML{State: t.State, Reason: t.Reason, Description: t.Description},
		})
	}
	return out, nil
}

type attributesResult struct {
	Members []attributeMember `xml:"Attributes>member"`
}

// attributeMember is a TargetGroupAttribute, Value first as in the API
// reference's sample response.
type attributeMember struct {
	Value string `xml:"Value"`
	Key   string `xml:"Key"`
}

func (s *Server) targetGroupAttributes(f url.Values) (any, *apiError) {
	tg := f.Get("TargetGroupArn")
	if tg == "" {
		return nil, awsquery.NewError(400, "ValidationError", "1 validation error detected: Value null at 'targetGroupArn' failed to satisfy constraint: Member must not be null")
	}
	if _, ok := s.groups[tg]; !ok || s.notFound {
		return nil, awsquery.NewError(400, "TargetGroupNotFound", fmt.Sprintf("Target groups '%s' not found", tg))
	}
	kv, ok := s.attrs[tg]
	if !ok {
		kv = defaultAttributes
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out attributesResult
	for _, k := range keys {
		out.Members = append(out.Members, attributeMember{Value: kv[k], Key: k})
	}
	return out, nil
}

// members returns the prefixes "key.member.N." of a list's members, in order.
func members(f url.Values, key string) []string {
	var out []string
	for n := 1; ; n++ {
		p := fmt.Sprintf("%s.member.%d.", key, n)
		found := false
		for k := range f {
			if strings.HasPrefix(k, p) {
				found = true
				break
			}
		}
		if !found {
			return out
		}
		out = append(out, p)
	}
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
