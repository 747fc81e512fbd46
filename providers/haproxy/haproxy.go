// Package haproxy splits an app's traffic between blue and green through
// HAProxy's runtime API (the stats socket at `level admin`), on a unix or TCP
// socket. It is a traffic provider and a Drainer; it starts and stops nothing:
// the servers are HAProxy's, declared in its configuration.
//
// Blue and green are two groups of servers in one backend, named by list or by
// prefix:
//
//	traffic:
//	  type: haproxy
//	  settings:
//	    socket: unix:/run/haproxy/admin.sock   # or tcp:127.0.0.1:9999
//	    backend: shop                          # default: the app's name
//	    blue: [b1, b2]                         # or bluePrefix: blue (the default)
//	    green: [g1, g2]                        # or greenPrefix: green (the default)
//	    scale: 256                             # the weight budget, default 256
//
// SetWeight(green%) gives green round(scale × green% / 100) of the budget and
// blue the rest, each group's share split evenly across its servers (the
// first servers of a group get the remainder), then sets every server whose
// weight changes with `set server <backend>/<server> weight <n>` (raises first,
// then lowers, so that the backend never has weight 0 everywhere) and reads the
// weights back with `show servers state <backend>`. A group at 0% has weight
// 0 on each of its servers: HAProxy sends it no new requests, and requests in
// flight finish. Weight computes green's share from the same read-back, so it
// returns what SetWeight set for any scale of at least 100. HAProxy weights
// are 0..256 per server, so scale must be at most 256 × the servers of the
// smaller group. The backend's balance algorithm must honour dynamic weights
// (roundrobin, leastconn, random; not static-rr, not a hash without
// `hash-type consistent`).
//
// Weight reports weights, not health: a server that is DOWN keeps its weight,
// and HAProxy gives its share to the up servers (to the other color's when a
// whole color is down). A server whose weight goes to 0 is also put in
// `state drain` (HAProxy then shows it as DRAIN, and sends it only the
// requests of sessions persistent to it), and a drained server is set `state
// ready` before its weight is raised again. A server an operator put in
// `maint` is left there; its health stays HAProxy's.
//
// InFlight sums the current sessions and queued requests (`show stat`: scur
// and qcur) of the color's servers.
//
// Errors: a socket that cannot be reached or a connection lost is retried
// (HAProxy restarting or reloading); an unknown backend or server is
// providers.ErrNotFound; any other runtime API refusal (`Permission denied` on
// a socket below level admin, a weight out of range) is providers.ErrInvalid.
// HAProxy has no throttling of its own, so there is no throttle to retry.
//
// # One pool, two halves
//
// A fleet that is one pool of servers updated half by half (drain half, update
// it, switch to it, update the other half, rejoin) is expressed by naming the
// halves blue and green, with no extra code. With servers s1..s4 and s1, s2
// live, the release's settings say `blue: [s1, s2]` and `green: [s3, s4]`
// (green idle, at weight 0: the drained half), and the plan is the usual one:
//
//	plan:
//	  - provision        # update s3, s4 (the environment provider, or out of band before the release)
//	  - validate
//	  - setWeight: 10    # the switch, gradually
//	  - soak: {duration: 5m}
//	  - setWeight: 50
//	  - analysis: {window: 5m}
//	  - promote          # all traffic on s3, s4; s1, s2 at weight 0
//	  - decommission     # waits until s1, s2 serve nothing (InFlight), then the environment stops or updates them
//
// The next release names the halves the other way round (`blue: [s3, s4]`,
// `green: [s1, s2]`): blue is always the live half. The provider's names are
// static, so it is the spec that alternates; there is no swap at
// decommission as the local router does. "Rejoin" (both halves serving the
// new version) is not a plan step, since the plan cannot lower green's weight
// after promote; it is a `set server` outside Cutover, after which the next
// release has no idle half to update until one is drained again.
package haproxy

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "haproxy"

// maxServerWeight is HAProxy's largest server weight.
const maxServerWeight = 256

// Settings are the provider's release.yaml settings.
type Settings struct {
	// Socket is the runtime API's socket: unix:/path or tcp:host:port.
	Socket string `json:"socket"`
	// Backend is the backend whose servers are blue and green (default: the
	// app's name).
	Backend string `json:"backend,omitempty"`
	// Blue and Green name each color's servers; BluePrefix and GreenPrefix
	// instead take every server whose name starts with the prefix. Without
	// either, the prefixes are "blue" and "green".
	Blue        []string `json:"blue,omitempty"`
	Green       []string `json:"green,omitempty"`
	BluePrefix  string   `json:"bluePrefix,omitempty"`
	GreenPrefix string   `json:"greenPrefix,omitempty"`
	// Scale is the weight budget split between the colors (default 256).
	Scale int `json:"scale,omitempty"`
	// Timeout bounds each runtime API command (default 5s).
	Timeout spec.Duration `json:"timeout,omitempty"`
}

// Provider is an HAProxy traffic provider.
type Provider struct {
	s  Settings
	rt runtime
}

// names are what HAProxy accepts as proxy and server names; anything else
// could not be one, and could split a runtime API command.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// New checks the settings and returns a provider. It does no I/O.
func New(settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	var rt runtime
	switch {
	case s.Socket == "":
		return nil, providers.BadConfig("socket is required: the runtime API's stats socket, like unix:/run/haproxy/admin.sock or tcp:127.0.0.1:9999")
	case strings.HasPrefix(s.Socket, "unix:"):
		rt = runtime{network: "unix", addr: strings.TrimPrefix(s.Socket, "unix:")}
		if rt.addr == "" {
			return nil, providers.BadConfig("socket %q has no path", s.Socket)
		}
	case strings.HasPrefix(s.Socket, "tcp:"):
		rt = runtime{network: "tcp", addr: strings.TrimPrefix(s.Socket, "tcp:")}
		if !strings.Contains(rt.addr, ":") {
			return nil, providers.BadConfig("socket %q is not tcp:host:port", s.Socket)
		}
	default:
		return nil, providers.BadConfig("socket %q is neither unix:/path nor tcp:host:port", s.Socket)
	}
	if s.Backend != "" && !nameRE.MatchString(s.Backend) {
		return nil, providers.BadConfig("backend %q is not an HAProxy backend name", s.Backend)
	}
	if len(s.Blue) > 0 && s.BluePrefix != "" {
		return nil, providers.BadConfig("blue and bluePrefix both name blue's servers: set one")
	}
	if len(s.Green) > 0 && s.GreenPrefix != "" {
		return nil, providers.BadConfig("green and greenPrefix both name green's servers: set one")
	}
	if len(s.Blue) == 0 && s.BluePrefix == "" {
		s.BluePrefix = "blue"
	}
	if len(s.Green) == 0 && s.GreenPrefix == "" {
		s.GreenPrefix = "green"
	}
	for _, n := range append(append([]string{}, s.Blue...), s.Green...) {
		if !nameRE.MatchString(n) {
			return nil, providers.BadConfig("server %q is not an HAProxy server name", n)
		}
	}
	for _, n := range s.Blue {
		if slices.Contains(s.Green, n) {
			return nil, providers.BadConfig("server %q is both blue and green", n)
		}
	}
	if s.BluePrefix != "" && s.GreenPrefix != "" &&
		(strings.HasPrefix(s.BluePrefix, s.GreenPrefix) || strings.HasPrefix(s.GreenPrefix, s.BluePrefix)) {
		return nil, providers.BadConfig("bluePrefix %q and greenPrefix %q overlap", s.BluePrefix, s.GreenPrefix)
	}
	if s.Scale == 0 {
		s.Scale = maxServerWeight
	}
	if s.Scale < 100 {
		return nil, providers.BadConfig("scale %d is below 100: each percent needs a weight of its own", s.Scale)
	}
	if s.Timeout == 0 {
		s.Timeout = spec.Duration(5 * time.Second)
	}
	if s.Timeout < 0 {
		return nil, providers.BadConfig("timeout %s is negative", s.Timeout.D())
	}
	rt.timeout = s.Timeout.D()
	return &Provider{s: s, rt: rt}, nil
}

// NewBuilder returns the registry entry for the haproxy provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

func (p *Provider) backend(app string) (string, error) {
	b := p.s.Backend
	if b == "" {
		b = app
	}
	if !nameRE.MatchString(b) {
		return "", providers.Invalid("app %q is not an HAProxy backend name: set settings.backend", app)
	}
	return b, nil
}

// groups are the backend's blue and green servers with their weights.
type groups struct {
	backend     string
	blue, green []server
}

// colors reads the backend's servers and sorts them into the two colors.
func (p *Provider) colors(ctx context.Context, app string) (groups, error) {
	b, err := p.backend(app)
	if err != nil {
		return groups{}, err
	}
	all, err := p.rt.servers(ctx, b)
	if err != nil {
		return groups{}, err
	}
	g := groups{backend: b}
	if g.blue, err = pick(all, b, "blue", p.s.Blue, p.s.BluePrefix); err != nil {
		return groups{}, err
	}
	if g.green, err = pick(all, b, "green", p.s.Green, p.s.GreenPrefix); err != nil {
		return groups{}, err
	}
	return g, nil
}

func pick(all []server, backend, color string, names []string, prefix string) ([]server, error) {
	var out []server
	if len(names) > 0 {
		for _, n := range names {
			i := slices.IndexFunc(all, func(s server) bool { return s.name == n })
			if i < 0 {
				return nil, providers.NotFound("haproxy backend %s has no %s server %q", backend, color, n)
			}
			out = append(out, all[i])
		}
		return out, nil
	}
	for _, s := range all {
		if strings.HasPrefix(s.name, prefix) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, providers.NotFound("haproxy backend %s has no %s server (no server name starts with %q)", backend, color, prefix)
	}
	return out, nil
}

// split divides total across n servers: the first total%n get one more.
func split(total, n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = total / n
		if i < total%n {
			w[i]++
		}
	}
	return w
}

// SetWeight sends green percent of the backend's new requests to green's
// servers and the rest to blue's, and checks that HAProxy took the weights.
func (p *Provider) SetWeight(ctx context.Context, app string, green int) error {
	if green < 0 || green > 100 {
		return providers.Invalid("green weight %d is outside 0..100", green)
	}
	g, err := p.colors(ctx, app)
	if err != nil {
		return err
	}
	if small := min(len(g.blue), len(g.green)); p.s.Scale > maxServerWeight*small {
		return providers.BadConfig("scale %d is more than %d servers can carry (HAProxy weights are 0..%d)", p.s.Scale, small, maxServerWeight)
	}
	greenTotal := (p.s.Scale*green + 50) / 100
	want := map[string]int{}
	for i, w := range split(p.s.Scale-greenTotal, len(g.blue)) {
		want[g.blue[i].name] = w
	}
	for i, w := range split(greenTotal, len(g.green)) {
		want[g.green[i].name] = w
	}
	// Raises before lowers: the backend never has all its weight at 0.
	all := append(append([]server{}, g.blue...), g.green...)
	slices.SortStableFunc(all, func(a, b server) int {
		return (want[b.name] - b.weight) - (want[a.name] - a.weight)
	})
	// A server coming back into use leaves the drain state first.
	for _, s := range all {
		if want[s.name] > 0 && s.drained() {
			if err := p.rt.setState(ctx, g.backend, s.name, "ready"); err != nil {
				return err
			}
		}
	}
	for _, s := range all {
		if s.weight == want[s.name] {
			continue
		}
		if err := p.rt.setWeight(ctx, g.backend, s.name, want[s.name]); err != nil {
			return err
		}
	}
	// A server left with nothing is put in the drain state: HAProxy shows it
	// as DRAIN and sends it only the requests of sessions persistent to it.
	// A server in maintenance is left as the operator put it.
	for _, s := range all {
		if want[s.name] == 0 && s.admin&(adminForcedDrain|adminForcedMaint) == 0 {
			if err := p.rt.setState(ctx, g.backend, s.name, "drain"); err != nil {
				return err
			}
		}
	}
	after, err := p.colors(ctx, app)
	if err != nil {
		return err
	}
	for _, s := range append(after.blue, after.green...) {
		// Someone else changed it in between: try again.
		if s.weight != want[s.name] {
			return fmt.Errorf("haproxy %s/%s has weight %d after it was set to %d", g.backend, s.name, s.weight, want[s.name])
		}
		if s.admin&adminForcedMaint == 0 && (s.admin&adminForcedDrain != 0) != (want[s.name] == 0) {
			return fmt.Errorf("haproxy %s/%s has admin state %#x after it was set to weight %d", g.backend, s.name, s.admin, want[s.name])
		}
	}
	return nil
}

// Weight reads green's share back from the servers' weights.
func (p *Provider) Weight(ctx context.Context, app string) (int, error) {
	g, err := p.colors(ctx, app)
	if err != nil {
		return 0, err
	}
	sum := func(ss []server) int {
		n := 0
		for _, s := range ss {
			n += s.weight
		}
		return n
	}
	b, gr := sum(g.blue), sum(g.green)
	if b+gr == 0 {
		return 0, providers.Invalid("haproxy backend %s has weight 0 on every blue and green server: it sends them nothing", g.backend)
	}
	return int(math.Round(100 * float64(gr) / float64(b+gr))), nil
}

// InFlight returns the requests the color's servers serve or have queued now.
func (p *Provider) InFlight(ctx context.Context, app string, c providers.Color) (int, error) {
	g, err := p.colors(ctx, app)
	if err != nil {
		return 0, err
	}
	cur, err := p.rt.current(ctx, g.backend)
	if err != nil {
		return 0, err
	}
	var ss []server
	switch c {
	case providers.Blue:
		ss = g.blue
	case providers.Green:
		ss = g.green
	default:
		return 0, providers.Invalid("unknown color %q: want blue or green", c)
	}
	n := 0
	for _, s := range ss {
		n += cur[s.name]
	}
	return n, nil
}
