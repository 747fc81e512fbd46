// Package webhook is a notifier that POSTs every release event as signed JSON
// to a URL.
//
//	notifications:
//	  - type: webhook
//	    settings:
//	      url: https://hooks.example.com/cutover
//	      secret: {env: CUTOVER_WEBHOOK_SECRET}   # the signing secret (env or file)
//	      timeout: 5s                             # one delivery attempt (default 5s)
//
// The body is a Payload:
//
//	{"app":"shop","version":"1.5.0","kind":"approval-needed","message":"...",
//	 "time":"2026-11-23T15:55:13Z","verdict":{"result":"Pass","metrics":[...]}}
//
// with these headers:
//
//	Content-Type: application/json
//	X-Cutover-Event: approval-needed
//	X-Cutover-Delivery: <hex>              same for every attempt at one event
//	X-Cutover-Timestamp: 1763913313        when this attempt was sent, Unix seconds
//	X-Cutover-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//
// # Verifying a delivery
//
// A receiver reads the raw body (before any JSON decoding), then:
//
//  1. takes X-Cutover-Timestamp and refuses it if it is more than 5 minutes
//     from its own clock, either way;
//  2. computes HMAC-SHA256 with the shared secret over the timestamp, a dot,
//     and the raw body, hex-encodes it and compares it, in constant time, with
//     the hex after "v1=" in X-Cutover-Signature (a header may carry several
//     comma-separated signatures during a secret rotation: any may match);
//  3. to refuse a replay within the window, remembers the signatures (or the
//     X-Cutover-Delivery IDs) it saw for 5 minutes;
//  4. answers 2xx once it has the event. A retried event has the same
//     X-Cutover-Delivery, so a receiver that acts on events can drop repeats.
//
// Receivers in Go can call Verify (or VerifyRequest). In a shell:
//
//	printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret"
//
// # Delivery
//
// 2xx is delivered. 408, 429 and 5xx, timeouts and connection errors are
// retried (by the release's activity retry policy). Any other answer is
// permanent: 401, 403, 404, 410 and redirects (never followed: a redirect would
// move the signed body elsewhere) are providers.BadConfig, other 4xx
// providers.Invalid. Errors name the URL's scheme and host only: a webhook URL
// often holds a token.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

// Type is the provider's name in release.yaml.
const Type = "webhook"

// Headers of a delivery.
const (
	HeaderTimestamp = "X-Cutover-Timestamp"
	HeaderSignature = "X-Cutover-Signature"
	HeaderEvent     = "X-Cutover-Event"
	HeaderDelivery  = "X-Cutover-Delivery"
)

// DefaultTimeout bounds one delivery attempt.
const DefaultTimeout = 5 * time.Second

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock.
const DefaultTolerance = 5 * time.Minute

// Settings are the provider's release.yaml settings.
type Settings struct {
	// URL receives the events (required; http or https).
	URL string `json:"url"`
	// Secret names the secret the deliveries are signed with (required).
	Secret providers.SecretRef `json:"secret"`
	// Timeout bounds one attempt (default 5s, at most 1m).
	Timeout spec.Duration `json:"timeout,omitempty"`
}

// Payload is a delivery's body.
type Payload struct {
	App     string           `json:"app"`
	Version string           `json:"version"`
	Kind    string           `json:"kind"`
	Message string           `json:"message"`
	Time    time.Time        `json:"time"`
	Verdict *verdict.Verdict `json:"verdict,omitempty"`
}

// Notifier delivers events to a URL.
type Notifier struct {
	s     Settings
	where string // scheme://host, for errors
	hc    *http.Client
	now   func() time.Time
}

var _ providers.Notifier = (*Notifier)(nil)

// New checks the settings; it does no I/O (the secret is read on first use).
func New(settings map[string]any) (*Notifier, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	u, err := url.Parse(s.URL)
	if s.URL == "" {
		return nil, providers.BadConfig("url is required")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, providers.BadConfig("url is not an http(s) URL")
	}
	if err := s.Secret.Check(); err != nil {
		return nil, providers.BadConfig("secret: %v", err)
	}
	switch {
	case s.Timeout == 0:
		s.Timeout = spec.Duration(DefaultTimeout)
	case s.Timeout < 0 || s.Timeout.D() > time.Minute:
		return nil, providers.BadConfig("timeout %s is not between 0 and 1m", s.Timeout)
	}
	return &Notifier{
		s:     s,
		where: u.Scheme + "://" + u.Host,
		hc: &http.Client{
			Timeout:       s.Timeout.D(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
	}, nil
}

// NewBuilder returns the registry entry for the webhook notifier.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (n *Notifier) Type() string { return Type }

// key reads the secret on every delivery, so that a rotated secret file is
// picked up without a restart.
func (n *Notifier) key() (string, error) {
	v, err := n.s.Secret.Resolve()
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return v, nil
}

// DeliveryID identifies an event, the same on every attempt to deliver it.
func DeliveryID(e providers.Event) string {
	h := sha256.New()
	for _, s := range []string{e.App, e.Version, e.Kind, e.Time.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Notify delivers one event.
func (n *Notifier) Notify(ctx context.Context, e providers.Event) error {
	secret, err := n.key()
	if err != nil {
		return err
	}
	body, err := json.Marshal(Payload{App: e.App, Version: e.Version, Kind: e.Kind, Message: e.Message, Time: e.Time, Verdict: e.Verdict})
	if err != nil {
		return providers.Invalid("webhook: encode the event: %v", err)
	}
	ts := n.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.s.URL, bytes.NewReader(body))
	if err != nil {
		return providers.BadConfig("webhook %s: %v", n.where, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cutover-webhook/1")
	req.Header.Set(HeaderEvent, e.Kind)
	req.Header.Set(HeaderDelivery, DeliveryID(e))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	resp, err := n.hc.Do(req)
	if err != nil {
		// The error names the whole URL; keep only what is safe to show.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook %s: %w", n.where, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return classify(n.where, resp.StatusCode, strings.TrimSpace(string(snippet)))
}

// classify turns a receiver's status code into delivered (nil), retryable or
// permanent.
func classify(where string, code int, body string) error {
	msg := fmt.Sprintf("webhook %s answered %d %s", where, code, http.StatusText(code))
	if body != "" {
		msg += ": " + strconv.Quote(body)
	}
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return errors.New(msg)
	case code >= 300 && code < 400:
		return providers.BadConfig("%s (redirects are not followed: set url to where it points)", msg)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return providers.BadConfig("%s (check the secret)", msg)
	case code == http.StatusNotFound || code == http.StatusGone:
		return providers.BadConfig("%s (check the url)", msg)
	case code >= 400 && code < 500:
		return providers.Invalid("%s", msg)
	}
	return errors.New(msg) // 1xx and anything odd: try again
}

// Sign returns the X-Cutover-Signature value of a body sent at the timestamp
// (Unix seconds): "v1=" and the hex HMAC-SHA256 of "<timestamp>.<body>".
func Sign(secret string, timestamp int64, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp, 10), body))
}

func mac(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrNoSignature  = errors.New("webhook: missing " + HeaderTimestamp + " or " + HeaderSignature)
	ErrStale        = errors.New("webhook: timestamp outside the tolerance")
	ErrBadSignature = errors.New("webhook: signature does not match")
)

// Verify checks a delivery's headers against its raw body: the timestamp is
// within tolerance of now (DefaultTolerance when 0), and one of the v1
// signatures matches the secret. It does not remember deliveries: a receiver
// that must refuse replays keeps the signatures it accepted for the tolerance.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return errors.New("webhook: empty secret")
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, sigs := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if ts == "" || sigs == "" {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 || strconv.FormatInt(sec, 10) != ts {
		return ErrStale
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, s := range strings.Split(sigs, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(s), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// VerifyRequest reads at most maxBody bytes of r's body (1 MiB when 0) and
// verifies it with Verify against the current time; it returns the body.
func VerifyRequest(r *http.Request, secret string, maxBody int64) ([]byte, error) {
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("webhook: read body: %w", err)
	}
	if int64(len(body)) > maxBody {
		return nil, fmt.Errorf("webhook: body larger than %d bytes", maxBody)
	}
	if err := Verify(secret, r.Header, body, time.Now(), 0); err != nil {
		return nil, err
	}
	return body, nil
}
