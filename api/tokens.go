package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Scopes a token may hold.
const (
	// ScopeStart starts releases (POST /v1/releases).
	ScopeStart = "release:start"
	// ScopeApprove sends decisions: approve, abort, pause, resume, rollback.
	ScopeApprove = "release:approve"
	// ScopeRead reads status, lists releases and follows their events.
	ScopeRead = "release:read"
)

// Scopes is every scope, in the order the docs list them.
var Scopes = []string{ScopeStart, ScopeApprove, ScopeRead}

// Token is one API token as the tokens file configures it: never the token
// itself, only the hex SHA-256 of it.
type Token struct {
	// Name says who holds the token (ci, release-bot); it is logged and is who
	// acted when a request does not say.
	Name string `yaml:"name" json:"name"`
	// SHA256 is the hex SHA-256 of the token (cutover serve --print-token-hash).
	SHA256 string `yaml:"sha256" json:"sha256"`
	// Scopes are what the token may do.
	Scopes []string `yaml:"scopes" json:"scopes"`
}

// tokenName is what a token may be called: it ends up in logs and in who
// decided.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// HashToken returns the hex SHA-256 of a token, as the tokens file holds it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ReadToken reads a token from r for --print-token-hash: the first line,
// without surrounding white space.
func ReadToken(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", errors.New("no token on standard input")
	}
	if strings.ContainsFunc(tok, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		return "", errors.New("a token is printable ASCII without spaces")
	}
	return tok, nil
}

// LoadTokens reads a tokens file (YAML or JSON):
//
//	tokens:
//	  - {name: ci, sha256: <hex>, scopes: [release:start, release:read]}
func LoadTokens(path string) ([]Token, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read the tokens file %s: %w", path, err)
	}
	toks, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return toks, nil
}

// ParseTokens reads a tokens file's content strictly and checks every token.
func ParseTokens(data []byte) ([]Token, error) {
	var f struct {
		Tokens []Token `yaml:"tokens"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty; write tokens: [{name, sha256, scopes}]")
		}
		return nil, err
	}
	if err := checkTokens(f.Tokens); err != nil {
		return nil, err
	}
	return f.Tokens, nil
}

func checkTokens(toks []Token) error {
	if len(toks) == 0 {
		return errors.New("no tokens; write tokens: [{name, sha256, scopes}]")
	}
	var problems []string
	names, hashes := map[string]bool{}, map[string]bool{}
	for i, t := range toks {
		at := fmt.Sprintf("tokens[%d]", i)
		switch {
		case !tokenName.MatchString(t.Name):
			problems = append(problems, fmt.Sprintf("%s.name: %q is not a token name (letters, digits, '.', '_', '-'; at most 64)", at, t.Name))
		case names[t.Name]:
			problems = append(problems, fmt.Sprintf("%s.name: %q is configured twice", at, t.Name))
		}
		names[t.Name] = true
		h := strings.ToLower(t.SHA256)
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			problems = append(problems, fmt.Sprintf("%s.sha256: not 64 hex digits (cutover serve --print-token-hash prints it)", at))
		} else if hashes[h] {
			problems = append(problems, fmt.Sprintf("%s.sha256: the same token as another entry", at))
		}
		hashes[h] = true
		if len(t.Scopes) == 0 {
			problems = append(problems, fmt.Sprintf("%s.scopes: required (%s)", at, strings.Join(Scopes, ", ")))
		}
		for j, s := range t.Scopes {
			if !slices.Contains(Scopes, s) {
				problems = append(problems, fmt.Sprintf("%s.scopes[%d]: unknown scope %q (known: %s)", at, j, s, strings.Join(Scopes, ", ")))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// keyring checks presented tokens against the configured hashes.
type keyring struct {
	hashes [][sha256.Size]byte
	tokens []Token
}

func newKeyring(toks []Token) (*keyring, error) {
	if err := checkTokens(toks); err != nil {
		return nil, err
	}
	k := &keyring{tokens: slices.Clone(toks)}
	for _, t := range toks {
		var h [sha256.Size]byte
		_, _ = hex.Decode(h[:], []byte(strings.ToLower(t.SHA256))) // checked above
		k.hashes = append(k.hashes, h)
	}
	return k, nil
}

// lookup returns the token whose hash is the presented token's, comparing in
// constant time against every configured hash (no early exit), so that neither
// the length nor the content of a guess shows in the timing.
func (k *keyring) lookup(presented string) (Token, bool) {
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range k.hashes {
		if subtle.ConstantTimeCompare(sum[:], k.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return k.tokens[found], true
}

func (t Token) has(scope string) bool { return slices.Contains(t.Scopes, scope) }
