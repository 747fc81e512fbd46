// Package awsquery speaks the AWS Query protocol (form-encoded POST with
// Action= and Version=, XML answers) for the test fakes of the services that
// use it (ELBv2, Elastic Beanstalk), so that the real SDK's serializers and
// deserializers run against them. Only tests and fakes import it.
package awsquery

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Error is an AWS error answer: its HTTP status, code and message.
type Error struct {
	Status  int
	Code    string
	Message string
}

// NewError is an error answer.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Service describes one service's API version and XML namespace.
type Service struct {
	Name    string // for messages, e.g. "ELBv2"
	Version string // the API version every request must name
	Xmlns   string
}

// Parse checks a request the way the service would (POST, SigV4-signed, the
// API version) and returns its action and form; when it is refused, the error
// answer has been written and ok is false.
func (s Service) Parse(w http.ResponseWriter, r *http.Request, id string) (action string, form url.Values, ok bool) {
	if r.Method != http.MethodPost {
		s.WriteError(w, id, Error{405, "InvalidAction", s.Name + " takes POST requests"})
		return "", nil, false
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") {
		s.WriteError(w, id, Error{403, "MissingAuthenticationToken", "Request is missing Authentication Token"})
		return "", nil, false
	}
	if err := r.ParseForm(); err != nil {
		s.WriteError(w, id, Error{400, "MalformedQueryString", err.Error()})
		return "", nil, false
	}
	f := r.PostForm
	if f.Get("Version") != s.Version {
		s.WriteError(w, id, Error{400, "InvalidParameterValue", fmt.Sprintf("Version %q is not %s", f.Get("Version"), s.Version)})
		return "", nil, false
	}
	return f.Get("Action"), f, true
}

// UnknownAction is the service's answer to an action it does not have.
func (s Service) UnknownAction(action string) *Error {
	return &Error{400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", action, s.Version)}
}

// WriteResult writes <ActionResponse><ActionResult>result</ActionResult>
// <ResponseMetadata>...</ResponseMetadata></ActionResponse>.
func (s Service) WriteResult(w http.ResponseWriter, id, action string, result any) {
	body, err := xml.Marshal(response{
		XMLName:  xml.Name{Local: action + "Response"},
		Xmlns:    s.Xmlns,
		Result:   resultXML{Name: action + "Result", Inner: result},
		Metadata: metadata{RequestID: id},
	})
	if err != nil {
		s.WriteError(w, id, Error{500, "InternalFailure", err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", id)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

// WriteError writes an <ErrorResponse> with the error's status.
func (s Service) WriteError(w http.ResponseWriter, id string, e Error) {
	typ := "Sender"
	if e.Status >= 500 {
		typ = "Receiver"
	}
	body, _ := xml.Marshal(errorResponse{Xmlns: s.Xmlns, Error: errorXML{Type: typ, Code: e.Code, Message: e.Message}, RequestID: id})
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", id)
	w.WriteHeader(e.Status)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

// List returns the values of a list of strings "key.member.N".
func List(f url.Values, key string) []string {
	var out []string
	for n := 1; ; n++ {
		v, ok := f[fmt.Sprintf("%s.member.%d", key, n)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

type response struct {
	XMLName  xml.Name
	Xmlns    string    `xml:"xmlns,attr"`
	Result   resultXML `xml:"result"`
	Metadata metadata  `xml:"ResponseMetadata"`
}

// resultXML is <ActionResult> holding the result's fields.
type resultXML struct {
	Name  string
	Inner any
}

func (r resultXML) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return e.EncodeElement(r.Inner, xml.StartElement{Name: xml.Name{Local: r.Name}})
}

type metadata struct {
	RequestID string `xml:"RequestId"`
}

type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Error     errorXML `xml:"Error"`
	RequestID string   `xml:"RequestId"`
}

type errorXML struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}
