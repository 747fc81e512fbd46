package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

// A Temporal cluster as production runs it: the server built from
// go.temporal.io/server (bin/temporal-server, the version the pinned CLI
// embeds) with PostgreSQL persistence and SQL visibility, one or more server
// processes sharing the databases and finding each other through them.

// ClusterOptions shape a Temporal cluster.
type ClusterOptions struct {
	// Nodes is how many server processes form the cluster (default 1).
	Nodes int
	// PostgresURL is the admin URL of the PostgreSQL server that holds the
	// cluster's two databases (default: the machine's server, as PostgresDB
	// finds it). A test that restarts PostgreSQL passes a private server's.
	PostgresURL string
	// Databases, when set, are the persistence and visibility databases'
	// URLs, their schema already installed; PostgresURL is then unused.
	Databases []string
	// NoNamespace leaves the namespace and search attributes to the test.
	NoNamespace bool
}

// TemporalCluster is a running cluster. Address is its front door: a TCP
// proxy on loopback that forwards each connection to the first node that
// accepts it, as a load balancer in front of the frontends does, so that
// clients ride out the loss of a node.
type TemporalCluster struct {
	Address string
	CLI     string // the Temporal CLI, for `temporal workflow list` and such
	Nodes   []*TemporalNode

	t      testing.TB
	server string
	// membership is every membership port the cluster has handed out.
	membership map[int]bool
}

// TemporalNode is one server process of the cluster.
type TemporalNode struct {
	Frontend string // the node's own frontend address
	Proc     *Proc
	root     string
	c        *TemporalCluster
	i        int
	// configure writes the node's config on fresh ports and sets Frontend.
	configure func()
}

// ServerBinaries returns bin/temporal-server and bin/temporal-sql-tool (or
// TEMPORAL_SERVER_BIN and TEMPORAL_SQL_TOOL_BIN), which `make` builds from
// tools/go.mod. They are not built here: the server takes minutes to build.
func ServerBinaries(t testing.TB) (server, sqlTool string) {
	t.Helper()
	find := func(env, name string) string {
		p := os.Getenv(env)
		if p == "" {
			p = filepath.Join(RepoRoot(t), "bin", name)
		}
		if _, err := os.Stat(p); err != nil {
			Missing(t, "the Temporal server ("+p+")", "run `make temporal-server`, or set "+env)
		}
		return p
	}
	return find("TEMPORAL_SERVER_BIN", "temporal-server"), find("TEMPORAL_SQL_TOOL_BIN", "temporal-sql-tool")
}

// StartTemporalCluster creates a fresh pair of databases (persistence and
// visibility, dropped when the test ends), installs Temporal's schema in them,
// starts the nodes and the front door, and creates the default namespace with
// Cutover's search attributes. Every process is stopped when the test ends.
func StartTemporalCluster(t testing.TB, opts ClusterOptions) *TemporalCluster {
	t.Helper()
	server, sqlTool := ServerBinaries(t)
	if opts.Nodes < 1 {
		opts.Nodes = 1
	}
	var store, visibility string
	start := time.Now()
	switch {
	case len(opts.Databases) == 2:
		store, visibility = opts.Databases[0], opts.Databases[1]
	case opts.PostgresURL == "":
		store, visibility = PostgresDB(t), PostgresDB(t)
	default:
		store, visibility = NewDatabase(t, opts.PostgresURL), NewDatabase(t, opts.PostgresURL)
	}
	if len(opts.Databases) == 0 {
		for db, schema := range map[string]string{store: "temporal", visibility: "visibility"} {
			setupSchema(t, sqlTool, db, "postgresql/v12/"+schema)
		}
	}

	c := &TemporalCluster{CLI: TemporalCLI(t), t: t, server: server, membership: map[int]bool{}}
	c.Address = startFrontDoor(t, c.frontends)
	for i := range opts.Nodes {
		n := &TemporalNode{root: t.TempDir(), c: c, i: i}
		n.configure = func() {
			n.Frontend = writeServerConfig(t, n.root, store, visibility, c.Address, c.membership)
		}
		n.configure()
		c.Nodes = append(c.Nodes, n)
	}
	schemaDone := time.Now()
	for _, n := range c.Nodes {
		n.Start(t)
	}
	serving := time.Now()
	if !opts.NoNamespace {
		c.setupNamespace()
	}
	t.Logf("temporal cluster of %d nodes at %s: schema %s, SERVING %s, namespace and search attributes %s",
		len(c.Nodes), c.Address, schemaDone.Sub(start).Round(time.Millisecond),
		serving.Sub(schemaDone).Round(time.Millisecond), time.Since(serving).Round(time.Millisecond))
	return c
}

// frontends lists the nodes' frontends, the front door's backends.
func (c *TemporalCluster) frontends() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Frontend)
	}
	return out
}

// Env is the environment that points Cutover's binaries at the cluster's
// front door.
func (c *TemporalCluster) Env(taskQueue string) []string {
	return []string{"TEMPORAL_ADDRESS=" + c.Address, "TEMPORAL_NAMESPACE=default", "CUTOVER_TASK_QUEUE=" + taskQueue, "CUTOVER_DEV=true"}
}

// Client returns a Go client of the cluster, closed when the test ends.
func (c *TemporalCluster) Client(t testing.TB) client.Client {
	t.Helper()
	cl, err := client.Dial(client.Options{HostPort: c.Address})
	if err != nil {
		t.Fatalf("dial %s: %v", c.Address, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Start starts the node's server process (again, after Kill) and waits until
// its frontend is SERVING; t is the (sub)test that fails if it does not. The
// process belongs to the cluster's test, which stops it at its end.
//
// A port checked free when the config was written may be taken by the time
// the server binds it (membership ports come from a range other processes
// also pick from): then the node gets fresh ports and starts again.
func (n *TemporalNode) Start(t testing.TB) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		n.Proc = Start(n.c.t, fmt.Sprintf("temporal-server %d", n.i), nil, n.c.server,
			"--root", n.root, "--config", "config", "--env", "development", "--allow-no-auth", "start")
		err := waitServing(n.Frontend, n.Proc, 90*time.Second)
		if err == nil {
			return
		}
		if attempt < 3 && n.Proc.Exited() && strings.Contains(n.Proc.Output(), "address already in use") {
			t.Logf("temporal-server %d: a port was taken before it bound it; starting it on fresh ports", n.i)
			n.configure()
			continue
		}
		t.Fatalf("temporal-server %d did not become SERVING: %v\n%s", n.i, err, n.Proc.Output())
	}
}

// Kill SIGKILLs the node's server process, as a crash would.
func (n *TemporalNode) Kill() { n.Proc.Kill() }

func waitServing(addr string, p *Proc, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := client.Dial(client.Options{HostPort: addr})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			cancel()
			c.Close()
			if err == nil {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("it exited: %v", err)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// setupSchema installs Temporal's embedded schema (persistence or visibility)
// in a database, as temporal-sql-tool does in production.
func setupSchema(t testing.TB, sqlTool, dbURL, schema string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	base := []string{"--plugin", "postgres12", "--ep", u.Hostname(), "-p", u.Port(), "-u", u.User.Username(), "--pw", pw,
		"--db", strings.TrimPrefix(u.Path, "/")}
	for _, args := range [][]string{{"setup-schema", "-v", "0.0"}, {"update-schema", "-s", schema}} {
		out, errOut, code := Run(t, 2*time.Minute, nil, sqlTool, append(append([]string{}, base...), args...)...)
		if code != 0 {
			t.Fatalf("temporal-sql-tool %s (%s): exit %d\n%s%s", args[0], schema, code, out, errOut)
		}
	}
}

// serverConfig is the config of one node: the development-postgres12 config
// of go.temporal.io/server with the test's databases and free loopback ports.
// Archival and metrics are left out; the front door is the cluster's public
// address.
var serverConfig = template.Must(template.New("development.yaml").Parse(`log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
{{- range $name, $db := .Stores}}
    {{$name}}:
      sql:
        pluginName: postgres12
        databaseName: {{printf "%q" $db.Name}}
        connectAddr: {{printf "%q" $db.Addr}}
        connectProtocol: tcp
        user: {{printf "%q" $db.User}}
        password: {{printf "%q" $db.Password}}
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
{{- end}}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
services:
{{- range $name, $p := .Services}}
  {{$name}}:
    rpc:
      grpcPort: {{$p.GRPC}}
      membershipPort: {{$p.Membership}}
      bindOnLocalHost: true
{{- if $p.HTTP}}
      httpPort: {{$p.HTTP}}
{{- end}}
{{- end}}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: {{printf "%q" .Public}}
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: {{printf "%q" .DynamicConfig}}
  pollInterval: 10s
`))

// dynamicConfig is development-sql.yaml's setting that Cutover needs: its
// workflow IDs name the app and version.
const dynamicConfig = `limit.maxIDLength:
  - value: 255
    constraints: {}
`

type dbConfig struct{ Name, Addr, User, Password string }

type servicePorts struct{ GRPC, Membership, HTTP int }

// writeServerConfig writes root/config/{development,dynamicconfig}.yaml for a
// node and returns its frontend address.
func writeServerConfig(t testing.TB, root, store, visibility, public string, taken map[int]bool) string {
	t.Helper()
	db := func(raw string) dbConfig {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		pw, _ := u.User.Password()
		return dbConfig{Name: strings.TrimPrefix(u.Path, "/"), Addr: u.Host, User: u.User.Username(), Password: pw}
	}
	services := map[string]servicePorts{}
	for _, s := range []string{"frontend", "history", "matching", "worker"} {
		p := servicePorts{GRPC: FreePort(t), Membership: membershipPort(t, taken)}
		if s == "frontend" {
			p.HTTP = FreePort(t)
		}
		services[s] = p
	}
	dir := filepath.Join(root, "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "development.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = serverConfig.Execute(f, map[string]any{
		"Stores":   map[string]dbConfig{"postgres-default": db(store), "postgres-visibility": db(visibility)},
		"Services": services,
		"Public":   public,
		// The server reads this path from its working directory, not --root.
		"DynamicConfig": filepath.Join(dir, "dynamicconfig.yaml"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dynamicconfig.yaml"), []byte(dynamicConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", services["frontend"].GRPC)
}

// membershipPort returns a free loopback port below 32768: the membership
// table stores ports as a smallint, and the kernel's ephemeral ports, which
// FreePort gets, start above it. taken holds the ports the cluster has handed
// out already: a port is free again once the check closes it.
func membershipPort(t testing.TB, taken map[int]bool) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if taken[port] {
			continue
		}
		taken[port] = true
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free loopback port below 32768")
	return 0
}

// setupNamespace creates the default namespace and Cutover's search
// attributes, then waits until every node knows them: a new namespace reaches
// a frontend's cache a few seconds later.
func (c *TemporalCluster) setupNamespace() {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := c.Client(t)
	_, err := cl.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: "default", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		t.Fatalf("create the default namespace: %v", err)
	}
	want := map[string]enumspb.IndexedValueType{}
	for _, sa := range SearchAttributes {
		name, typ, _ := strings.Cut(sa, "=")
		want[name] = enumspb.IndexedValueType(enumspb.IndexedValueType_value["INDEXED_VALUE_TYPE_"+strings.ToUpper(typ)])
	}
	for {
		_, err = cl.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: "default", SearchAttributes: want})
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond) // the namespace is not in the cache yet
	}
	if err != nil {
		t.Fatalf("add Cutover's search attributes: %v", err)
	}
	for _, n := range c.Nodes {
		for {
			nc, err := client.Dial(client.Options{HostPort: n.Frontend})
			if err == nil {
				_, err = nc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: `CutoverApp = "none"`})
				nc.Close()
			}
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %s does not list by CutoverApp: %v", n.Frontend, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// startFrontDoor listens on a free loopback port and forwards each connection
// to the first backend that accepts it, starting from the next one in turn so
// that connections spread over the nodes. It is closed when the test ends.
func startFrontDoor(t testing.TB, backends func() []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		next  int
	)
	track := func(c net.Conn, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			first := next
			next++
			mu.Unlock()
			wg.Go(func() {
				defer in.Close()
				out := dialFirst(backends(), first)
				if out == nil {
					return
				}
				defer out.Close()
				track(in, true)
				track(out, true)
				defer track(in, false)
				defer track(out, false)
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done // either side closing ends the pair, as a node's death must
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dialFirst(backends []string, first int) net.Conn {
	for i := range backends {
		addr := backends[(first+i)%len(backends)]
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			return c
		}
	}
	return nil
}
