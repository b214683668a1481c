package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
)

const (
	adminToken   = "admin-token-0123456789abcdef"
	webhookToken = "webhook-token-fedcba9876543210"
	// payloadMarker is in every test callback's payload (its subject and
	// an extra field), so that any part of a payload in the page shows.
	payloadMarker = "PAYLOAD-MARKER-subject-line-7f3a"
)

// fixture is a recorder holding what a gateway would have recorded: a
// decoded callback, accepted; a duplicate; one spooled; and a rejected one
// with its failing field.
func fixture(t *testing.T) (*Recorder, *clock) {
	t.Helper()
	r, clk := newTestRecorder(RecorderConfig{})
	dec := events.NewDecoder(events.DecoderConfig{})
	body := `{"event_name":"message_open","data":{"account_id":1743199,"member_id":1160010079,"mailing_id":42,"subject":"` + payloadMarker + `","timestamp":"@D:2026-12-01T02:59:00","secret_note":"` + payloadMarker + `"}}`
	ev, err := dec.Decode([]byte(body), events.DeliveryPOST, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	c := CallbackOf(ev)
	c.Status, c.Outcome, c.Latency = 200, "accepted", 3*time.Millisecond
	c.Topic, c.Partition, c.Offset = "emma.message_open", 3, 1234
	r.Record(c)
	c.Outcome = "duplicate"
	r.Record(c)
	c.Outcome, c.Spooled, c.EventID = "accepted", true, "spooled-event-id"
	r.Record(c)
	bad := `{"event_name":"message_click","data":{"account_id":1743199,"member_id":"` + payloadMarker + `","mailing_id":42,"subject":"` + payloadMarker + `","timestamp":"@D:2026-12-01T02:59:00"}}`
	_, err = dec.Decode([]byte(bad), events.DeliveryGET, clk.now())
	ve, ok := err.(*events.ValidationError)
	if !ok {
		t.Fatalf("the rejected callback decodes with %v, want a validation error", err)
	}
	r.Record(Callback{Method: "GET", Event: ve.Event, Account: 1743199, Status: 422, Outcome: "invalid", Latency: 400 * time.Microsecond, Partition: -1})
	r.RecordDeadLetter(DeadLetter{Method: "GET", Event: ve.Event, Account: 1743199, Reason: "validation", Fields: ve.Errors, Topic: "emma.deadletter", Partition: 0, Offset: 7})
	r.Record(Callback{Method: "POST", Status: 401, Outcome: "unauthorized", Latency: 50 * time.Microsecond, Partition: -1})
	return r, clk
}

func testState(context.Context) State {
	return State{
		Kafka: KafkaState{Known: true, Brokers: []string{"kafka-0:9093", "kafka-1:9093"}, Ready: true},
		Spool: SpoolState{Enabled: true, Records: 12, Bytes: 34 << 10, MaxBytes: 1 << 30, Oldest: t0.Add(-90 * time.Second)},
	}
}

func newHandler(t *testing.T, mutate func(*Config)) *Handler {
	t.Helper()
	r, _ := fixture(t)
	cfg := DefaultConfig()
	cfg.Recorder = r
	cfg.State = testState
	cfg.AdminToken = adminToken
	cfg.WebhookTokens = []string{webhookToken}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, srv *httptest.Server, path string, auth func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b)}
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func TestConfigValidate(t *testing.T) {
	rec := NewRecorder(RecorderConfig{})
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; empty for valid
	}{
		{"production with an admin token", Config{Recorder: rec, AdminToken: adminToken, Poll: time.Second}, ""},
		{"development, no token", Config{Recorder: rec, DevMode: true, Poll: time.Second}, ""},
		{"neither: valid, and disabled", Config{Recorder: rec, Poll: time.Second}, ""},
		{"short admin token", Config{Recorder: rec, AdminToken: "fifteen-chars!!", Poll: time.Second}, "at least 16 characters"},
		{"admin token is a webhook token", Config{Recorder: rec, AdminToken: webhookToken, WebhookTokens: []string{"other-token-0123456789", webhookToken}, Poll: time.Second}, "also a webhook token"},
		{"no recorder", Config{AdminToken: adminToken, Poll: time.Second}, "no recorder"},
		{"poll too fast", Config{Recorder: rec, Poll: time.Millisecond}, "poll interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), adminToken) || err != nil && strings.Contains(err.Error(), webhookToken) {
				t.Errorf("the error names a token: %v", err)
			}
			if _, nerr := New(tc.cfg); (nerr == nil) != (err == nil) {
				t.Errorf("New and Validate disagree: %v / %v", nerr, err)
			}
		})
	}
	// Every problem at once.
	if err := (Config{AdminToken: "short"}).Validate(); err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("want three problems reported together, got %v", err)
	}
}

func TestAccessIsAsSpecSection7(t *testing.T) {
	paths := []string{"/console", "/console/api/state", "/console/assets/console.js", "/console/assets/console.css"}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		auth   func(*http.Request)
		want   int
	}{
		{"no admin token, production: 404 with any credential", func(c *Config) { c.AdminToken = "" }, basic("", adminToken), 404},
		{"no admin token, production, webhook token: 404", func(c *Config) { c.AdminToken = "" }, basic("", webhookToken), 404},
		{"development mode: open", func(c *Config) { c.AdminToken, c.DevMode = "", true }, nil, 200},
		{"production, no credential: 401", nil, nil, 401},
		{"admin token as Basic password, any user", nil, basic("someone", adminToken), 200},
		{"admin token as Basic password, empty user", nil, basic("", adminToken), 200},
		{"admin token as Bearer", nil, bearer(adminToken), 200},
		{"admin token as bearer, the scheme in lower case", nil, func(r *http.Request) { r.Header.Set("Authorization", "bearer "+adminToken) }, 200},
		{"wrong Basic password", nil, basic("", adminToken+"x"), 401},
		{"admin token as Basic user name, not password", nil, basic(adminToken, ""), 401},
		{"a prefix of the admin token", nil, bearer(adminToken[:16]), 401},
		{"webhook token as Basic password", nil, basic("", webhookToken), 401},
		{"webhook token as Bearer", nil, bearer(webhookToken), 401},
		{"admin token that a reread tokens file made a webhook token", func(c *Config) {
			c.IsWebhookToken = func(tok string) bool { return tok == adminToken }
		}, bearer(adminToken), 401},
		{"admin token in the query string", nil, func(r *http.Request) { r.URL.RawQuery = "token=" + adminToken }, 401},
		{"admin token with another scheme", nil, func(r *http.Request) { r.Header.Set("Authorization", "Token "+adminToken) }, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(newHandler(t, tc.mutate))
			defer srv.Close()
			for _, p := range paths {
				a := get(t, srv, p, tc.auth)
				if a.status != tc.want {
					t.Errorf("GET %s: %d, want %d", p, a.status, tc.want)
				}
				if got := a.header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
					t.Errorf("GET %s: CSP %q", p, got)
				}
				if a.header.Get("X-Content-Type-Options") != "nosniff" || a.header.Get("Cache-Control") != "no-store" {
					t.Errorf("GET %s: nosniff %q, cache %q", p, a.header.Get("X-Content-Type-Options"), a.header.Get("Cache-Control"))
				}
				if tc.want == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("GET %s: 401 without a Basic challenge", p)
				}
				if strings.Contains(a.body, adminToken) || strings.Contains(a.body, webhookToken) {
					t.Errorf("GET %s: the answer holds a token", p)
				}
			}
		})
	}
}

func TestCSPIsStrict(t *testing.T) {
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") || strings.Contains(ContentSecurityPolicy, "http") {
		t.Errorf("CSP allows inline code or another host: %s", ContentSecurityPolicy)
	}
	// The page must then hold no inline script or style for the policy to
	// block: every script and stylesheet is a file of ours.
	srv := httptest.NewServer(newHandler(t, nil))
	defer srv.Close()
	page := get(t, srv, "/console", bearer(adminToken)).body
	for _, bad := range []string{"style=", "<style", "onload=", "onclick=", "javascript:", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q, which the CSP blocks or which names another host", bad)
		}
	}
	if strings.Count(page, "<script") != 1 || !strings.Contains(page, `<script src="/console/assets/console.js" defer></script>`) {
		t.Errorf("want exactly one script, our own file")
	}
}

func TestPageShowsTheRecordedCallbacksWithoutPayloadOrToken(t *testing.T) {
	srv := httptest.NewServer(newHandler(t, nil))
	defer srv.Close()
	a := get(t, srv, "/console", basic("", adminToken))
	if a.status != 200 || a.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /console: %d %s", a.status, a.header.Get("Content-Type"))
	}
	page := a.body
	for _, want := range []string{
		"message_open", "1743199", "emma.message_open [3] @1234", "spooled", "3.0 ms",
		"<span class=\"badge o-accepted\">accepted</span>", "<span class=\"badge o-duplicate\">duplicate</span>",
		"<span class=\"badge o-invalid\">invalid</span>", "unauthorized",
		// the dead letter, with its failing field and where it is
		"message_click", "validation", "<code>member_id</code>", "emma.deadletter [0] @7",
		// Kafka and spool state
		"kafka-0:9093", "ready", "12 records", "34.0 KiB of 1.0 GiB", "oldest 1m30s",
		// the plot, server-rendered
		`<rect class="o-accepted"`, `<path id="plot-p99" class="p99-line" d="M`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if !strings.Contains(page, `data-poll-ms="1000"`) {
		t.Errorf("the page does not tell its script the poll interval")
	}
	for _, secret := range []string{payloadMarker, adminToken, webhookToken, "secret_note"} {
		if strings.Contains(page, secret) {
			t.Errorf("the page holds %q", secret)
		}
	}
}

func TestPageEscapesWhatSendersWrote(t *testing.T) {
	r, _ := newTestRecorder(RecorderConfig{})
	r.Record(Callback{Event: `<script>alert(1)</script>`, EventID: `"><img src=x>`, Outcome: `"><b>`, Status: 200})
	h, err := New(Config{Recorder: r, DevMode: true, Poll: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	page := get(t, srv, "/console", nil).body
	for _, bad := range []string{"<script>alert", "<img src=x>", `"><b>`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(page, `class="badge o-other"`) {
		t.Errorf("the sender's event name is not shown escaped, or its outcome made a class")
	}
}

func TestStateAPI(t *testing.T) {
	srv := httptest.NewServer(newHandler(t, nil))
	defer srv.Close()
	a := get(t, srv, "/console/api/state", bearer(adminToken))
	if a.status != 200 || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", a.status, a.header.Get("Content-Type"))
	}
	var v struct {
		PollMS int `json:"poll_ms"`
		Cards  []struct{ ID, Value, Detail, Class string }
		Recent []struct {
			Method, Event, Outcome, Destination string
			EventID                             string `json:"event_id"`
			Status                              int
			LatencyMS                           float64 `json:"latency_ms"`
			Partition                           int32
			Offset                              int64
			Spooled                             bool
		}
		DeadLetters []struct {
			Event, Reason, Location string
			Fields                  []struct{ Field, Rule, Message string }
		} `json:"dead_letters"`
		Outcomes []struct {
			Name  string
			Total int64
		}
		Plot struct {
			Bars []struct {
				X, Y, W, H float64
				Class      string
			}
			P99Path string `json:"p99_path"`
		}
	}
	dec := json.NewDecoder(strings.NewReader(a.body))
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.PollMS != 1000 || len(v.Recent) != 5 || len(v.DeadLetters) != 1 {
		t.Fatalf("poll %d, %d recent, %d dead letters", v.PollMS, len(v.Recent), len(v.DeadLetters))
	}
	if c := v.Recent[0]; c.Status != 401 || c.Outcome != "unauthorized" {
		t.Errorf("newest callback %+v, want the 401", c)
	}
	if c := v.Recent[4]; c.Event != "message_open" || c.Method != "POST" || c.Partition != 3 || c.Offset != 1234 || c.LatencyMS != 3 || c.EventID == "" || c.Destination != "emma.message_open [3] @1234" {
		t.Errorf("oldest callback %+v", c)
	}
	if c := v.Recent[2]; !c.Spooled || c.Destination != "spooled" {
		t.Errorf("spooled callback %+v", c)
	}
	d := v.DeadLetters[0]
	if d.Event != "message_click" || d.Reason != "validation" || len(d.Fields) == 0 || d.Fields[0].Field != "member_id" || d.Location != "emma.deadletter [0] @7" {
		t.Errorf("dead letter %+v", d)
	}
	totals := map[string]int64{}
	for _, o := range v.Outcomes {
		totals[o.Name] = o.Total
	}
	if totals["accepted"] != 2 || totals["duplicate"] != 1 || totals["invalid"] != 1 || totals["unauthorized"] != 1 {
		t.Errorf("outcome totals %v", totals)
	}
	if len(v.Plot.Bars) != 4 || v.Plot.P99Path == "" {
		t.Errorf("plot: %d bars (want one per outcome of the one busy step), p99 path %q", len(v.Plot.Bars), v.Plot.P99Path)
	}
	for _, b := range v.Plot.Bars {
		if b.H <= 0 || b.W <= 0 || b.Y < padT || b.Y+b.H > padT+innerH+0.1 {
			t.Errorf("bar %+v outside the plot", b)
		}
	}
	for _, secret := range []string{payloadMarker, adminToken, webhookToken} {
		if strings.Contains(a.body, secret) {
			t.Errorf("the state API holds %q", secret)
		}
	}
}

func TestOnlyGETAndKnownPaths(t *testing.T) {
	srv := httptest.NewServer(newHandler(t, func(c *Config) { c.DevMode = true }))
	defer srv.Close()
	for _, p := range []string{"/console/nope", "/console/assets/console.html", "/console/assets/../handler.go"} {
		if a := get(t, srv, p, nil); a.status != 404 {
			t.Errorf("GET %s: %d, want 404", p, a.status)
		}
	}
	res, err := http.Post(srv.URL+"/console", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /console: %d, want 405", res.StatusCode)
	}
	for p, ct := range map[string]string{"/console/assets/console.js": "text/javascript; charset=utf-8", "/console/assets/console.css": "text/css; charset=utf-8"} {
		if a := get(t, srv, p, nil); a.status != 200 || a.header.Get("Content-Type") != ct || len(a.body) < 500 {
			t.Errorf("GET %s: %d %q, %d bytes", p, a.status, a.header.Get("Content-Type"), len(a.body))
		}
	}
}

func TestUnknownStateIsShownAsUnknown(t *testing.T) {
	srv := httptest.NewServer(newHandler(t, func(c *Config) { c.State = nil }))
	defer srv.Close()
	page := get(t, srv, "/console", bearer(adminToken)).body
	if !strings.Contains(page, `<div class="card warn" id="card-kafka"><h2>Kafka</h2><p class="value">unknown</p>`) {
		t.Errorf("without a StateFunc the Kafka card does not say unknown")
	}
	if !strings.Contains(page, `<p class="value">off</p>`) {
		t.Errorf("without a StateFunc the spool card does not say off")
	}
}
