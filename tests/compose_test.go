package tests

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// composeRepoRoot is the repository root: the parent of this file's directory.
func composeRepoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate compose_test.go")
	}
	return filepath.Dir(filepath.Dir(file))
}

// loadCompose loads a compose file the way `docker compose config` would, but
// offline: no Docker engine, no remote resources (compose-go's loader package has
// no remote resource loaders unless given some), and an explicit, empty
// environment instead of the host's, so `${VAR:-default}` resolves to its default
// and the result does not depend on who runs the test. When content is nil the
// file is read from disk.
func loadCompose(t *testing.T, workingDir, filename string, content []byte) (*types.Project, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	details := types.ConfigDetails{
		WorkingDir:  workingDir,
		ConfigFiles: []types.ConfigFile{{Filename: filename, Content: content}},
		Environment: types.Mapping{},
	}
	return loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName("cutover-test", true)
		o.ResourceLoaders = nil
	})
}

func TestComposeRejectsSchemaErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"unknown service key": `
services:
  web:
    image: nginx
    not_a_compose_key: true
`,
		"unknown depends_on condition": `
services:
  db:
    image: postgres:16
  web:
    image: nginx
    depends_on:
      db:
        condition: sometimes
`,
		"ports not a list": `
services:
  web:
    image: nginx
    ports: 8080
`,
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := loadCompose(t, dir, filepath.Join(dir, "compose.yaml"), []byte(text))
			if err == nil {
				t.Fatalf("loading a compose file with a schema error succeeded:\n%s", text)
			}
			t.Logf("rejected as expected: %v", err)
		})
	}

	// The same loader accepts a valid file, so the errors above are the schema's.
	if _, err := loadCompose(t, dir, filepath.Join(dir, "compose.yaml"), []byte("services:\n  web:\n    image: nginx\n")); err != nil {
		t.Fatalf("loading a valid compose file: %v", err)
	}
}

func TestComposeFile(t *testing.T) {
	root := composeRepoRoot(t)
	composePath := filepath.Join(root, "docker-compose.yml")
	project, err := loadCompose(t, root, composePath, nil)
	if err != nil {
		t.Fatalf("loading %s: %v", composePath, err)
	}

	for _, name := range []string{"postgresql", "temporal-schema", "temporal", "temporal-setup", "temporal-ui", "prometheus", "cutover-worker"} {
		if _, ok := project.Services[name]; !ok {
			t.Errorf("service %q missing; have %v", name, project.ServiceNames())
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("cutover-worker", func(t *testing.T) {
		worker := project.Services["cutover-worker"]
		if worker.Deploy == nil || worker.Deploy.Replicas == nil {
			t.Errorf("cutover-worker sets no deploy.replicas")
		} else if n := *worker.Deploy.Replicas; n < 2 {
			t.Errorf("cutover-worker has %d replicas, want at least 2", n)
		}
		if addr := worker.Environment["TEMPORAL_ADDRESS"]; addr == nil || *addr == "" {
			t.Errorf("cutover-worker has no TEMPORAL_ADDRESS")
		} else if !strings.HasPrefix(*addr, "temporal:") {
			t.Errorf("cutover-worker TEMPORAL_ADDRESS = %q, want the temporal service", *addr)
		}
		if len(worker.Ports) > 0 {
			t.Errorf("cutover-worker publishes host ports %v: its replicas would collide", worker.Ports)
		}
		if worker.ContainerName != "" {
			t.Errorf("cutover-worker sets container_name %q, which forbids replicas", worker.ContainerName)
		}
		if worker.HealthCheck == nil || len(worker.HealthCheck.Test) == 0 || worker.HealthCheck.Disable {
			t.Errorf("cutover-worker has no healthcheck")
		}
		if _, ok := worker.DependsOn["temporal"]; !ok {
			t.Errorf("cutover-worker does not depend on temporal")
		}
		if dep := worker.DependsOn["temporal-setup"]; dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("cutover-worker waits for temporal-setup to be %q, want %q (the namespace exists)", dep.Condition, types.ServiceConditionCompletedSuccessfully)
		}

		// The Dockerfile it builds from exists (paths are resolved against the
		// project directory by the loader).
		if worker.Build == nil {
			t.Fatalf("cutover-worker has no build section")
		}
		dockerfile := worker.Build.Dockerfile
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(worker.Build.Context, dockerfile)
		}
		if st, err := os.Stat(dockerfile); err != nil {
			t.Errorf("cutover-worker Dockerfile: %v", err)
		} else if st.IsDir() {
			t.Errorf("cutover-worker Dockerfile %s is a directory", dockerfile)
		}
	})

	t.Run("temporal", func(t *testing.T) {
		temporal := project.Services["temporal"]
		dep, ok := temporal.DependsOn["postgresql"]
		if !ok {
			t.Fatalf("temporal does not depend on postgresql; depends_on = %v", temporal.DependsOn)
		}
		if dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("temporal waits for postgresql to be %q, want %q", dep.Condition, types.ServiceConditionHealthy)
		}
		if pg := project.Services["postgresql"]; pg.HealthCheck == nil || len(pg.HealthCheck.Test) == 0 {
			t.Errorf("postgresql has no healthcheck, so service_healthy never holds")
		}

		// The shape Temporal recommends now: the server image, started after a
		// schema job of the admin-tools image, and a namespace job after it;
		// no auto-setup. Their version is the server the tests run.
		version := temporalServerVersion(t, root)
		for name, svc := range project.Services {
			if strings.HasPrefix(svc.Image, "temporalio/auto-setup") {
				t.Errorf("service %s uses %s, which Temporal no longer recommends", name, svc.Image)
			}
		}
		for name, image := range map[string]string{
			"temporal": "temporalio/server", "temporal-schema": "temporalio/admin-tools", "temporal-setup": "temporalio/admin-tools",
		} {
			if want := image + ":" + version; project.Services[name].Image != want {
				t.Errorf("%s runs %q, want %q (go.temporal.io/server in tools/go.mod)", name, project.Services[name].Image, want)
			}
		}
		if dep := temporal.DependsOn["temporal-schema"]; dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("temporal waits for temporal-schema to be %q, want %q", dep.Condition, types.ServiceConditionCompletedSuccessfully)
		}
		if dep := project.Services["temporal-schema"].DependsOn["postgresql"]; dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("temporal-schema waits for postgresql to be %q, want %q", dep.Condition, types.ServiceConditionHealthy)
		}
		if temporal.HealthCheck == nil || len(temporal.HealthCheck.Test) == 0 {
			t.Errorf("temporal has no healthcheck, so temporal-setup never starts")
		}
		if dep := project.Services["temporal-setup"].DependsOn["temporal"]; dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("temporal-setup waits for temporal to be %q, want %q", dep.Condition, types.ServiceConditionHealthy)
		}
		for _, job := range []string{"temporal-schema", "temporal-setup"} {
			if r := project.Services[job].Restart; r != "" && r != "no" {
				t.Errorf("%s restarts %q: a one-shot job must not", job, r)
			}
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		prom := project.Services["prometheus"]
		var configPath string
		for _, v := range prom.Volumes {
			if v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Target, "/prometheus.yml") {
				configPath = v.Source
			}
		}
		if configPath == "" {
			t.Fatalf("prometheus mounts no prometheus.yml; volumes = %+v", prom.Volumes)
		}
		if !filepath.IsAbs(configPath) {
			configPath = filepath.Join(root, configPath)
		}
		raw, err := os.ReadFile(configPath)
		if err != nil {
			t.Fatalf("prometheus config: %v", err)
		}
		checkPrometheusConfig(t, raw, project.Services["cutover-worker"])
	})
}

// temporalServerVersion is the version of go.temporal.io/server that
// tools/go.mod pins (the CLI's embedded server, and bin/temporal-server).
func temporalServerVersion(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "tools", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^\s*go\.temporal\.io/server v(\S+)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	t.Fatal("tools/go.mod does not require go.temporal.io/server")
	return ""
}

// prometheusConfig is the part of prometheus.yml this test checks.
type prometheusConfig struct {
	ScrapeConfigs []struct {
		JobName        string `yaml:"job_name"`
		ScrapeInterval string `yaml:"scrape_interval"`
		MetricsPath    string `yaml:"metrics_path"`
		DNSSDConfigs   []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func checkPrometheusConfig(t *testing.T, raw []byte, worker types.ServiceConfig) {
	t.Helper()
	var cfg prometheusConfig
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("prometheus config is not valid YAML: %v", err)
	}

	// The port the workers listen on, from CUTOVER_HTTP_ADDR.
	wantPort := 9464
	if addr := worker.Environment["CUTOVER_HTTP_ADDR"]; addr != nil {
		if i := strings.LastIndex(*addr, ":"); i >= 0 {
			if p, err := strconv.Atoi((*addr)[i+1:]); err == nil {
				wantPort = p
			}
		}
	}

	for _, job := range cfg.ScrapeConfigs {
		for _, sd := range job.DNSSDConfigs {
			for _, name := range sd.Names {
				if name != worker.Name {
					continue
				}
				if sd.Type != "A" {
					t.Errorf("job %q: dns_sd_configs type = %q, want A", job.JobName, sd.Type)
				}
				if sd.Port != wantPort {
					t.Errorf("job %q: dns_sd_configs port = %d, want %d", job.JobName, sd.Port, wantPort)
				}
				if job.MetricsPath != "" && job.MetricsPath != "/metrics" {
					t.Errorf("job %q: metrics_path = %q, want /metrics", job.JobName, job.MetricsPath)
				}
				return
			}
		}
	}
	t.Errorf("no scrape job discovers the %q service through dns_sd_configs", worker.Name)
}
