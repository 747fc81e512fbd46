// Package temporalconn connects the worker, the CLI and the API to Temporal,
// from flags and the TEMPORAL_* environment variables that Temporal's own tools
// read, and registers Cutover's search attributes.
package temporalconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/fx"
)

// Config says where Temporal is.
type Config struct {
	// Address is the frontend's host:port (TEMPORAL_ADDRESS, default 127.0.0.1:7233).
	Address string
	// Namespace is the namespace releases run in (TEMPORAL_NAMESPACE, default "default").
	Namespace string
	// TaskQueue is the queue the workers poll (CUTOVER_TASK_QUEUE, default "cutover").
	TaskQueue string
}

// FromEnv returns the configuration from the environment, with defaults.
func FromEnv() Config {
	return Config{
		Address:   Getenv("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		Namespace: Getenv("TEMPORAL_NAMESPACE", "default"),
		TaskQueue: Getenv("CUTOVER_TASK_QUEUE", "cutover"),
	}
}

// Getenv returns the variable's value, or def when it is unset or empty.
func Getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ErrUnreachable is a Temporal server that did not answer.
var ErrUnreachable = errors.New("temporal is unreachable")

// Dial connects to Temporal, failing fast with a one-line error when it does
// not answer.
func Dial(ctx context.Context, cfg Config, log *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	opts := client.Options{HostPort: cfg.Address, Namespace: cfg.Namespace, MetricsHandler: metrics}
	if log != nil {
		opts.Logger = sdklog.NewStructuredLogger(log)
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (set TEMPORAL_ADDRESS or --address): %w", cfg.Address, ErrUnreachable)
	}
	return c, nil
}

// Params are what Module needs.
type Params struct {
	fx.In
	Config  Config
	Log     *slog.Logger          `optional:"true"`
	Metrics client.MetricsHandler `optional:"true"`
}

// Module provides a client.Client, closed when the app stops.
var Module = fx.Module("temporalconn",
	fx.Provide(func(lc fx.Lifecycle, p Params) (client.Client, error) {
		c, err := Dial(context.Background(), p.Config, p.Log, p.Metrics)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(c.Close))
		return c, nil
	}),
)

// EnsureSearchAttributes registers the search attributes the namespace lacks.
// Registering is idempotent, so every worker may do it at start.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string, keys ...temporal.SearchAttributeKey) error {
	op := c.OperatorService()
	have, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	want := map[string]enums.IndexedValueType{}
	for _, k := range keys {
		if _, ok := have.GetCustomAttributes()[k.GetName()]; ok {
			continue
		}
		want[k.GetName()] = enums.IndexedValueType(k.GetValueType())
	}
	if len(want) == 0 {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: want})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		names := make([]string, 0, len(want))
		for n := range want {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("register search attributes %v: %w", names, err)
	}
	return nil
}
