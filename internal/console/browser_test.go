package console

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/emma-gateway/emma-gateway/internal/console/consoletest"

	"github.com/emma-gateway/emma-gateway/events"
)

var screenshot = flag.String("console.screenshot", "", "write a full-page PNG of the console, as the browser test leaves it, to this path (e.g. ../../docs/console.png)")

// TestConsoleInARealBrowser opens the console in headless Chromium, with
// the admin token as Basic auth, while callbacks arrive: the new rows, the
// dead letter's failing field and the plot must appear without a reload,
// the page's own policy must not block anything of it, and no payload or
// token may be in the page.
func TestConsoleInARealBrowser(t *testing.T) {
	rec := NewRecorder(RecorderConfig{Recent: 20})
	h, err := New(Config{Recorder: rec, AdminToken: adminToken, WebhookTokens: []string{webhookToken}, State: func(context.Context) State {
		return State{
			Kafka: KafkaState{Known: true, Brokers: []string{"kafka-0.kafka:9093", "kafka-1.kafka:9093", "kafka-2.kafka:9093"}, Ready: true},
			Spool: SpoolState{Enabled: true, Records: 3, Bytes: 2140, MaxBytes: 1 << 30, Oldest: time.Now().Add(-47 * time.Second)},
		}
	}, Poll: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	bctx := consoletest.Browser(t, "oncall", adminToken)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("oncall:"+adminToken))
	res, err := chromedp.RunResponse(bctx, chromedp.Navigate(srv.URL+Path))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK {
		t.Fatalf("GET %s in the browser: %d", Path, res.Status)
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
		t.Fatalf("an empty recorder's page shows %q", got)
	}
	if n := evalString(`String(document.querySelectorAll("#plot-bars rect").length)`); n != "0" {
		t.Fatalf("the empty page already has %s bars", n)
	}
	// A mark that a reload would wipe.
	evalString(`window.__sameDocument = "yes"; "ok"`)

	// Traffic arrives while the page is open: 15 minutes of history (so
	// that the plot and the screenshot show a real picture), then the
	// callbacks of the last seconds, one of them rejected.
	feedTraffic(t, rec, time.Now())
	freshIDs := feedLatest(t, rec)

	for _, id := range freshIDs {
		waitFor("row "+id, fmt.Sprintf(`document.querySelector("#recent tbody").textContent.includes(%q)`, id))
	}
	waitFor("the dead letter's failing field", `[...document.querySelectorAll("#deadletters tbody code")].some(c => c.textContent === "member_id")`)
	waitFor("the plot's bars", `document.querySelectorAll("#plot-bars rect").length > 50`)
	waitFor("the p99 line", `document.getElementById("plot-p99").getAttribute("d").startsWith("M")`)
	if got := evalString(`String(window.__sameDocument)`); got != "yes" {
		t.Errorf("the page was reloaded (mark %q): the rows must arrive live", got)
	}
	if got := evalString(`document.querySelector("#deadletters tbody").textContent`); !strings.Contains(got, "validation") || !strings.Contains(got, "must be a non-negative integer") {
		t.Errorf("dead letter row %q lacks its reason or message", got)
	}
	if got := evalString(`document.querySelector("#card-spool .value").textContent + " / " + document.querySelector("#card-kafka .value").textContent`); got != "3 records / ready" {
		t.Errorf("spool and Kafka cards say %q", got)
	}
	// The bars are drawn with real geometry inside the plot.
	if got := evalString(`(() => { const r = document.querySelector("#plot-bars rect").getBBox(); return r.width > 0 && r.height > 0 ? "drawn" : JSON.stringify(r); })()`); got != "drawn" {
		t.Errorf("first bar's box: %s", got)
	}
	// The stylesheet applies (a blocked one would leave the bars black).
	if got := evalString(`getComputedStyle(document.querySelector("#plot-bars rect.o-accepted")).fill`); got != "rgb(46, 125, 50)" {
		t.Errorf("accepted bar fill %q: the stylesheet did not apply", got)
	}
	if got := evalString(`JSON.stringify(window.__csp)`); got != "[]" {
		t.Errorf("the page's CSP blocked %s", got)
	}
	html := evalString(`document.documentElement.outerHTML`)
	for _, secret := range []string{payloadMarker, adminToken, webhookToken, "secret_note", base64.StdEncoding.EncodeToString([]byte("oncall:" + adminToken))} {
		if strings.Contains(html, secret) {
			t.Errorf("the page holds %q", secret)
		}
	}

	t.Run("without JavaScript the server's page holds the same", func(t *testing.T) {
		nctx, ncancel := chromedp.NewContext(bctx)
		defer ncancel()
		if err := chromedp.Do(nctx); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(nctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(nctx, network.Enable, network.EnableParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(nctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(nctx, chromedp.Navigate(srv.URL+Path)); err != nil {
			t.Fatal(err)
		}
		live, err := chromedp.Run(nctx, chromedp.TextContent("#live"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(live, "static page") {
			t.Errorf("with scripts off, #live says %q: did the script run?", live)
		}
		rows, err := chromedp.Run(nctx, chromedp.Nodes("#recent tbody tr"))
		if err != nil {
			t.Fatal(err)
		}
		bars, err := chromedp.Run(nctx, chromedp.Nodes("#plot-bars rect"))
		if err != nil {
			t.Fatal(err)
		}
		letters, err := chromedp.Run(nctx, chromedp.TextContent("#deadletters tbody"))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 20 || len(bars) < 50 || !strings.Contains(letters, "member_id") {
			t.Errorf("without JavaScript: %d rows (want the ring's 20), %d bars, dead letters %q", len(rows), len(bars), letters)
		}
	})

	if *screenshot != "" {
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", *screenshot, len(png))
	}
}

// feedTraffic records 15 minutes of plausible callbacks before now: a
// steady stream of opens and clicks, a burst, a few duplicates and bad
// tokens, and a Kafka hiccup answered 503.
func feedTraffic(t *testing.T, rec *Recorder, now time.Time) {
	t.Helper()
	start := now.Add(-Window + time.Second).Truncate(time.Second)
	names := []string{"message_open", "message_click", "member_signup", "mailing_finish"}
	n := 0
	for at := start; at.Before(now.Add(-10 * time.Second)); at = at.Add(time.Second) {
		s := int(at.Sub(start) / time.Second)
		per := 4 + s%5
		if s > 300 && s < 360 {
			per += 12 // a mailing goes out
		}
		for i := range per {
			n++
			c := Callback{
				Time: at.Add(time.Duration(i) * time.Millisecond), Method: "POST", Event: names[n%len(names)], Account: 1743199,
				Status: 200, Outcome: "accepted", Latency: time.Duration(2+n%7) * time.Millisecond,
				EventID: fmt.Sprintf("%032x", n), Topic: "emma." + names[n%len(names)], Partition: int32(n % 12), Offset: int64(n),
			}
			switch {
			case s > 600 && s < 620:
				c.Status, c.Outcome, c.Latency, c.Topic = 503, "unavailable", 2*time.Second, ""
			case n%97 == 0:
				c.Outcome = "duplicate"
			case n%131 == 0:
				c.Status, c.Outcome, c.Latency, c.Topic = 401, "unauthorized", 80*time.Microsecond, ""
			}
			rec.Record(c)
		}
	}
}

// feedLatest records what just arrived, through the decoder as the wiring
// will: accepted callbacks whose payloads hold payloadMarker, one spooled,
// and a rejected one with its dead letter. It returns the accepted ids.
func feedLatest(t *testing.T, rec *Recorder) []string {
	t.Helper()
	dec := events.NewDecoder(events.DecoderConfig{})
	var ids []string
	for i, name := range []string{"message_open", "message_click", "member_signup"} {
		body := fmt.Sprintf(`{"event_name":%q,"data":{"account_id":1743199,"member_id":%d,"mailing_id":42,"link_id":7,"subject":%q,"timestamp":"@D:2026-12-01T02:59:00","secret_note":%q}}`, name, 1160010079+i, payloadMarker, payloadMarker)
		ev, err := dec.Decode([]byte(body), events.DeliveryPOST, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c := CallbackOf(ev)
		c.Status, c.Outcome, c.Latency = 200, "accepted", time.Duration(3+i)*time.Millisecond
		c.Topic, c.Partition, c.Offset = "emma."+name, int32(i), int64(88000+i)
		if i == 2 {
			c.Spooled, c.Topic = true, ""
		}
		rec.Record(c)
		ids = append(ids, ev.ID)
	}
	bad := `{"event_name":"message_click","data":{"account_id":1743199,"member_id":"` + payloadMarker + `","mailing_id":42,"link_id":7,"subject":"hi","timestamp":"@D:2026-12-01T02:59:00"}}`
	_, err := dec.Decode([]byte(bad), events.DeliveryGET, time.Now())
	ve, ok := err.(*events.ValidationError)
	if !ok {
		t.Fatalf("the rejected callback decodes with %v, want a validation error", err)
	}
	rec.Record(Callback{Method: "GET", Event: ve.Event, Account: 1743199, Status: 422, Outcome: "invalid", Latency: 400 * time.Microsecond, Partition: -1})
	rec.RecordDeadLetter(DeadLetter{Method: "GET", Event: ve.Event, Account: 1743199, Reason: "validation", Fields: ve.Errors, Topic: "emma.deadletter", Partition: 0, Offset: 41})
	return ids
}
