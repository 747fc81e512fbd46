// Package logs is a notifier that writes release events to the worker's log,
// the notifier to use when no chat or webhook is set up.
package logs

import (
	"context"
	"log/slog"

	"github.com/cutoverhq/cutover/providers"
)

// Type is the provider's name in release.yaml.
const Type = "log"

// Notifier logs events with slog.
type Notifier struct{ log *slog.Logger }

// New returns a notifier writing to log; it takes no settings.
func New(log *slog.Logger, settings map[string]any) (*Notifier, error) {
	var none struct{}
	if err := providers.DecodeSettings(settings, &none); err != nil {
		return nil, err
	}
	return &Notifier{log: log}, nil
}

// NewBuilder returns the registry entry for the log notifier.
func NewBuilder(log *slog.Logger) providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(log, s) }}
}

// Type names the provider.
func (n *Notifier) Type() string { return Type }

// Notify logs one event.
func (n *Notifier) Notify(ctx context.Context, e providers.Event) error {
	n.log.Info("release event", "app", e.App, "version", e.Version, "kind", e.Kind, "message", e.Message)
	return nil
}
