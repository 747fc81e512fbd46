package router

import (
	"fmt"
	"net/url"
	"sync/atomic"
	"time"
)

// color indexes the two pools.
type color int

const (
	blue color = iota
	green
)

var colorNames = [2]string{Blue, Green}

func (c color) String() string { return colorNames[c] }

func (c color) other() color { return 1 - c }

func parseColor(s string) (color, bool) {
	switch s {
	case Blue:
		return blue, true
	case Green:
		return green, true
	}
	return 0, false
}

// instance is one backend. Pools share *instance values by URL, so an instance
// that moves from green to blue (a swap, or the same URL put in both pools)
// keeps its health, ejection and in-flight count: moving it drops no traffic.
type instance struct {
	url          *url.URL
	key          string       // url.String(), the instance's name in the API and metrics
	healthy      atomic.Bool  // set by active checks; false until the first one passes
	ejectedUntil atomic.Int64 // unix nanoseconds; passive ejection after a failed connection
	inFlight     atomic.Int64
	failedChecks atomic.Int32             // failed active checks in a row
	bound        [2]atomic.Pointer[bound] // its metrics children by color, bound on first use
	idle         idleConns                // the lean path's connections
}

func newInstance(u *url.URL) *instance {
	return &instance{url: u, key: u.String()}
}

func (in *instance) ejected(now time.Time) bool {
	return now.UnixNano() < in.ejectedUntil.Load()
}

// usable says whether the instance may take a new request.
func (in *instance) usable(now time.Time) bool {
	return in.healthy.Load() && !in.ejected(now)
}

// table is the routing state. It is immutable once published: changes copy it
// and swap the pointer, so the request path reads it without locks and a swap of
// the pools is one atomic step.
type table struct {
	green       int // green's weight, 0..100; blue has the rest
	pools       [2][]*instance
	maintenance bool
}

func (t *table) clone() *table {
	n := *t // the pool slices are shared: they are replaced, never modified
	return &n
}

func (t *table) weight(c color) int {
	if c == green {
		return t.green
	}
	return 100 - t.green
}

// all returns every instance of both pools once.
func (t *table) all() []*instance {
	seen := make(map[*instance]bool)
	var out []*instance
	for _, p := range t.pools {
		for _, in := range p {
			if !seen[in] {
				seen[in] = true
				out = append(out, in)
			}
		}
	}
	return out
}

// byURL indexes both pools' instances by URL.
func (t *table) byURL() map[string]*instance {
	m := make(map[string]*instance)
	for _, p := range t.pools {
		for _, in := range p {
			m[in.key] = in
		}
	}
	return m
}

// colorOf names the pool an instance is in now, for logs.
func (t *table) colorOf(in *instance) string {
	for c, p := range t.pools {
		for _, x := range p {
			if x == in {
				return colorNames[c]
			}
		}
	}
	return "none"
}

// parseInstanceURL accepts an instance's base URL: http or https, a host, and
// nothing else, because requests keep their own path and query.
func parseInstanceURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("instance %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("instance %q: want an http:// or https:// URL", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("instance %q: no host", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("instance %q: want a base URL like http://127.0.0.1:9001, without path, query or credentials", s)
	}
	u.Path, u.RawPath = "", ""
	return u, nil
}

// parseInstanceURLs parses a pool's membership; a URL may appear once.
func parseInstanceURLs(ss []string) ([]*url.URL, error) {
	out := make([]*url.URL, 0, len(ss))
	seen := make(map[string]bool)
	for _, s := range ss {
		u, err := parseInstanceURL(s)
		if err != nil {
			return nil, err
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("instance %q is listed twice", s)
		}
		seen[u.String()] = true
		out = append(out, u)
	}
	return out, nil
}
