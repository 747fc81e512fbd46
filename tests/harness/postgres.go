package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL for tests. PostgresDB gives each test its own database on the
// machine's server (CUTOVER_TEST_POSTGRES_URL, by default
// postgres://postgres@127.0.0.1:5432/postgres) and drops it afterwards.
// StartPostgres runs a private, throwaway server for tests that stop and start
// it, so that they never disturb the shared one.

// DefaultPostgresURL is the machine's server as the dev machines and CI have it.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var startSharedOnce sync.Once

// PostgresDB creates an empty database for the test and returns its URL; the
// database is dropped, with any connections left to it, when the test ends.
func PostgresDB(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("CUTOVER_TEST_POSTGRES_URL")
	if admin == "" {
		admin = DefaultPostgresURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil && os.Getenv("CUTOVER_TEST_POSTGRES_URL") == "" {
		// The machine's server may just be stopped: start it once, as the
		// machine's own start command does.
		startSharedOnce.Do(startSharedPostgres)
		conn, err = pgx.Connect(ctx, admin)
	}
	if err != nil {
		Missing(t, "PostgreSQL at "+redact(admin), fmt.Sprintf("start it, or set CUTOVER_TEST_POSTGRES_URL (%v)", err))
	}
	conn.Close(ctx)
	return NewDatabase(t, admin)
}

// NewDatabase creates an empty database on the server of the admin URL and
// returns its URL; it is dropped, with any connections left to it, when the
// test ends.
func NewDatabase(t testing.TB, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(admin), err)
	}
	defer conn.Close(ctx)

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "cutover_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func startSharedPostgres() {
	versions, _ := filepath.Glob("/etc/postgresql/*")
	if len(versions) == 0 {
		return
	}
	cmd := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", filepath.Base(versions[0]), "main", "start")
	_ = cmd.Run()
	time.Sleep(time.Second)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a bad URL)"
	}
	return u.Redacted()
}

// PGServer is a throwaway PostgreSQL cluster on a free loopback port.
type PGServer struct {
	t       testing.TB
	bin     string
	dataDir string
	port    int
	mu      sync.Mutex
	running bool
}

// StartPostgres initialises a new cluster in a temporary directory (initdb) and
// starts it (pg_ctl) on a free loopback port; it is stopped and removed when the
// test ends. As root, it runs the server as the postgres user.
func StartPostgres(t testing.TB) *PGServer {
	t.Helper()
	bin := postgresBinDir()
	if bin == "" {
		Missing(t, "PostgreSQL's initdb and pg_ctl", "apt-get install -y postgresql")
	}
	dir, err := os.MkdirTemp("", "cutover-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		// initdb refuses to run as root; the server's files belong to postgres.
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", dir, err, out)
		}
	}
	s := &PGServer{t: t, bin: bin, dataDir: filepath.Join(dir, "data"), port: FreePort(t)}
	if out, err := s.pgCommand("initdb", "-D", s.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's postgres database.
func (s *PGServer) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Start starts the server (again) and waits until it accepts connections.
func (s *PGServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off", s.port, filepath.Dir(s.dataDir))
	if out, err := s.pgCommand("pg_ctl", "-D", s.dataDir, "-o", opts, "-l", filepath.Join(filepath.Dir(s.dataDir), "server.log"), "-w", "-t", "30", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(s.dataDir), "server.log"))
		s.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	s.running = true
}

// Stop stops the server at once (fast shutdown: connections are cut); it is a
// no-op when it is not running.
func (s *PGServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	if out, err := s.pgCommand("pg_ctl", "-D", s.dataDir, "-m", "fast", "-w", "-t", "30", "stop").CombinedOutput(); err != nil {
		s.t.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	s.running = false
}

func (s *PGServer) pgCommand(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// postgresBinDir finds the newest /usr/lib/postgresql/N/bin holding initdb.
func postgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func versionOf(binDir string) int {
	var v int
	fmt.Sscanf(strings.TrimPrefix(binDir, "/usr/lib/postgresql/"), "%d", &v)
	return v
}
