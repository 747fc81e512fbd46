package tests

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/cutoverhq/cutover/tests/harness"
)

// The compose file's two Temporal jobs, run without Docker: the schema job's
// script with bin/temporal-sql-tool against fresh databases on the local
// PostgreSQL, the server (bin/temporal-server, the image's version) on them,
// then the namespace job's script with the Temporal CLI. Each job runs twice,
// as every `docker compose up` runs it again.
func TestComposeTemporalJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	root := composeRepoRoot(t)
	project, err := loadCompose(t, root, filepath.Join(root, "docker-compose.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, sqlTool := harness.ServerBinaries(t)
	// The jobs call the programs by name, as the admin-tools image has them.
	tools := t.TempDir()
	for name, bin := range map[string]string{"temporal-sql-tool": sqlTool, "temporal": harness.TemporalCLI(t)} {
		if err := os.Symlink(bin, filepath.Join(tools, name)); err != nil {
			t.Fatal(err)
		}
	}
	path := "PATH=" + tools + string(os.PathListSeparator) + os.Getenv("PATH")

	store, visibility := harness.PostgresDB(t), harness.PostgresDB(t)
	u, err := url.Parse(store)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	runJob(t, project.Services["temporal-schema"].Entrypoint, project.Services["temporal-schema"].Command,
		jobEnv(project.Services["temporal-schema"].Environment, path,
			"SQL_HOST="+u.Hostname(), "SQL_PORT="+u.Port(), "SQL_USER="+u.User.Username(), "SQL_PASSWORD="+pw,
			"DBNAME="+dbName(t, store), "VISIBILITY_DBNAME="+dbName(t, visibility)))

	tc := harness.StartTemporalCluster(t, harness.ClusterOptions{Databases: []string{store, visibility}, NoNamespace: true})
	setup := project.Services["temporal-setup"]
	runJob(t, setup.Entrypoint, setup.Command, jobEnv(setup.Environment, path, "TEMPORAL_ADDRESS="+tc.Address))

	ctx := context.Background()
	cl := tc.Client(t)
	sas, err := cl.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatalf("list search attributes: %v", err)
	}
	for _, sa := range harness.SearchAttributes {
		name, typ, _ := strings.Cut(sa, "=")
		if got := sas.CustomAttributes[name].String(); !strings.EqualFold(strings.TrimPrefix(got, "INDEXED_VALUE_TYPE_"), typ) {
			t.Errorf("search attribute %s is %q, want %s", name, got, typ)
		}
	}
	// A new search attribute reaches the frontend's namespace cache seconds
	// after it is created (harness.StartTemporalCluster waits the same way).
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: `CutoverApp="shop" AND CutoverOutcome="promoted"`})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list query by Cutover's search attributes, 30s after the setup job: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// runJob runs a compose job's entrypoint and command twice; both must succeed.
func runJob(t *testing.T, entrypoint, command []string, env []string) {
	t.Helper()
	args := append(append([]string{}, entrypoint...), command...)
	for i := range 2 {
		start := time.Now()
		out, errOut, code := harness.Run(t, 3*time.Minute, env, args[0], args[1:]...)
		if code != 0 {
			t.Fatalf("run %d of %s: exit %d\n%s\n%s", i+1, strings.Join(args, " "), code, out, errOut)
		}
		t.Logf("run %d took %s", i+1, time.Since(start).Round(10*time.Millisecond))
	}
}

// jobEnv is the service's environment with the test's overrides after it.
func jobEnv(service map[string]*string, overrides ...string) []string {
	var env []string
	for k, v := range service {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	return append(env, overrides...)
}

func dbName(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}
