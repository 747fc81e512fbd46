package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls a router's admin API. Every call it makes is idempotent except
// Swap, which is a no-op once done, so callers may retry any of them.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the admin API at base (like
// http://127.0.0.1:8081) with the admin token.
func NewClient(base, token string) *Client {
	return &Client{
		base:  strings.TrimRight(base, "/"),
		token: token,
		// Bounds calls whose context has no deadline; PUT of a pool waits for the
		// new instances' first health check.
		http: &http.Client{Timeout: 30 * time.Second},
	}
}

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int    // HTTP status
	Message string // the server's explanation
}

func (e *APIError) Error() string {
	return fmt.Sprintf("router admin API: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// State returns the router's state.
func (c *Client) State(ctx context.Context) (State, error) {
	return c.do(ctx, http.MethodGet, "/v1/state", nil)
}

// SetWeight sends green percent of new user requests to green, the rest to blue.
func (c *Client) SetWeight(ctx context.Context, green int) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/weights", map[string]int{Green: green})
	return err
}

// SetPool replaces the membership of a pool (blue or green) with the
// instances' base URLs; none empties it.
func (c *Client) SetPool(ctx context.Context, pool string, instances []string) error {
	if instances == nil {
		instances = []string{}
	}
	_, err := c.do(ctx, http.MethodPut, "/v1/pools/"+url.PathEscape(pool), PoolRequest{Instances: instances})
	return err
}

// Swap makes green's instances the blue pool, empties green and puts all
// traffic on blue, in one step.
func (c *Client) Swap(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/swap", nil)
	return err
}

// SetMaintenance turns maintenance mode on or off.
func (c *Client) SetMaintenance(ctx context.Context, enabled bool) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/maintenance", MaintenanceRequest{Enabled: enabled})
	return err
}

func (c *Client) do(ctx context.Context, method, path string, in any) (State, error) {
	var st State
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return st, fmt.Errorf("router admin API %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return st, fmt.Errorf("router admin API %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return st, fmt.Errorf("router admin API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return st, fmt.Errorf("router admin API %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return st, fmt.Errorf("%s %s: %w", method, path, &APIError{Status: resp.StatusCode, Message: e.Error})
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("router admin API %s %s: decode state: %w", method, path, err)
	}
	return st, nil
}
