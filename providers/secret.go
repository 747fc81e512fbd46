package providers

import (
	"errors"
	"os"
	"strings"
)

// SecretRef is how a provider's settings name a secret (a token, a database
// URL): by the environment variable or the file that holds it on the worker.
// The secret itself is never in release.yaml, the workflow input or the history;
// only the worker that needs it reads it, when it needs it.
type SecretRef struct {
	// Env names an environment variable of the worker.
	Env string `json:"env,omitempty"`
	// File names a file on the worker (a mounted Kubernetes or Docker secret).
	File string `json:"file,omitempty"`
}

// Check says what is wrong with the reference itself, without reading the secret.
func (s SecretRef) Check() error {
	switch {
	case s.Env == "" && s.File == "":
		return BadConfig("a secret needs env (a variable name) or file (a path)")
	case s.Env != "" && s.File != "":
		return BadConfig("a secret takes env or file, not both")
	case strings.ContainsAny(s.Env, "= \t\n"):
		return BadConfig("secret env %q is not a variable name", s.Env)
	}
	return nil
}

// Resolve reads the secret. Errors name the variable or file, never the value.
func (s SecretRef) Resolve() (string, error) {
	if err := s.Check(); err != nil {
		return "", err
	}
	if s.Env != "" {
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", BadConfig("secret variable %s is not set on this worker", s.Env)
		}
		return v, nil
	}
	b, err := os.ReadFile(s.File)
	if err != nil {
		return "", BadConfig("read secret file %s: %v", s.File, errNoValue(err))
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", BadConfig("secret file %s is empty", s.File)
	}
	return v, nil
}

// errNoValue keeps only the cause of a file error (its path is named already).
func errNoValue(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
