package awsquery

import (
	"net/url"
	"sync"
)

// Call is a request a fake received.
type Call struct {
	Action string
	Form   url.Values
}

// Log records the requests a fake receives; fakes embed it.
type Log struct {
	mu    sync.Mutex
	calls []Call
}

// Record adds one request.
func (c *Log) Record(action string, form url.Values) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, Call{Action: action, Form: form})
}

// Calls returns the requests received so far.
func (c *Log) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

// Actions returns the names of the actions called so far.
func (c *Log) Actions() []string {
	var out []string
	for _, call := range c.Calls() {
		out = append(out, call.Action)
	}
	return out
}
