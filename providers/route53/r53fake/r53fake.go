// Package r53fake is an in-memory Amazon Route 53 API for tests: an HTTP server
// that speaks Route 53's REST-XML protocol for ListResourceRecordSets,
// ChangeResourceRecordSets and GetChange, so that the real AWS SDK's
// serializers, signer, retryer and deserializers run against it.
package r53fake

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const xmlns = "https://route53.amazonaws.com/doc/2013-04-01/"

// Server is a fake Route 53 endpoint; URL is its address (for BaseEndpoint).
type Server struct {
	URL string
	srv *httptest.Server

	mu      sync.Mutex
	zones   map[string][]Record
	changes map[string]int // change ID → GetChange polls left before INSYNC
	seq     int
	fail    *Failure
	ignore  bool
	// PendingPolls is how many GetChange calls a change stays PENDING for.
	PendingPolls int
	calls        []string
	accepted     []Change
}

// Change is one ChangeResourceRecordSets the server accepted: when, and the
// records it upserted.
type Change struct {
	At      time.Time
	Records []Record
}

// Record is a resource record set.
type Record struct {
	Name          string           `xml:"Name"`
	Type          string           `xml:"Type"`
	SetIdentifier string           `xml:"SetIdentifier,omitempty"`
	Weight        *int             `xml:"Weight,omitempty"`
	TTL           int              `xml:"TTL,omitempty"`
	Values        []ResourceRecord `xml:"ResourceRecords>ResourceRecord,omitempty"`
	HealthCheckID string           `xml:"HealthCheckId,omitempty"`
}

// ResourceRecord is one value of a record.
type ResourceRecord struct {
	Value string `xml:"Value"`
}

// Failure is an error the server answers every call with until Restore.
type Failure struct {
	Status  int
	Code    string
	Message string
}

// New starts a server.
func New() *Server {
	s := &Server{zones: map[string][]Record{}, changes: map[string]int{}, PendingPolls: 1}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Weighted returns a weighted record.
func Weighted(name, typ, id string, weight int, value string) Record {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return Record{Name: name, Type: typ, SetIdentifier: id, Weight: &weight, TTL: 60, Values: []ResourceRecord{{value}}}
}

// SetZone creates or replaces a hosted zone with its records.
func (s *Server) SetZone(id string, records ...Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zones[id] = append([]Record(nil), records...)
}

// Zone returns a hosted zone's records.
func (s *Server) Zone(id string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.zones[id]...)
}

// Fail makes the server answer with f until Restore.
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = &f
}

// Restore ends Fail.
func (s *Server) Restore() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = nil
}

// IgnoreWrites makes ChangeResourceRecordSets succeed without changing anything.
func (s *Server) IgnoreWrites(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignore = on
}

// SetPendingPolls sets how many GetChange calls a change stays PENDING for (0:
// INSYNC at once).
func (s *Server) SetPendingPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.PendingPolls = n
}

// Changes returns the changes accepted so far, in order.
func (s *Server) Changes() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Change(nil), s.accepted...)
}

// Calls returns the operations called so far.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") {
		writeError(w, id, 403, "MissingAuthenticationToken", "Missing Authentication Token")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/2013-04-01")
	var op string
	var zone string
	switch {
	case strings.HasPrefix(path, "/hostedzone/") && strings.HasSuffix(path, "/rrset") && r.Method == http.MethodGet:
		op, zone = "ListResourceRecordSets", strings.TrimSuffix(strings.TrimPrefix(path, "/hostedzone/"), "/rrset")
	case strings.HasPrefix(path, "/hostedzone/") && strings.HasSuffix(path, "/rrset") && r.Method == http.MethodPost:
		op, zone = "ChangeResourceRecordSets", strings.TrimSuffix(strings.TrimPrefix(path, "/hostedzone/"), "/rrset")
	case strings.HasPrefix(path, "/change/") && r.Method == http.MethodGet:
		op = "GetChange"
	default:
		writeError(w, id, 404, "UnknownOperationException", r.Method+" "+r.URL.Path)
		return
	}
	s.calls = append(s.calls, op)
	if s.fail != nil {
		writeError(w, id, s.fail.Status, s.fail.Code, s.fail.Message)
		return
	}
	if op != "GetChange" {
		if _, ok := s.zones[zone]; !ok {
			writeError(w, id, 404, "NoSuchHostedZone", "No hosted zone found with ID: "+zone)
			return
		}
	}
	switch op {
	case "ListResourceRecordSets":
		s.list(w, r, id, zone)
	case "ChangeResourceRecordSets":
		s.change(w, r, id, zone)
	case "GetChange":
		s.getChange(w, id, strings.TrimPrefix(path, "/change/"))
	}
}

func less(a, b Record) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	return a.SetIdentifier < b.SetIdentifier
}

type listResponse struct {
	XMLName              xml.Name `xml:"ListResourceRecordSetsResponse"`
	Xmlns                string   `xml:"xmlns,attr"`
	Records              []Record `xml:"ResourceRecordSets>ResourceRecordSet"`
	IsTruncated          bool     `xml:"IsTruncated"`
	NextRecordName       string   `xml:"NextRecordName,omitempty"`
	NextRecordType       string   `xml:"NextRecordType,omitempty"`
	NextRecordIdentifier string   `xml:"NextRecordIdentifier,omitempty"`
	MaxItems             string   `xml:"MaxItems"`
}

// list answers ListResourceRecordSets from name/type/identifier on, one record
// per page past the first two, so that callers must follow NextRecord*.
func (s *Server) list(w http.ResponseWriter, r *http.Request, id, zone string) {
	q := r.URL.Query()
	records := append([]Record(nil), s.zones[zone]...)
	sort.Slice(records, func(i, j int) bool { return less(records[i], records[j]) })
	start := Record{Name: strings.ToLower(q.Get("name")), Type: q.Get("type"), SetIdentifier: q.Get("identifier")}
	if start.Name != "" && !strings.HasSuffix(start.Name, ".") {
		start.Name += "."
	}
	max := 2
	if m, err := strconv.Atoi(q.Get("maxitems")); err == nil && m > 0 && m < max {
		max = m
	}
	out := listResponse{Xmlns: xmlns, MaxItems: strconv.Itoa(max)}
	for _, rec := range records {
		if start.Name != "" && less(rec, start) {
			continue
		}
		if len(out.Records) == max {
			out.IsTruncated, out.NextRecordName, out.NextRecordType, out.NextRecordIdentifier = true, rec.Name, rec.Type, rec.SetIdentifier
			break
		}
		out.Records = append(out.Records, rec)
	}
	writeXML(w, id, out)
}

type changeRequest struct {
	Changes []struct {
		Action string `xml:"Action"`
		Record Record `xml:"ResourceRecordSet"`
	} `xml:"ChangeBatch>Changes>Change"`
}

type changeInfo struct {
	ID          string `xml:"Id"`
	Status      string `xml:"Status"`
	SubmittedAt string `xml:"SubmittedAt"`
	Comment     string `xml:"Comment,omitempty"`
}

type changeResponse struct {
	XMLName    xml.Name
	Xmlns      string     `xml:"xmlns,attr"`
	ChangeInfo changeInfo `xml:"ChangeInfo"`
}

func (s *Server) change(w http.ResponseWriter, r *http.Request, id, zone string) {
	body, _ := io.ReadAll(r.Body)
	var req changeRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Changes) == 0 {
		writeError(w, id, 400, "InvalidInput", fmt.Sprintf("Invalid XML ; %v", err))
		return
	}
	records := append([]Record(nil), s.zones[zone]...)
	var upserted []Record
	for _, c := range req.Changes {
		rec := c.Record
		rec.Name = strings.ToLower(rec.Name)
		if !strings.HasSuffix(rec.Name, ".") {
			rec.Name += "."
		}
		if c.Action != "UPSERT" {
			writeError(w, id, 400, "InvalidInput", "the fake supports UPSERT only")
			return
		}
		if rec.Weight != nil && (*rec.Weight < 0 || *rec.Weight > 255) {
			writeError(w, id, 400, "InvalidInput", "Invalid request: Weight must be between 0 and 255")
			return
		}
		upserted = append(upserted, rec)
		replaced := false
		for i, old := range records {
			if old.Name == rec.Name && old.Type == rec.Type && old.SetIdentifier == rec.SetIdentifier {
				records[i], replaced = rec, true
			}
		}
		if !replaced {
			records = append(records, rec)
		}
	}
	if !s.ignore {
		s.zones[zone] = records
	}
	s.accepted = append(s.accepted, Change{At: time.Now(), Records: upserted})
	cid := fmt.Sprintf("C%012d", s.seq)
	s.changes[cid] = s.PendingPolls
	status := "PENDING"
	if s.PendingPolls == 0 {
		status = "INSYNC"
	}
	writeXML(w, id, changeResponse{XMLName: xml.Name{Local: "ChangeResourceRecordSetsResponse"}, Xmlns: xmlns,
		ChangeInfo: changeInfo{ID: "/change/" + cid, Status: status, SubmittedAt: time.Now().UTC().Format(time.RFC3339)}})
}

func (s *Server) getChange(w http.ResponseWriter, id, cid string) {
	left, ok := s.changes[cid]
	if !ok {
		writeError(w, id, 404, "NoSuchChange", "A change with the specified change ID does not exist.")
		return
	}
	status := "INSYNC"
	if left > 0 {
		status = "PENDING"
		s.changes[cid] = left - 1
	}
	writeXML(w, id, changeResponse{XMLName: xml.Name{Local: "GetChangeResponse"}, Xmlns: xmlns,
		ChangeInfo: changeInfo{ID: "/change/" + cid, Status: status, SubmittedAt: time.Now().UTC().Format(time.RFC3339)}})
}

func writeXML(w http.ResponseWriter, id string, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		writeError(w, id, 500, "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", id)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

func writeError(w http.ResponseWriter, id string, status int, code, msg string) {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	body, _ := xml.Marshal(errorResponse{Xmlns: xmlns, Type: typ, Code: code, Message: msg, RequestID: id})
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", id)
	w.WriteHeader(status)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}
