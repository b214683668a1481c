package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/emma-gateway/emma-gateway/internal/console/consoletest"

	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
)

// TestConsoleOfTheRealGatewayInABrowser opens /console of a running gateway
// (real receiver, sink and broker; production access: the admin token as
// Basic auth) in headless Chromium, then sends callbacks to the gateway's
// webhook: the accepted rows with their event ids and Kafka offsets, the
// 422's dead letter with its failing field and the plot must appear without
// a reload, and neither a payload nor a token may be in the page.
func TestConsoleOfTheRealGatewayInABrowser(t *testing.T) {
	b, err := devkafka.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	tg := startTestGatewayWith(t, []string{"--kafka-brokers", strings.Join(b.Addrs(), ","), "--admin-token", adminToken}, func(c *gateway.Config) {
		c.Now = nil // the console's clock and the events' are the real one
	})

	bctx := consoletest.Browser(t, "oncall", adminToken)
	res, err := chromedp.RunResponse(bctx, chromedp.Navigate(tg.url+"/console"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK {
		t.Fatalf("GET /console in the browser: %d", res.Status)
	}
	evalString := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}
	waitFor := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}
	waitFor("the script to poll", `document.getElementById("live").className === "live-on"`)
	if got := evalString(`document.querySelector("#recent tbody").textContent`); !strings.Contains(got, "no callbacks yet") {
		t.Fatalf("a fresh gateway's console shows %q", got)
	}
	evalString(`window.__sameDocument = "yes"; "ok"`) // a reload would wipe it

	const marker = "PAYLOAD-MARKER-7f3a"
	var ids []string
	for i, name := range []string{"message_open", "message_click", "member_signup"} {
		body := fmt.Sprintf(`{"event_name":%q,"data":{"account_id":1743199,"member_id":%d,"mailing_id":42,"link_id":7,"subject":%q,"timestamp":"@D:2026-12-01T02:59:00"}}`, name, 1160010079+i, marker)
		code, ans := tg.callback(t, http.MethodPost, body)
		if code != 200 {
			t.Fatalf("%s: %d %v", name, code, ans)
		}
		ids = append(ids, ans["event_id"].(string))
	}
	bad := `{"event_name":"message_click","data":{"account_id":1743199,"member_id":"` + marker + `","mailing_id":42,"link_id":7,"timestamp":"@D:2026-12-01T02:59:00"}}`
	if code, _ := tg.callback(t, http.MethodGet, bad); code != 422 {
		t.Fatalf("the invalid callback: %d, want 422", code)
	}

	for _, id := range ids {
		waitFor("row "+id, fmt.Sprintf(`document.querySelector("#recent tbody").textContent.includes(%q)`, id))
	}
	waitFor("the dead letter's failing field", `[...document.querySelectorAll("#deadletters tbody code")].some(c => c.textContent === "member_id")`)
	waitFor("the plot's bars", `document.querySelectorAll("#plot-bars rect").length > 0`)
	if got := evalString(`String(window.__sameDocument)`); got != "yes" {
		t.Errorf("the page was reloaded (mark %q): the rows must arrive live", got)
	}
	rows := evalString(`document.querySelector("#recent tbody").textContent`)
	for _, want := range []string{"emma.message_open", "422", "invalid"} {
		if !strings.Contains(rows, want) {
			t.Errorf("the recent rows lack %q: %s", want, rows)
		}
	}
	if got := evalString(`(() => { const r = document.querySelector("#plot-bars rect").getBBox(); return r.width > 0 && r.height > 0 ? "drawn" : JSON.stringify(r); })()`); got != "drawn" {
		t.Errorf("first bar's box: %s", got)
	}
	if got := evalString(`document.querySelector("#card-kafka .value").textContent`); got != "ready" {
		t.Errorf("Kafka card says %q", got)
	}
	if got := evalString(`JSON.stringify(window.__csp)`); got != "[]" {
		t.Errorf("the page's CSP blocked %s", got)
	}
	html := evalString(`document.documentElement.outerHTML`)
	for _, secret := range []string{marker, adminToken, testToken, base64.StdEncoding.EncodeToString([]byte("oncall:" + adminToken))} {
		if strings.Contains(html, secret) {
			t.Errorf("the page holds %q", secret)
		}
	}
}
