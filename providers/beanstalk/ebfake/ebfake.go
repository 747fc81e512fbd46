// Package ebfake is an in-memory AWS Elastic Beanstalk API for tests: an HTTP
// server that speaks Elastic Beanstalk's wire protocol (awsquery: form-encoded
// POSTs, XML responses and errors as the AWS API reference shows them) for
// DescribeApplicationVersions, DescribeEnvironments, DescribeEnvironmentHealth,
// UpdateEnvironment and SwapEnvironmentCNAMEs, so that the real AWS SDK's
// serializers, signer, retryer and deserializers run against it.
//
// It keeps applications' version labels and environments (CNAME, version
// label, status, health). An update or a CNAME swap puts the environments in
// Updating with Grey health for a few DescribeEnvironments calls, after which
// they are Ready with the health the test chose. It can fail the way AWS does:
// throttling, 5xx, access denied, and environments that are gone.
package ebfake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cutoverhq/cutover/providers/awsapi/awsquery"
)

// service is the API this fake speaks, in the AWS Query protocol.
var service = awsquery.Service{Name: "Elastic Beanstalk", Version: "2010-12-01", Xmlns: "https://elasticbeanstalk.amazonaws.com/docs/2010-12-01/"}

// Env is an environment's state.
type Env struct {
	Name         string
	Application  string
	CNAME        string
	VersionLabel string
	Status       string // Launching, Updating, Ready, Terminating, Terminated
	Health       string // Green, Yellow, Red, Grey
	HealthStatus string // Ok, Warning, Degraded, Severe, Pending, NoData, ...
	Causes       []string

	// pending counts the DescribeEnvironments calls left before an update or
	// swap finishes; then the environment becomes Ready with next's health.
	pending int
	next    health
}

type health struct {
	health, status string
	causes         []string
}

// Failure is an error the server answers every call (or every call of Action)
// with until Restore, or for the next Times calls when Times > 0.
type Failure struct {
	Action  string // empty: every action
	Status  int
	Code    string
	Message string
	Times   int
}

// Call is a request the server received.
type Call = awsquery.Call

// Server is a fake Elastic Beanstalk endpoint; URL is its address (for BaseEndpoint).
type Server struct {
	URL string
	// Calls records the requests received.
	awsquery.Log
	srv *httptest.Server

	mu       sync.Mutex
	versions map[string]map[string]bool // application → version labels
	envs     map[string]*Env
	polls    int
	after    health
	fail     *Failure
	hidden   map[string]bool // environments answered as missing
	reqID    atomic.Int64
}

// New starts a server; it is closed when Close is called. Updates take two
// DescribeEnvironments calls and end Green/Ok unless told otherwise.
func New() *Server {
	s := &Server{versions: map[string]map[string]bool{}, envs: map[string]*Env{}, hidden: map[string]bool{}, polls: 2, after: health{"Green", "Ok", nil}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddVersion registers an application version label.
func (s *Server) AddVersion(app, label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.versions[app] == nil {
		s.versions[app] = map[string]bool{}
	}
	s.versions[app][label] = true
}

// SetEnv creates or replaces an environment.
func (s *Server) SetEnv(e Env) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Causes = append([]string(nil), e.Causes...)
	s.envs[e.Name] = &e
}

// Env returns an environment's state.
func (s *Server) Env(name string) Env {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.envs[name]; ok {
		return *e
	}
	return Env{}
}

// AfterUpdate sets how many DescribeEnvironments calls an update or swap
// takes, and the health the environments end with.
func (s *Server) AfterUpdate(polls int, healthColor, healthStatus string, causes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls, s.after = polls, health{healthColor, healthStatus, causes}
}

// Fail makes the server answer with f until Restore (or f.Times times).
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = &f
}

// Hide makes the named environments missing until Restore, as AWS answers
// for an environment that was never created or was terminated (deleted
// environments are left out of DescribeEnvironments, and the actions naming
// one fail): their state is kept for Restore.
func (s *Server) Hide(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.hidden[n] = true
	}
}

// Restore ends Fail and Hide.
func (s *Server) Restore() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = nil
	clear(s.hidden)
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
		if fl.Times > 0 {
			if fl.Times--; fl.Times == 0 {
				s.fail = nil
			}
		}
		service.WriteError(w, id, *awsquery.NewError(fl.Status, fl.Code, fl.Message))
		return
	}
	var result any
	var aerr *apiError
	switch action {
	case "DescribeApplicationVersions":
		result, aerr = s.describeVersions(f)
	case "DescribeEnvironments":
		result, aerr = s.describeEnvironments(f)
	case "DescribeEnvironmentHealth":
		result, aerr = s.environmentHealth(f)
	case "UpdateEnvironment":
		result, aerr = s.updateEnvironment(f)
	case "SwapEnvironmentCNAMEs":
		result, aerr = s.swap(f)
	default:
		aerr = service.UnknownAction(action)
	}
	if aerr != nil {
		service.WriteError(w, id, *aerr)
		return
	}
	service.WriteResult(w, id, action, result)
}

type versionsResult struct {
	Members []versionMember `xml:"ApplicationVersions>member"`
}

type versionMember struct {
	ApplicationName string `xml:"ApplicationName"`
	VersionLabel    string `xml:"VersionLabel"`
	Status          string `xml:"Status"`
}

func (s *Server) describeVersions(f url.Values) (any, *apiError) {
	app := f.Get("ApplicationName")
	var out versionsResult
	labels := awsquery.List(f, "VersionLabels")
	for _, l := range labels {
		if s.versions[app][l] {
			out.Members = append(out.Members, versionMember{app, l, "PROCESSED"})
		}
	}
	return out, nil
}

type envMember struct {
	EnvironmentName string `xml:"EnvironmentName"`
	EnvironmentID   string `xml:"EnvironmentId"`
	ApplicationName string `xml:"ApplicationName"`
	VersionLabel    string `xml:"VersionLabel,omitempty"`
	CNAME           string `xml:"CNAME"`
	EndpointURL     string `xml:"EndpointURL"`
	Status          string `xml:"Status"`
	Health          string `xml:"Health"`
	HealthStatus    string `xml:"HealthStatus,omitempty"`
}

type envsResult struct {
	Members []envMember `xml:"Environments>member"`
}

func member(e *Env) envMember {
	return envMember{EnvironmentName: e.Name, EnvironmentID: "e-" + strings.ToLower(e.Name), ApplicationName: e.Application,
		VersionLabel: e.VersionLabel, CNAME: e.CNAME, EndpointURL: "awseb-" + e.Name + ".elb.amazonaws.com",
		Status: e.Status, Health: e.Health, HealthStatus: e.HealthStatus}
}

func (s *Server) describeEnvironments(f url.Values) (any, *apiError) {
	app := f.Get("ApplicationName")
	names := awsquery.List(f, "EnvironmentNames")
	var out envsResult
	for _, n := range names {
		e, ok := s.envs[n]
		if !ok || s.hidden[n] || (app != "" && e.Application != app) {
			continue
		}
		if e.pending > 0 {
			if e.pending--; e.pending == 0 {
				e.Status, e.Health, e.HealthStatus, e.Causes = "Ready", e.next.health, e.next.status, e.next.causes
			}
		}
		out.Members = append(out.Members, member(e))
	}
	return out, nil
}

type healthResult struct {
	EnvironmentName string   `xml:"EnvironmentName"`
	HealthStatus    string   `xml:"HealthStatus"`
	Status          string   `xml:"Status"`
	Color           string   `xml:"Color"`
	Causes          []string `xml:"Causes>member"`
}

func (s *Server) environmentHealth(f url.Values) (any, *apiError) {
	e, aerr := s.env(f.Get("EnvironmentName"), "InvalidRequestException")
	if aerr != nil {
		return nil, aerr
	}
	return healthResult{e.Name, e.HealthStatus, e.Status, e.Health, e.Causes}, nil
}

func (s *Server) env(name, code string) (*Env, *apiError) {
	if name == "" {
		return nil, awsquery.NewError(400, "MissingParameter", "Either EnvironmentName or EnvironmentId must be specified")
	}
	e, ok := s.envs[name]
	if !ok || s.hidden[name] || e.Status == "Terminated" {
		return nil, awsquery.NewError(400, code, fmt.Sprintf("No Environment found for EnvironmentName = '%s'.", name))
	}
	return e, nil
}

func (s *Server) start(e *Env) {
	e.Status, e.Health, e.HealthStatus, e.Causes = "Updating", "Grey", "Pending", nil
	e.pending, e.next = s.polls, s.after
	if e.pending == 0 {
		e.Status, e.Health, e.HealthStatus, e.Causes = "Ready", s.after.health, s.after.status, s.after.causes
	}
}

func (s *Server) updateEnvironment(f url.Values) (any, *apiError) {
	e, aerr := s.env(f.Get("EnvironmentName"), "InvalidParameterValue")
	if aerr != nil {
		return nil, aerr
	}
	if e.Status != "Ready" {
		return nil, awsquery.NewError(400, "InvalidParameterValue", fmt.Sprintf("Environment named %s is in an invalid state for this operation. Must be Ready.", e.Name))
	}
	if l := f.Get("VersionLabel"); l != "" {
		if !s.versions[e.Application][l] {
			return nil, awsquery.NewError(400, "InvalidParameterValue", fmt.Sprintf("No Application Version named '%s' found.", l))
		}
		e.VersionLabel = l
	}
	s.start(e)
	return member(e), nil
}

func (s *Server) swap(f url.Values) (any, *apiError) {
	src, aerr := s.env(f.Get("SourceEnvironmentName"), "InvalidParameterValue")
	if aerr != nil {
		return nil, aerr
	}
	dst, aerr := s.env(f.Get("DestinationEnvironmentName"), "InvalidParameterValue")
	if aerr != nil {
		return nil, aerr
	}
	for _, e := range []*Env{src, dst} {
		if e.Status != "Ready" {
			return nil, awsquery.NewError(400, "InvalidParameterValue", fmt.Sprintf("Environment named %s is in an invalid state for this operation. Must be Ready.", e.Name))
		}
	}
	src.CNAME, dst.CNAME = dst.CNAME, src.CNAME
	// A swap keeps each environment's health.
	for _, e := range []*Env{src, dst} {
		h := health{e.Health, e.HealthStatus, e.Causes}
		s.start(e)
		e.next = h
		if e.pending == 0 {
			e.Health, e.HealthStatus, e.Causes = h.health, h.status, h.causes
		}
	}
	return struct{}{}, nil
}
