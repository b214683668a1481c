// Package consoletest starts headless Chromium for the console's browser
// tests (the handler alone in internal/console, the real gateway in
// cmd/emma-gateway). Only tests import it, so the binary links no chromedp.
package consoletest

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Browser starts headless Chromium (Debian's, as .ci/run installs it) for
// t, with a fresh profile and the flags this machine's closed network
// needs, sends "Basic user:password" with every request (the page and its
// polls), and records every Content-Security-Policy violation from the
// first byte of a page on in window.__csp. Without Chromium it skips,
// unless EMMA_GATEWAY_REQUIRE_CHROMIUM is set (CI), where it fails. The
// browser lives until t ends, at most 90 s.
func Browser(t *testing.T, user, password string) context.Context {
	t.Helper()
	bin := chromium()
	if bin == "" {
		if os.Getenv("EMMA_GATEWAY_REQUIRE_CHROMIUM") != "" {
			t.Fatal("EMMA_GATEWAY_REQUIRE_CHROMIUM is set but no Chromium is on PATH")
		}
		t.Skip("no Chromium on PATH (.ci/run installs Debian's chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`,
	}); err != nil {
		t.Fatal(err)
	}
	return bctx
}

// chromium finds Debian's Chromium (what .ci/run installs) or another
// Chrome on PATH.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}
