// Package temporalconn connects the worker, the CLI and the API to Temporal,
// from flags, the TEMPORAL_* environment variables and the client config file
// that Temporal's own CLI reads (go.temporal.io/sdk/contrib/envconfig), so that
// one setup reaches a local dev server, a cluster with TLS or Temporal Cloud;
// and it registers Cutover's search attributes.
package temporalconn

import (
	"cmp"
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
	"go.temporal.io/sdk/contrib/envconfig"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/fx"
)

// Cutover's defaults when neither a flag, the environment nor a config file
// profile says otherwise: a dev server on this machine.
const (
	DefaultAddress   = "127.0.0.1:7233"
	DefaultNamespace = "default"
)

// EnvHelp lists the variables FromEnv reads, for the commands' help.
const EnvHelp = `Connecting to Temporal: the variables and config file of Temporal's own CLI.
--address and --namespace override the variables, which override the profile.
  TEMPORAL_ADDRESS                        frontend host:port (127.0.0.1:7233)
  TEMPORAL_NAMESPACE                      namespace (default)
  TEMPORAL_API_KEY                        API key, sent as a bearer token (Temporal Cloud)
  TEMPORAL_TLS                            true: TLS with the system's CAs; false: no TLS at all
  TEMPORAL_TLS_CLIENT_CERT_PATH           client certificate (PEM), for mTLS
  TEMPORAL_TLS_CLIENT_KEY_PATH            its private key (PEM)
  TEMPORAL_TLS_SERVER_CA_CERT_PATH        CA of the server's certificate (default: the system's)
  TEMPORAL_TLS_SERVER_NAME                name the server's certificate must have (and SNI)
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION  true: accept any server certificate (tests only)
  TEMPORAL_TLS_CLIENT_CERT_DATA, TEMPORAL_TLS_CLIENT_KEY_DATA, TEMPORAL_TLS_SERVER_CA_CERT_DATA
                                          PEM text instead of a file
  TEMPORAL_TLS_CERT, _KEY, _CA            older names of the three paths, still read
  TEMPORAL_CLIENT_AUTHORITY               gRPC :authority header
  TEMPORAL_GRPC_META_<NAME>               gRPC header <name> on every call
  TEMPORAL_PROFILE                        profile of the config file (default)
  TEMPORAL_CONFIG_FILE                    config file (~/.config/temporalio/temporal.toml)
An API key or any TEMPORAL_TLS_* setting turns TLS on, unless TEMPORAL_TLS=false.`

// Config says where Temporal is and how to talk to it.
type Config struct {
	// Address is the frontend's host:port (TEMPORAL_ADDRESS, default 127.0.0.1:7233).
	Address string
	// Namespace is the namespace releases run in (TEMPORAL_NAMESPACE, default "default").
	Namespace string
	// TaskQueue is the queue the workers poll (CUTOVER_TASK_QUEUE, default "cutover").
	TaskQueue string

	// profile is the rest of the environment's client configuration: TLS,
	// client certificate, API key, gRPC metadata. Its zero value is plaintext,
	// which is what a Config built by hand (the benchmark's) wants.
	profile envconfig.ClientConfigProfile
	// file and profileName say where profile was read, so that an error can
	// name the setting to fix.
	file, profileName string
	// loadErr is why the config file or profile could not be read. Dial
	// returns it rather than FromEnv, so that commands that never reach
	// Temporal (plan, --help) still run.
	loadErr error
}

// FromEnv returns the configuration from the environment and the config file
// profile, over Cutover's defaults.
func FromEnv() Config {
	cfg := Config{
		TaskQueue:   Getenv("CUTOVER_TASK_QUEUE", "cutover"),
		file:        Getenv("TEMPORAL_CONFIG_FILE", envconfig.DefaultConfigFilePath()),
		profileName: Getenv("TEMPORAL_PROFILE", envconfig.DefaultConfigFileProfile),
	}
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{ConfigFilePath: cfg.file, EnvLookup: setEnv{}})
	if err != nil {
		cfg.loadErr = fmt.Errorf("Temporal client config %s (TEMPORAL_CONFIG_FILE), profile %q (TEMPORAL_PROFILE): %w", cfg.file, cfg.profileName, err)
	}
	// envconfig ignores a config file that does not exist, right for the
	// default path but not for one a person named: a typo would dial
	// 127.0.0.1:7233 in the clear.
	if named := os.Getenv("TEMPORAL_CONFIG_FILE"); named != "" {
		if _, err := os.Stat(named); err != nil {
			cfg.loadErr = fmt.Errorf("Temporal client config %s (TEMPORAL_CONFIG_FILE): %w", named, errors.Unwrap(err))
		}
	}
	applyLegacyTLSEnv(&prof)
	cfg.profile = prof
	// An empty TEMPORAL_ADDRESS means unset here, as for every other variable
	// Cutover reads; envconfig would take it as an empty address.
	cfg.Address = cmp.Or(prof.Address, DefaultAddress)
	cfg.Namespace = cmp.Or(prof.Namespace, DefaultNamespace)
	return cfg
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

// ErrTLS is a TLS handshake with Temporal that failed: a certificate one side
// does not accept, or a client speaking TLS to a plaintext server.
var ErrTLS = errors.New("TLS with temporal failed")

// Error is a failure to connect, worded for a person. It is a type so that a
// caller can find it under fx's account of which constructor failed.
type Error struct {
	msg string
	// kind is what errors.Is sees (ErrTLS, ErrUnreachable, or the setting's
	// error), kept out of msg, which already says it in words.
	kind error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.kind }

func newError(kind error, format string, args ...any) *Error {
	return &Error{msg: fmt.Sprintf(format, args...), kind: kind}
}

// ClientOptions are the SDK options cfg describes: TLS, credentials and
// metadata from the environment and the profile, with cfg's address and
// namespace (the flags') over theirs.
func ClientOptions(cfg Config) (client.Options, error) {
	if cfg.loadErr != nil {
		return client.Options{}, cfg.loadErr
	}
	if err := cfg.checkFiles(); err != nil {
		return client.Options{}, err
	}
	prof := cfg.profile
	prof.Address, prof.Namespace = cfg.Address, cfg.Namespace
	// The remote codec stays off: a worker would call it on every replay.
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return client.Options{}, fmt.Errorf("Temporal TLS settings (TEMPORAL_TLS_*): %w", err)
	}
	return opts, nil
}

// Dial connects to Temporal, failing fast with a one-line *Error when the
// settings are wrong, the TLS handshake fails or the server does not answer.
func Dial(ctx context.Context, cfg Config, log *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts, err := ClientOptions(cfg)
	if err != nil {
		return nil, &Error{msg: err.Error(), kind: err}
	}
	opts.MetricsHandler = metrics
	if log != nil {
		opts.Logger = sdklog.NewStructuredLogger(log)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, dialError(cfg.Address, opts.ConnectionOptions.TLS != nil, err)
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
