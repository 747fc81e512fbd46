package chatops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/providers"
)

// Defaults of the configuration.
const (
	DefaultWindow          = 5 * time.Minute
	DefaultMaxBody         = 64 << 10
	DefaultReplayCacheSize = 10000
	DefaultGroupCacheTTL   = time.Minute
	DefaultAckTimeout      = 2500 * time.Millisecond
	DefaultDecideTimeout   = time.Minute
	// AnyApp is the Apps key that applies to every app without its own entry.
	AnyApp = "*"
)

// Config configures the Slack handler.
type Config struct {
	// SigningSecret is the Slack app's signing secret (required).
	SigningSecret string
	// BotToken is the bot token; it is needed to resolve user groups
	// (usergroups:read) and to edit a message that came without a response_url.
	BotToken string
	// TeamID, when set, is the only Slack workspace (T…) whose requests are
	// taken: an app installed in several workspaces signs all their requests
	// with the same secret.
	TeamID string
	// Apps says who may act on which app; AnyApp ("*") applies to apps without
	// their own entry. An app with neither is refused.
	Apps map[string]AppConfig
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Window is how far a request's timestamp may be from Now, either way
	// (default and at most 5m; replays are remembered that long).
	Window time.Duration
	// MaxBody bounds a request's body (default 64 KiB).
	MaxBody int64
	// ReplayCacheSize bounds the signatures remembered (default 10000). When
	// it is full of unexpired ones, requests are refused with 503 rather than
	// forgetting one.
	ReplayCacheSize int
	// GroupCacheTTL is how long a user group's members are kept (default 1m).
	GroupCacheTTL time.Duration
	// AckTimeout is how long a request waits for the release's answer before
	// it is acknowledged and the answer follows through the response_url
	// (default 2.5s: Slack gives up on an answer after 3s).
	AckTimeout time.Duration
	// DecideTimeout bounds the work behind one request (default 1m).
	DecideTimeout time.Duration
	// HTTPClient posts to response_urls (default: a client with a 10s timeout).
	HTTPClient *http.Client
	// AllowResponseURL says whether a response_url may be posted to (default:
	// https on hooks.slack.com, *.slack.com or hooks.slack-gov.com). The URL
	// comes from a signed request; this is a second line.
	AllowResponseURL func(*url.URL) bool
}

// AppConfig says where and by whom an app's releases may be decided.
type AppConfig struct {
	// Channel, when set, is the only channel where decisions on the app are
	// taken (status is answered anywhere).
	Channel string `yaml:"channel"`
	// Approvers are Slack user IDs (U… or W…).
	Approvers []string `yaml:"approvers"`
	// Groups are Slack user group IDs (S…); their members may act.
	Groups []string `yaml:"groups"`
}

// fileConfig is the file LoadConfig reads.
type fileConfig struct {
	SigningSecret *secretRef           `yaml:"signingSecret"`
	BotToken      *secretRef           `yaml:"botToken"`
	GroupCacheTTL string               `yaml:"groupCacheTTL"`
	TeamID        string               `yaml:"teamID"`
	Apps          map[string]AppConfig `yaml:"apps"`
}

type secretRef struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// Environment variables LoadConfig reads the secrets from when the file names
// none.
const (
	EnvSigningSecret = "SLACK_SIGNING_SECRET"
	EnvBotToken      = "SLACK_BOT_TOKEN"
)

// EnvConfig is the environment variable `cutover serve` reads the
// configuration file's path from (the flag is --chatops-config).
const EnvConfig = "CUTOVER_CHATOPS_CONFIG"

var (
	reApp     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	reUser    = regexp.MustCompile(`^[UW][A-Z0-9]{1,32}$`) // bounded: it goes into Decision.By and the reason of a button's abort
	reGroup   = regexp.MustCompile(`^S[A-Z0-9]+$`)
	reChannel = regexp.MustCompile(`^[CGD][A-Z0-9]+$`)
	reTeam    = regexp.MustCompile(`^[TE][A-Z0-9]+$`)
)

// LoadConfig reads the chatops configuration file (YAML):
//
//	signingSecret: {env: SLACK_SIGNING_SECRET}   # default; or {file: /run/secrets/slack-signing}
//	botToken: {env: SLACK_BOT_TOKEN}             # default; needed for groups
//	groupCacheTTL: 1m                            # default
//	teamID: T0123                                # optional: the only workspace taken
//	apps:
//	  shop: {channel: C123, approvers: [U111, U222], groups: [S333]}
//	  "*": {approvers: [U999]}
//
// The secrets are read now; the file never holds them. Unknown keys are
// errors.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("chatops config: %w", err)
	}
	var f fileConfig
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("chatops config %s: %w", path, err)
	}
	cfg.Apps, cfg.TeamID = f.Apps, f.TeamID
	if cfg.TeamID != "" && !reTeam.MatchString(cfg.TeamID) {
		return cfg, fmt.Errorf("chatops config %s: teamID %q is not a workspace ID (T…)", path, cfg.TeamID)
	}
	if f.GroupCacheTTL != "" {
		if cfg.GroupCacheTTL, err = time.ParseDuration(f.GroupCacheTTL); err != nil || cfg.GroupCacheTTL < 0 {
			return cfg, fmt.Errorf("chatops config %s: groupCacheTTL %q is not a duration", path, f.GroupCacheTTL)
		}
	}
	if err := checkApps(cfg.Apps); err != nil {
		return cfg, fmt.Errorf("chatops config %s: %w", path, err)
	}
	sref := providers.SecretRef{Env: EnvSigningSecret}
	if f.SigningSecret != nil {
		sref = providers.SecretRef(*f.SigningSecret)
	}
	if cfg.SigningSecret, err = sref.Resolve(); err != nil {
		return cfg, fmt.Errorf("chatops config %s: signingSecret: %w", path, err)
	}
	tref := providers.SecretRef{Env: EnvBotToken}
	if f.BotToken != nil {
		tref = providers.SecretRef(*f.BotToken)
	}
	if cfg.BotToken, err = tref.Resolve(); err != nil {
		// The token is optional unless groups are used, or the file names one.
		if f.BotToken != nil || usesGroups(cfg.Apps) {
			return cfg, fmt.Errorf("chatops config %s: botToken: %w", path, err)
		}
		cfg.BotToken = ""
	}
	return cfg, nil
}

func usesGroups(apps map[string]AppConfig) bool {
	for _, a := range apps {
		if len(a.Groups) > 0 {
			return true
		}
	}
	return false
}

// checkApps checks the allow-lists; every problem is listed.
func checkApps(apps map[string]AppConfig) error {
	var probs []string
	names := make([]string, 0, len(apps))
	for n := range apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		a := apps[name]
		if name != AnyApp && !reApp.MatchString(name) {
			probs = append(probs, fmt.Sprintf("apps: %q is not an app name (or %q)", name, AnyApp))
		}
		if a.Channel != "" && !reChannel.MatchString(a.Channel) {
			probs = append(probs, fmt.Sprintf("apps.%s.channel: %q is not a channel ID (C…)", name, a.Channel))
		}
		for _, u := range a.Approvers {
			if !reUser.MatchString(u) {
				probs = append(probs, fmt.Sprintf("apps.%s.approvers: %q is not a user ID (U…)", name, u))
			}
		}
		for _, g := range a.Groups {
			if !reGroup.MatchString(g) {
				probs = append(probs, fmt.Sprintf("apps.%s.groups: %q is not a user group ID (S…)", name, g))
			}
		}
	}
	if len(probs) > 0 {
		return errors.New(strings.Join(probs, "; "))
	}
	return nil
}
