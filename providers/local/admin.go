package local

import (
	"context"
	"errors"
	"net/http"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/router"
)

// admin is the router's admin API as this provider uses it; every error comes
// out classified: a refused token or request is permanent, anything else (the
// router restarting, a timeout) is worth retrying.
type admin struct{ c *router.Client }

func (p *Provider) admin() (admin, error) {
	token, err := p.s.Router.Token.Resolve()
	if err != nil {
		return admin{}, providers.BadConfig("router token: %v", err)
	}
	return admin{router.NewClient(p.s.Router.Admin, token)}, nil
}

func classify(err error) error {
	var api *router.APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &api) && (api.Status == http.StatusUnauthorized || api.Status == http.StatusForbidden):
		return providers.BadConfig("the router refused the admin token: %v", err)
	case errors.As(err, &api) && api.Status >= 400 && api.Status < 500 && api.Status != http.StatusTooManyRequests:
		return providers.Invalid("%v", err)
	}
	return err
}

// State returns the router's weights, pools and in-flight counts.
func (a admin) State(ctx context.Context) (router.State, error) {
	st, err := a.c.State(ctx)
	return st, classify(err)
}

// SetWeight sends green percent of user traffic to green.
func (a admin) SetWeight(ctx context.Context, green int) error {
	return classify(a.c.SetWeight(ctx, green))
}

// SetPool replaces a color's instances.
func (a admin) SetPool(ctx context.Context, color string, urls []string) error {
	return classify(a.c.SetPool(ctx, color, urls))
}

// routerState reads the router's state.
func (p *Provider) routerState(ctx context.Context) (router.State, error) {
	a, err := p.admin()
	if err != nil {
		return router.State{}, err
	}
	return a.State(ctx)
}
