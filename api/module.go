package api

import (
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/releases"
)

// ServerParams are what Module needs to build the API: its Config (tokens
// included) and logger, supplied by the command; the releases and Temporal
// clients (releases.Module, temporalconn.Module); and the app definitions'
// Resolver when one is provided.
type ServerParams struct {
	fx.In
	Config   Config
	Releases *releases.Client
	Temporal client.Client
	// Apps, when provided, refuses a request the app definitions do not
	// allow before anything starts (see New).
	Apps Resolver `optional:"true"`
	Log  *slog.Logger
}

// NewServer is New over Temporal, from the app's graph.
func NewServer(p ServerParams) (*Server, error) {
	return New(p.Config, NewTemporal(p.Releases, p.Temporal), p.Apps, p.Log)
}

// Module provides the API's *Server. The command that serves it owns the HTTP
// server, since the listener, TLS and deadlines are its flags.
var Module = fx.Module("api", fx.Provide(NewServer))
