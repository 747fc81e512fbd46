package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// TestTemporalUI opens the Temporal Web UI in a headless Chromium, the way an
// operator watches a release: the release is found by its search attribute, and
// its page shows the summary, the stage and the current details.
func TestTemporalUI(t *testing.T) {
	// Building the binaries (without the Makefile's) is not part of the bound.
	cli, worker := harness.CutoverBinaries(t)
	harness.TemporalCLI(t)
	deadline := time.Now().Add(80 * time.Second)
	browser := harness.Chromium(t)
	srv := harness.StartTemporal(t, harness.DevServerOptions{UI: true})
	c := &cluster{t: t, server: srv, cli: cli, env: srv.Env("ui-e2e"), workerBin: worker}
	c.addWorker()
	ui := fmt.Sprintf("http://127.0.0.1:%d", srv.UIPort)
	waitHTTP(t, ui+"/", 30*time.Second)

	app := "storefront"
	path := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(path, []byte("previousVersion: 1.4.0\n"+fmt.Sprintf(releaseYAML, app, "1.5.0")), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := harness.Start(t, "cutover release --wait", c.env, cli, "release", "-f", path, "--wait", "--by", "ui-test")
	c.waitStatus(app, time.Minute, func(st workflows.Status) bool { return st.Waiting == "approval" })

	ctx, cancel := context.WithDeadline(browser, deadline.Add(-15*time.Second))
	defer cancel()

	// Tall enough for the current details' whole step table: the UI scrolls
	// inside its panes, so a full-page screenshot is the viewport.
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1440, 1500)); err != nil {
		t.Fatalf("set the viewport: %v", err)
	}

	// The list, filtered by the release's search attribute.
	list := ui + "/namespaces/default/workflows?query=" + url.QueryEscape(fmt.Sprintf("CutoverApp=%q", app))
	if err := chromedp.Run(ctx, chromedp.Navigate(list)); err != nil {
		t.Fatalf("open %s: %v", list, err)
	}
	id := spec.WorkflowID(app)
	waitText(t, ctx, "the list of workflows with "+list, id, "Running", "Release")

	// The workflow's page, through the list's link as an operator gets there.
	click(t, ctx, fmt.Sprintf(`a[href*=%q]`, url.PathEscape(id)), "the link to "+id+" in the list")
	waitText(t, ctx, "the workflow's page", id, "Running", "User Metadata")

	// In UI 2.42 the summary, the details and the current details are on the
	// User Metadata tab; the current details come from the running workflow.
	click(t, ctx, `a[data-testid="user-metadata-tab"]`, "the User Metadata tab")
	waitText(t, ctx, "the User Metadata tab",
		"Summary", "\n"+app+" 1.4.0 -> 1.5.0\n", // the summary: a line of its own
		"Started by ui-test", // the static details
		"Current Details",
		app+" 1.4.0 -> 1.5.0 · stage approval (step 8 of 12) · outcome running", // the stage
		"Traffic: blue 50% / green 50%",                                         // the weights
		"Waiting for approval",                                                  // what it waits for
		"Last verdict: Pass",
		// the step table
		"soak 4s, guard every 1s\tdone",
		"wait for approval (timeout 5m0s, then rollback)\trunning",
		"decommission blue\tpending",
	)

	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("CUTOVER_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(harness.RepoRoot(t), ".cache", "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "ui-release.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the release's page in the Temporal UI: %s", shot)

	// The search attributes operators filter by.
	click(t, ctx, `a[data-testid="search-attributes-tab"]`, "the Search Attributes tab")
	waitText(t, ctx, "the Search Attributes tab", `"CutoverApp": "storefront"`, `"CutoverStage": "approval"`,
		`"CutoverTrafficPercent": 50`, `"CutoverOutcome": "running"`, `"CutoverVersion": "1.5.0"`)

	// End the release, so that nothing is left running.
	if out, errOut, code := c.cutover("approve", app, "--operator", "ui-operator", "--as", "ui-operator", "--reason", "checked in the UI"); code != 0 {
		t.Fatalf("approve: exit %d: %s %s", code, out, errOut)
	}
	if code := rel.Wait(t, time.Until(deadline)); code != 0 {
		t.Fatalf("release --wait exited %d, want 0 (promoted)\n%s", code, rel.Output())
	}
}

// click clicks the first element that matches selector once it is visible.
func click(t *testing.T, ctx context.Context, selector, what string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Click(selector, chromedp.ByQuery, chromedp.NodeVisible)); err != nil {
		t.Fatalf("click %s (%s): %v\npage:\n%s", what, selector, err, pageText(ctx))
	}
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	end := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(end) {
			t.Fatalf("%s did not answer within %s: %v", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pageText is the text the page shows, with that of its frames (the UI may
// render markdown in one).
func pageText(ctx context.Context) string {
	var text string
	_ = chromedp.Run(ctx, chromedp.Evaluate(`(() => {
		let t = document.body ? document.body.innerText : "";
		for (const f of document.querySelectorAll("iframe")) {
			try { t += "\n" + f.contentDocument.body.innerText; } catch (e) {}
		}
		return t;
	})()`, &text))
	return text
}

// waitText waits until the page shows every one of want: the UI is a single-page
// app that fills in after it loaded.
func waitText(t *testing.T, ctx context.Context, where string, want ...string) {
	t.Helper()
	var text string
	for {
		text = pageText(ctx)
		var missing []string
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never showed %q; it shows:\n%s", where, missing, text)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
