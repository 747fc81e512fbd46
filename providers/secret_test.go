package providers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretRefResolves(t *testing.T) {
	t.Setenv("CUTOVER_TEST_TOKEN", "s3cret")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ref  SecretRef
		want string
	}{
		{SecretRef{Env: "CUTOVER_TEST_TOKEN"}, "s3cret"},
		{SecretRef{File: file}, "from-file"},
	} {
		got, err := c.ref.Resolve()
		if err != nil || got != c.want {
			t.Errorf("%+v: %q, %v; want %q", c.ref, got, err, c.want)
		}
	}
}

func TestSecretRefErrorsNameTheSourceNeverTheValue(t *testing.T) {
	t.Setenv("CUTOVER_EMPTY", "")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ref  SecretRef
		want string
	}{
		{SecretRef{}, "needs env"},
		{SecretRef{Env: "A", File: "/b"}, "not both"},
		{SecretRef{Env: "A=B"}, "not a variable name"},
		{SecretRef{Env: "CUTOVER_UNSET_VARIABLE"}, "CUTOVER_UNSET_VARIABLE is not set"},
		{SecretRef{Env: "CUTOVER_EMPTY"}, "CUTOVER_EMPTY is not set"},
		{SecretRef{File: "/nonexistent/token"}, "/nonexistent/token: no such file"},
		{SecretRef{File: empty}, "is empty"},
	} {
		_, err := c.ref.Resolve()
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: %v; want a bad-config error containing %q", c.ref, err, c.want)
		}
	}
}
