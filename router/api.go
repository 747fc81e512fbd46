package router

// The admin API's JSON shapes, shared by the server and Client.

// Colors name the two pools.
const (
	Blue  = "blue"
	Green = "green"
)

// Names a user request can carry.
const (
	// CookieName is the sticky cookie; its value is the color that served the
	// user (when Config.Sticky).
	CookieName = "cutover_color"
	// HeaderColor sends a request to one color whatever the weights, so that
	// testers reach green before it takes any traffic. The router removes it
	// before proxying.
	HeaderColor = "X-Cutover-Color"
)

// State is the router's state: GET /v1/state, and the answer to every change.
type State struct {
	App         string                `json:"app"`
	Weights     Weights               `json:"weights"`
	Maintenance bool                  `json:"maintenance"`
	Sticky      bool                  `json:"sticky"`
	InFlight    map[string]int64      `json:"inFlight"` // requests in progress, by color
	Pools       map[string][]Instance `json:"pools"`    // by color; a pool is never null
}

// Weights split user traffic in percent; they add up to 100. PUT /v1/weights
// takes {"green": N}, {"blue": N} or both (then they must add up to 100).
type Weights struct {
	Blue  int `json:"blue"`
	Green int `json:"green"`
}

// Instance is one member of a pool.
type Instance struct {
	URL      string `json:"url"`
	Healthy  bool   `json:"healthy"`  // its last active health check passed
	InFlight int64  `json:"inFlight"` // requests it serves now
	Ejected  bool   `json:"ejected"`  // a connection to it failed recently: it gets no requests
}

// PoolRequest is the body of PUT /v1/pools/{color}: the pool's whole membership.
type PoolRequest struct {
	Instances []string `json:"instances"`
}

// MaintenanceRequest is the body of PUT /v1/maintenance.
type MaintenanceRequest struct {
	Enabled bool `json:"enabled"`
}

// ErrorResponse is the body of every admin API error.
type ErrorResponse struct {
	Error string `json:"error"`
}
