package chatops

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Slack's signature headers.
const (
	HeaderSignature = "X-Slack-Signature"
	HeaderTimestamp = "X-Slack-Request-Timestamp"
)

// Reasons a request is refused before anything else happens.
var (
	ErrMissingSignature = errors.New("missing " + HeaderSignature + " or " + HeaderTimestamp)
	ErrBadTimestamp     = errors.New("timestamp is not a Unix time")
	ErrStale            = errors.New("timestamp outside the window")
	ErrBadSignature     = errors.New("signature does not match")
	ErrReplayed         = errors.New("request already seen")
	ErrReplayCacheFull  = errors.New("too many requests in the window to remember")
)

// Sign returns Slack's v0 signature of a body sent at the timestamp:
// "v0=" and the hex HMAC-SHA256, keyed with the signing secret, of
// "v0:<timestamp>:<body>".
func Sign(secret, timestamp string, body []byte) string {
	return "v0=" + hex.EncodeToString(sign(secret, timestamp, body))
}

func sign(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + timestamp + ":"))
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks Slack's v0 signature of a request: the timestamp is
// within window of now, either way, and the signature matches, compared in
// constant time. It remembers nothing; the handler adds the replay check.
func VerifySignature(secret string, h http.Header, body []byte, now time.Time, window time.Duration) error {
	if secret == "" {
		return errors.New("no signing secret")
	}
	sig, ts := h.Get(HeaderSignature), h.Get(HeaderTimestamp)
	if sig == "" || ts == "" {
		return ErrMissingSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 || strconv.FormatInt(sec, 10) != ts {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return ErrStale
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || !hmac.Equal(got, sign(secret, ts, body)) {
		return ErrBadSignature
	}
	return nil
}

// replayCache remembers the signatures of the requests acted on until their
// timestamps leave the window, when the timestamp check refuses them anyway.
// It holds at most max entries; when that many are unexpired it refuses new
// requests instead of forgetting one.
type replayCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time // signature → when it may be forgotten
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: map[string]time.Time{}}
}

// add records the signature; it fails when it was seen already, or when the
// cache is full.
func (c *replayCache) add(sig string, now, forgetAt time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.seen[sig]; ok && now.Before(until) {
		return ErrReplayed
	}
	if len(c.seen) >= c.max {
		for s, until := range c.seen {
			if !now.Before(until) {
				delete(c.seen, s)
			}
		}
		if len(c.seen) >= c.max {
			return ErrReplayCacheFull
		}
	}
	c.seen[sig] = forgetAt
	return nil
}

func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
