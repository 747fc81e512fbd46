package chatops

import (
	"log/slog"
	"net/http"

	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/releases"
)

// HandlerParams are what Module needs. Config is supplied by the command only
// when chatops is configured: without it there is no Slack handler.
type HandlerParams struct {
	fx.In
	Config   *Config `optional:"true"`
	Releases *releases.Client
	Log      *slog.Logger
}

// HandlerResult is the Slack handler, named so that it is not taken for any
// other http.Handler in the graph; nil when chatops is not configured.
type HandlerResult struct {
	fx.Out
	Slack http.Handler `name:"slack"`
}

// NewHandler is New from the app's graph, with the Slack Web API client made
// from the config's bot token.
func NewHandler(p HandlerParams) (HandlerResult, error) {
	if p.Config == nil {
		return HandlerResult{}, nil
	}
	h, err := New(*p.Config, p.Releases, nil, p.Log.With("component", "chatops"))
	if err != nil {
		return HandlerResult{}, err
	}
	p.Log.Info("Slack chatops at /slack/commands and /slack/actions", "apps", len(p.Config.Apps))
	return HandlerResult{Slack: h}, nil
}

// Module provides the Slack handler as `name:"slack"` (nil without a Config).
// It needs the releases client (releases.Module) and the logger.
var Module = fx.Module("chatops", fx.Provide(NewHandler))
