package router

import (
	"net/http"
	"strings"
	"time"
)

// route is one user request's routing decision. Only the goroutine serving the
// request touches it (ReverseProxy calls Rewrite, the transport, ModifyResponse
// and ErrorHandler from it), so it needs no locking.
type route struct {
	color  color
	inst   *instance
	pinned bool   // chosen by X-Cutover-Color: never leave this color, set no cookie
	cookie string // the color in the request's sticky cookie, "" if none
	code   int    // the status the user got, for metrics
}

// toGreen says whether request n of the weighted sequence goes to green, so that
// any first k requests send floor(k*w/100) to green: the split is exact over any
// window, not just on average, and needs only an atomic counter.
func toGreen(n uint64, w int) bool {
	return (n+1)*uint64(w)/100 > n*uint64(w)/100
}

// pick returns a usable instance of color c other than skip, round robin, or nil.
func (r *Router) pick(t *table, c color, skip *instance, now time.Time) *instance {
	insts := t.pools[c]
	if len(insts) == 0 {
		return nil
	}
	start := r.rr[c].Add(1) - 1
	for i := range uint64(len(insts)) {
		in := insts[(start+i)%uint64(len(insts))]
		if in != skip && in.usable(now) {
			return in
		}
	}
	return nil
}

// headerColor reads X-Cutover-Color; ok is false for a value that names no color.
func headerColor(req *http.Request) (c color, set, ok bool) {
	v := strings.ToLower(strings.TrimSpace(req.Header.Get(HeaderColor)))
	if v == "" {
		return 0, false, true
	}
	c, ok = parseColor(v)
	return c, true, ok
}

// choose routes a new user request. The header override wins; then a sticky
// cookie, while its color has weight and a usable instance; then the weights.
// When the weighted color has no usable instance the other color serves, even
// at weight 0: answering from a draining pool beats failing the user.
// hc and set are headerColor's answer for req.
func (r *Router) choose(t *table, req *http.Request, hc color, set bool, now time.Time) route {
	if set {
		return route{color: hc, inst: r.pick(t, hc, nil, now), pinned: true}
	}
	var rt route
	if r.cfg.Sticky {
		if ck, err := req.Cookie(CookieName); err == nil {
			if c, ok := parseColor(ck.Value); ok {
				rt.cookie = ck.Value
				if t.weight(c) > 0 {
					if in := r.pick(t, c, nil, now); in != nil {
						rt.color, rt.inst = c, in
						return rt
					}
				}
			}
		}
	}
	c := blue
	if toGreen(r.split.Add(1)-1, t.green) {
		c = green
	}
	in := r.pick(t, c, nil, now)
	if in == nil {
		c = c.other()
		in = r.pick(t, c, nil, now)
	}
	rt.color, rt.inst = c, in
	return rt
}

// retryTarget picks the instance for the one retry after rt.inst failed to
// connect. A green instance that fails is the first sign of a bad release, and
// its siblings may be failing too: the retry goes to blue, the version known to
// work. A failed blue instance is retried on another blue one, else on green. A
// request pinned to a color stays on it.
func (r *Router) retryTarget(rt *route, now time.Time) (color, *instance) {
	t := r.table.Load()
	order := []color{rt.color, rt.color.other()}
	switch {
	case rt.pinned:
		order = order[:1]
	case rt.color == green:
		order = []color{blue, green}
	}
	for _, c := range order {
		if in := r.pick(t, c, rt.inst, now); in != nil {
			return c, in
		}
	}
	return 0, nil
}
