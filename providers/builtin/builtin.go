// Package builtin lists the providers that ship with Cutover, for the worker
// (which runs them) and the CLI (which checks a spec's provider settings before
// anything starts).
package builtin

import (
	"log/slog"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/alb"
	"github.com/cutoverhq/cutover/providers/azuretm"
	"github.com/cutoverhq/cutover/providers/beanstalk"
	"github.com/cutoverhq/cutover/providers/cloudwatch"
	"github.com/cutoverhq/cutover/providers/haproxy"
	"github.com/cutoverhq/cutover/providers/local"
	"github.com/cutoverhq/cutover/providers/logs"
	"github.com/cutoverhq/cutover/providers/memory"
	"github.com/cutoverhq/cutover/providers/postgres"
	"github.com/cutoverhq/cutover/providers/prometheus"
	"github.com/cutoverhq/cutover/providers/route53"
	"github.com/cutoverhq/cutover/providers/scrape"
	"github.com/cutoverhq/cutover/providers/slack"
	"github.com/cutoverhq/cutover/providers/webhook"
)

// Builders returns a builder for each provider type.
func Builders(log *slog.Logger) []providers.Builder {
	return []providers.Builder{
		memory.NewBuilder(),
		local.NewBuilder(),
		alb.NewBuilder(),
		route53.NewBuilder(),
		beanstalk.NewBuilder(),
		azuretm.NewBuilder(),
		haproxy.NewBuilder(),
		logs.NewBuilder(log),
		scrape.NewBuilder(),
		prometheus.NewBuilder(),
		cloudwatch.NewBuilder(),
		postgres.NewBuilder(),
		slack.NewBuilder(),
		webhook.NewBuilder(),
	}
}

// NewRegistry returns a registry of every built-in provider.
func NewRegistry(log *slog.Logger) *providers.Registry {
	return providers.NewRegistry(Builders(log)...)
}
