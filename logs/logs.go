// Package logs builds the slog logger of the long-running programs
// (cutover-worker and cutover serve) from their --log-format and --log-level,
// so that both log alike and refuse the same bad values the same way.
package logs

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Config is how a program logs.
type Config struct {
	Format string // text or json
	Level  string // debug, info, warn or error
}

// FlagSet is the part of a flag set Flags needs: the standard library's and
// pflag's both fit.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
}

// Flags registers --log-format and --log-level, defaulting to
// CUTOVER_LOG_FORMAT and CUTOVER_LOG_LEVEL, and to text and info without them.
func (c *Config) Flags(fs FlagSet) {
	fs.StringVar(&c.Format, "log-format", getenv("CUTOVER_LOG_FORMAT", "text"), "log format: text or json (CUTOVER_LOG_FORMAT)")
	fs.StringVar(&c.Level, "log-level", getenv("CUTOVER_LOG_LEVEL", "info"), "log level: debug, info, warn, error (CUTOVER_LOG_LEVEL)")
}

// New returns a logger that writes to w, or a one-line error naming the flag
// whose value is wrong.
func (c Config) New(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug", "info", "warn", "error":
		_ = level.UnmarshalText([]byte(c.Level))
	default:
		// slog also takes INFO+2 and the like: nobody documents those here.
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", c.Format)
}

// getenv is os.Getenv with a default; an empty variable counts as unset.
func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
