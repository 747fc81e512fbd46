package harness

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cutoverhq/cutover/procs"
)

// ChromiumBin finds Chromium: $CHROMIUM_BIN, /usr/bin/chromium, or chromium on
// PATH. Without one the test skips (fails when CI=true).
func ChromiumBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CHROMIUM_BIN=%s: %v", p, err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	Missing(t, "chromium", "apt-get install -y chromium")
	return ""
}

// Chromium starts a headless Chromium and returns a chromedp context of its
// first tab. The browser and every process it started are stopped when the test
// ends; its output is logged when the test failed.
func Chromium(t testing.TB) context.Context {
	t.Helper()
	bin := ChromiumBin(t)
	out := procs.NewTail(outputKept)
	var cmd *exec.Cmd
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		// Chromium's own connections (component updates, sync, QUIC probes)
		// are refused on machines without outside network; without these
		// flags it keeps retrying them.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
		chromedp.CombinedOutput(out),
		chromedp.ModifyCmdFunc(func(c *exec.Cmd) {
			// Its own process group, so that the renderers and helpers go
			// with it; and killed if the test binary dies.
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			cmd = c
		}),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		// Close the browser gracefully, then make sure nothing is left.
		done := make(chan struct{})
		go func() {
			_ = chromedp.Cancel(ctx)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		cancelTab()
		if cmd != nil && cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		cancelAlloc()
		if t.Failed() {
			t.Logf("--- output of chromium ---\n%s", out.String())
		}
	})
	// The first Run starts the browser; it must not carry a timeout, which
	// would stop the browser when it ran out (the allocator gives up on its
	// own after 20s without Chromium's DevTools address).
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium (%s): %v\n%s", bin, err, out.String())
	}
	return ctx
}
