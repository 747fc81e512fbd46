package logs

import (
	"bytes"
	"encoding/json"
	"flag"
	"strings"
	"testing"
)

func TestFlagsDefaultToTheEnvironment(t *testing.T) {
	t.Setenv("CUTOVER_LOG_FORMAT", "json")
	t.Setenv("CUTOVER_LOG_LEVEL", "")
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse([]string{"--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if c != (Config{Format: "json", Level: "warn"}) {
		t.Errorf("config %+v; want json from the environment, warn from the flag", c)
	}
	var out bytes.Buffer
	log, err := c.New(&out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("dropped")
	log.Warn("kept", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil || rec["msg"] != "kept" || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("log output %q (%v); want one JSON line for the warning only", out.String(), err)
	}
}

func TestBadValuesNameTheFlag(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Format: "xml", Level: "info"}, `--log-format: "xml" is not text or json`},
		{Config{Format: "text", Level: "loud"}, `--log-level: "loud" is not one of debug, info, warn, error`},
		{Config{Format: "text", Level: "INFO+2"}, `--log-level: "INFO+2" is not one of debug, info, warn, error`},
	} {
		if _, err := c.cfg.New(&bytes.Buffer{}); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v; want %s", c.cfg, err, c.want)
		}
	}
}
