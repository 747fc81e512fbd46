package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// actionsWorkflow is the part of a GitHub Actions workflow file the test runs.
type actionsWorkflow struct {
	Env  map[string]string
	Jobs map[string]actionsJob
}

type actionsJob struct {
	Needs          stringList
	TimeoutMinutes int `yaml:"timeout-minutes"`
	Environment    string
	Env            map[string]string
	Outputs        map[string]string
	Steps          []actionsStep
}

type actionsStep struct {
	Name, ID, Uses, Run string
	Env                 map[string]string
}

// stringList is a YAML string or list of strings (needs: a, needs: [a, b]).
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = []string{n.Value}
		return nil
	}
	var s []string
	err := n.Decode(&s)
	*l = s
	return err
}

// hostedJobLimit is a GitHub-hosted runner's longest job: 6 hours.
const hostedJobLimit = 360

var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// TestGitHubActionsExample runs deploy/ci/github-actions.yml's jobs in the
// order of their needs, as GitHub would, against a dev server and two
// workers: every shell step with its env (secrets and expressions filled in),
// the step outputs passed on, the GitHub environment's approval taken as
// given. Installing the CLI is the one step left out (it is checked to name
// the cmd/cutover package); the built cutover is on PATH.
func TestGitHubActionsExample(t *testing.T) {
	path := filepath.Join(harness.RepoRoot(t), "deploy", "ci", "github-actions.yml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wf actionsWorkflow
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(wf.Jobs) == 0 {
		t.Fatal("no jobs")
	}
	order := jobOrder(t, wf.Jobs)
	for _, name := range order {
		job := wf.Jobs[name]
		if job.TimeoutMinutes <= 0 || job.TimeoutMinutes > hostedJobLimit {
			t.Errorf("job %s: timeout-minutes %d; want 1..%d (a hosted runner's limit)", name, job.TimeoutMinutes, hostedJobLimit)
		}
		for _, st := range job.Steps {
			if strings.Contains(st.Run, "go install") && !strings.Contains(st.Run, "github.com/cutoverhq/cutover/cmd/cutover@") {
				t.Errorf("job %s installs something else than github.com/cutoverhq/cutover/cmd/cutover: %s", name, st.Run)
			}
		}
	}
	if !slices.ContainsFunc(order, func(n string) bool { return wf.Jobs[n].Environment != "" }) {
		t.Error("no job waits for a GitHub environment's approval")
	}
	if t.Failed() {
		return
	}

	apps := writeApps(t, map[string]string{"shop": fmt.Sprintf(releaseYAML, "shop", "0")})
	c := startCluster(t, "CUTOVER_DEV=false", "CUTOVER_APPS="+apps)
	bin := t.TempDir()
	if err := os.Symlink(c.cli, filepath.Join(bin, "cutover")); err != nil {
		t.Fatal(err)
	}
	address := strings.TrimPrefix(c.env[0], "TEMPORAL_ADDRESS=")
	vals := map[string]string{
		"github.sha":                 "0f3e2a1c9b8d",
		"secrets.TEMPORAL_ADDRESS":   address,
		"secrets.TEMPORAL_NAMESPACE": "default",
		"secrets.TEMPORAL_API_KEY":   "",
	}
	// What a runner has; the task queue is this test's.
	runner := []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"CI=true", "GITHUB_ACTIONS=true", "GITHUB_ACTOR=octocat", "GITHUB_RUN_ID=4242",
		"GITHUB_REPOSITORY=example/shop", "GITHUB_SERVER_URL=https://github.com",
		"CUTOVER_TASK_QUEUE=e2e",
	}
	expand := func(where, s string) string {
		return expression.ReplaceAllStringFunc(s, func(m string) string {
			key := expression.FindStringSubmatch(m)[1]
			v, ok := vals[key]
			if !ok {
				t.Errorf("%s: the test knows no value for ${{ %s }}", where, key)
			}
			return v
		})
	}
	envOf := func(where string, maps ...map[string]string) []string {
		var env []string
		for _, m := range maps {
			for k, v := range m {
				env = append(env, k+"="+expand(where, v))
				vals["env."+k] = expand(where, v)
			}
		}
		return env
	}
	workflowEnv := envOf("env", wf.Env)
	took := map[string]time.Duration{}
	for _, name := range order {
		job := wf.Jobs[name]
		began := time.Now()
		work := t.TempDir()
		runnerTemp := t.TempDir()
		jobEnv := envOf("jobs."+name+".env", job.Env)
		for i, st := range job.Steps {
			where := fmt.Sprintf("jobs.%s.steps[%d] (%s)", name, i, st.Name)
			if st.Uses != "" || strings.Contains(st.Run, "go install") || !strings.Contains(st.Run, "cutover ") {
				continue
			}
			output := filepath.Join(runnerTemp, fmt.Sprintf("output-%d", i))
			script := filepath.Join(runnerTemp, fmt.Sprintf("step-%d.sh", i))
			if err := os.WriteFile(script, []byte(expand(where, st.Run)), 0o600); err != nil {
				t.Fatal(err)
			}
			env := append(append(append(append([]string{}, runner...), workflowEnv...), jobEnv...), envOf(where, st.Env)...)
			env = append(env, "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+filepath.Join(runnerTemp, "summary"),
				"GITHUB_PATH="+filepath.Join(runnerTemp, "path"), "RUNNER_TEMP="+runnerTemp)
			// GitHub's shell for run steps on Linux: bash -e -o pipefail.
			stdout, stderr, code := harness.Run(t, time.Duration(job.TimeoutMinutes)*time.Minute, env, "/bin/sh", "-c",
				fmt.Sprintf("cd %q && exec bash --noprofile --norc -eo pipefail %q", work, script))
			t.Logf("%s exited %d after %s:\n%s%s", where, code, time.Since(began).Round(time.Millisecond), stdout, stderr)
			if code != 0 {
				t.Fatalf("%s failed", where)
			}
			if out, err := os.ReadFile(output); err == nil && st.ID != "" {
				for line := range strings.Lines(string(out)) {
					if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
						vals["steps."+st.ID+".outputs."+k] = v
					}
				}
			}
		}
		for k, v := range job.Outputs {
			vals["needs."+name+".outputs."+k] = expand("jobs."+name+".outputs", v)
		}
		took[name] = time.Since(began)
	}
	t.Logf("job durations: %v", took)

	// The release the jobs started is promoted, approved by the approve job.
	runID := vals["needs.start.outputs.run-id"]
	if runID == "" {
		t.Fatal("the start job gave no run ID")
	}
	stdout, stderr, code := harness.Run(t, 30*time.Second, append(append([]string{}, c.env...), "CUTOVER_TASK_QUEUE=e2e"), c.cli, "status", "shop", "--run", runID, "--json")
	if code != 0 {
		t.Fatalf("status --run: %d %s", code, stderr)
	}
	var st workflows.Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatal(err)
	}
	a := st.LastApproval()
	if st.Outcome != workflows.OutcomePromoted || st.Version != vals["github.sha"] || a == nil || !strings.Contains(a.By, "GitHub environment production") || a.Principal.String() == "cli:github-actions" {
		t.Errorf("the release: %s %s, approval %+v; want promoted %s, approved in the GitHub environment by another principal than the start", st.Version, st.Outcome, a, vals["github.sha"])
	}
	// A run ID that is not shop's is refused, not followed.
	if _, stderr, code := harness.Run(t, 30*time.Second, append(append([]string{}, c.env...), "CUTOVER_TASK_QUEUE=e2e"), c.cli, "watch", "shop", "--run", "0195e7a2-8f3c-7d41-9a1e-2c4b6d8e0f12"); code == 0 || !strings.Contains(stderr, "no release found") {
		t.Errorf("watch --run of no such run: exit %d %s", code, stderr)
	}
}

// jobOrder orders jobs so that each comes after the jobs it needs.
func jobOrder(t *testing.T, jobs map[string]actionsJob) []string {
	var order []string
	done := map[string]bool{}
	for len(order) < len(jobs) {
		progressed := false
		names := make([]string, 0, len(jobs))
		for n := range jobs {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if done[n] {
				continue
			}
			ready := true
			for _, need := range jobs[n].Needs {
				if _, ok := jobs[need]; !ok {
					t.Fatalf("job %s needs %s, which is not a job", n, need)
				}
				ready = ready && done[need]
			}
			if ready {
				order, done[n], progressed = append(order, n), true, true
			}
		}
		if !progressed {
			t.Fatalf("the jobs' needs form a cycle: %v", jobs)
		}
	}
	return order
}
