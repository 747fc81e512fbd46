package api

import (
	"sync"
	"time"
)

// idemCache remembers which release an Idempotency-Key started, per token, for
// a while. It is only a cache: the release's workflow ID (one per app) is what
// makes a start idempotent across restarts of the API; the cache adds that a
// retry after the release ended still gets the same answer.
type idemCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[string]idemEntry
	now     func() time.Time
}

type idemEntry struct {
	started StartResponse
	expires time.Time
}

func newIdemCache(ttl time.Duration, max int) *idemCache {
	return &idemCache{ttl: ttl, max: max, entries: map[string]idemEntry{}, now: time.Now}
}

func idemKey(token, key string) string { return token + "\x00" + key }

func (c *idemCache) get(token, key string) (StartResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[idemKey(token, key)]
	if !ok || !c.now().Before(e.expires) {
		delete(c.entries, idemKey(token, key))
		return StartResponse{}, false
	}
	return e.started, true
}

// put remembers a key's release; when full, it drops expired keys, then the
// ones closest to expiring.
func (c *idemCache) put(token, key string, started StartResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	k := idemKey(token, key)
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for ek, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, ek)
			}
		}
		for len(c.entries) >= c.max {
			var oldest string
			var at time.Time
			for ek, e := range c.entries {
				if oldest == "" || e.expires.Before(at) {
					oldest, at = ek, e.expires
				}
			}
			delete(c.entries, oldest)
		}
	}
	c.entries[k] = idemEntry{started: started, expires: now.Add(c.ttl)}
}
