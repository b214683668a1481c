package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/emma-gateway/emma-gateway/events"
)

const (
	token      = "s3cret-token-0123456789"
	otherToken = "rotated-token-9876543210"
	openEvent  = `{"event_name":"message_open","data":{"account_id":1743199,"member_id":6160010079,"mailing_id":5012345678,"subject":"Hi","timestamp":"@D:2026-11-20T10:01:02"}}`
)

// recorder is a Sink that keeps what it is given, or fails.
type recorder struct {
	mu     sync.Mutex
	events []*events.Event
	dead   []*events.Rejection
	err    error
	// With block set, Publish signals entered, then waits for block.
	block   chan struct{}
	entered chan struct{}
}

func (r *recorder) Publish(ctx context.Context, ev *events.Event) error {
	if r.block != nil {
		r.entered <- struct{}{}
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) DeadLetter(ctx context.Context, rej *events.Rejection) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.dead = append(r.dead, rej)
	return nil
}

var _ Sink = (*recorder)(nil)

func newTestServer(t *testing.T, mutate func(*Config), sink Sink) *httptest.Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Tokens = []string{token, otherToken}
	if mutate != nil {
		mutate(&cfg)
	}
	set := testSettings(t)
	s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: sink, Mounts: metricsMount(set)}, set)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// do is doRaw with the body decoded: every answer of the server is JSON.
func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	r := doRaw(t, req)
	a := answer{status: r.status, header: r.header}
	if r.body != "" {
		if err := json.Unmarshal([]byte(r.body), &a.body); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, r.body)
		}
	}
	return a
}

func post(t *testing.T, target, contentType, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func get(t *testing.T, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func withPayload(base, payload string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "payload=" + url.QueryEscape(payload)
}

// TestAnswers walks SPEC section 3's table of answers.
func TestAnswers(t *testing.T) {
	sink := &recorder{}
	ts := newTestServer(t, nil, sink)
	hook := ts.URL + "/webhooks/emma/" + token
	tests := []struct {
		name       string
		req        *http.Request
		status     int
		problem    bool
		deadLetter bool
	}{
		{"known event by POST", post(t, hook, "application/json", openEvent), 200, false, false},
		{"known event by GET", get(t, withPayload(hook, openEvent)), 200, false, false},
		{"unrecognized event", post(t, hook, "", `{"event_name":"member_birthday","data":{"account_id":1}}`), 200, false, false},
		{"not JSON", post(t, hook, "text/plain", `hello`), 400, true, true},
		{"no payload by GET", get(t, hook), 400, true, false},
		{"no payload by POST", post(t, hook, "application/json", ""), 400, true, false},
		{"no event_name", post(t, hook, "application/json", `{"data":{"account_id":1}}`), 400, true, true},
		{"no token", post(t, ts.URL+"/webhooks/emma", "application/json", openEvent), 401, true, false},
		{"wrong token", post(t, ts.URL+"/webhooks/emma/wrong-token-000000000", "application/json", openEvent), 401, true, false},
		{"PUT", func() *http.Request { r := post(t, hook, "", openEvent); r.Method = http.MethodPut; return r }(), 405, true, false},
		{"DELETE", func() *http.Request { r := get(t, hook); r.Method = http.MethodDelete; return r }(), 405, true, false},
		{"body over the limit", post(t, hook, "application/json", `{"event_name":"x","pad":"`+strings.Repeat("a", 1<<20)+`"}`), 413, true, false},
		{"invalid known event", post(t, hook, "application/json", `{"event_name":"message_open","data":{"account_id":1}}`), 422, true, true},
		{"unknown path", get(t, ts.URL+"/webhooks/mailchimp"), 404, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink.mu.Lock()
			nEvents, nDead := len(sink.events), len(sink.dead)
			sink.mu.Unlock()
			a := do(t, tt.req)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d (%v)", a.status, tt.status, a.body)
			}
			ct := a.header.Get("Content-Type")
			if tt.problem {
				if ct != "application/problem+json" || a.body["status"] != float64(tt.status) || a.body["title"] == "" || a.body["detail"] == "" {
					t.Fatalf("problem answer %s %v", ct, a.body)
				}
			} else if !strings.HasPrefix(ct, "application/json") || a.body["status"] != "accepted" || a.body["event_id"] == "" {
				t.Fatalf("accepted answer %s %v", ct, a.body)
			}
			sink.mu.Lock()
			defer sink.mu.Unlock()
			gotDead := len(sink.dead) - nDead
			gotEvents := len(sink.events) - nEvents
			if tt.deadLetter != (gotDead == 1) || gotDead > 1 {
				t.Fatalf("%d dead letters, want dead letter %v", gotDead, tt.deadLetter)
			}
			if (tt.status == 200) != (gotEvents == 1) {
				t.Fatalf("%d events published for status %d", gotEvents, tt.status)
			}
		})
	}
}

func TestAcceptedAnswerNamesEventAndRecognition(t *testing.T) {
	sink := &recorder{}
	ts := newTestServer(t, nil, sink)
	a := do(t, post(t, ts.URL+"/webhooks/emma/"+token, "", openEvent))
	if a.body["event"] != "message_open" || a.body["recognized"] != true || a.body["event_id"] != sink.events[0].ID {
		t.Fatalf("answer %v", a.body)
	}
	a = do(t, post(t, ts.URL+"/webhooks/emma/"+token, "", `{"event_name":"member_birthday","data":{"account_id":1}}`))
	if a.body["event"] != "member_birthday" || a.body["recognized"] != false {
		t.Fatalf("answer %v", a.body)
	}
}

func TestInvalidEventAnswerListsFieldErrors(t *testing.T) {
	sink := &recorder{}
	ts := newTestServer(t, nil, sink)
	body := `{"event_name":"message_click","data":{"account_id":1,"member_id":"12x","mailing_id":2,"link_id":3,"timestamp":"@D:2026-01-01T00:00:00"}}`
	a := do(t, get(t, withPayload(ts.URL+"/webhooks/emma?token="+token, body)))
	if a.status != 422 {
		t.Fatalf("status %d", a.status)
	}
	errs, _ := a.body["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("errors %v", a.body["errors"])
	}
	e := errs[0].(map[string]any)
	if e["field"] != "member_id" || e["rule"] != "type" || e["message"] == "" {
		t.Fatalf("error %v", e)
	}
	d := sink.dead[0]
	want := events.Rejection{ID: d.ID, Delivery: events.DeliveryGET, Payload: []byte(body), EventName: "message_click", Reason: events.ReasonInvalid,
		Detail: d.Detail, Errors: d.Errors, ReceivedAt: d.ReceivedAt}
	if diff := cmp.Diff(want, *d); diff != "" {
		t.Fatalf("dead letter (-want +got):\n%s", diff)
	}
}

func TestTokenIsAcceptedInPathQueryOrBasicPassword(t *testing.T) {
	sink := &recorder{}
	ts := newTestServer(t, nil, sink)
	basic := post(t, ts.URL+"/webhooks/emma", "", openEvent)
	basic.SetBasicAuth("emma", otherToken)
	wrongBasic := post(t, ts.URL+"/webhooks/emma", "", openEvent)
	wrongBasic.SetBasicAuth("emma", "guess-guess-guess-guess")
	tests := []struct {
		name      string
		req       *http.Request
		status    int
		challenge bool
	}{
		{"path", post(t, ts.URL+"/webhooks/emma/"+token, "", openEvent), 200, false},
		{"query", post(t, ts.URL+"/webhooks/emma?token="+otherToken, "", openEvent), 200, false},
		{"basic password", basic, 200, false},
		{"wrong basic password is challenged", wrongBasic, 401, true},
		{"no credentials is not challenged", post(t, ts.URL+"/webhooks/emma", "", openEvent), 401, false},
		{"token prefix", post(t, ts.URL+"/webhooks/emma/"+token[:10], "", openEvent), 401, false},
		{"token with suffix", post(t, ts.URL+"/webhooks/emma/"+token+"x", "", openEvent), 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.req)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d", a.status, tt.status)
			}
			if got := a.header.Get("WWW-Authenticate") != ""; got != tt.challenge {
				t.Fatalf("challenge %v, want %v", got, tt.challenge)
			}
		})
	}
}

func TestPostBodyForms(t *testing.T) {
	sink := &recorder{}
	ts := newTestServer(t, nil, sink)
	hook := ts.URL + "/webhooks/emma/" + token
	form := url.Values{"payload": {openEvent}}.Encode()
	for _, tt := range []struct {
		name string
		req  *http.Request
	}{
		{"no content type", post(t, hook, "", openEvent)},
		{"json", post(t, hook, "application/json; charset=utf-8", openEvent)},
		{"text", post(t, hook, "text/plain", openEvent)},
		{"form field payload", post(t, hook, "application/x-www-form-urlencoded", form)},
		{"JSON under a form content type", post(t, hook, "application/x-www-form-urlencoded", openEvent)},
		{"empty body with payload query", post(t, withPayload(hook, openEvent), "", "")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.req)
			if a.status != 200 {
				t.Fatalf("status %d %v", a.status, a.body)
			}
			ev := sink.events[len(sink.events)-1]
			if ev.Name != "message_open" || ev.Delivery != events.DeliveryPOST || ev.Key() != "6160010079" {
				t.Fatalf("event %+v", ev)
			}
		})
	}
	a := do(t, post(t, hook, "application/x-www-form-urlencoded", "other=1"))
	if a.status != 400 {
		t.Fatalf("form without payload: status %d", a.status)
	}
}

func TestSameCallbackByGetAndPostHasSameEventID(t *testing.T) {
	sink := &recorder{}
	ts := newTestServer(t, nil, sink)
	hook := ts.URL + "/webhooks/emma/" + token
	a := do(t, post(t, hook, "", openEvent))
	b := do(t, get(t, withPayload(hook+"?utm=x", openEvent)))
	if a.body["event_id"] != b.body["event_id"] || a.body["event_id"] == "" {
		t.Fatalf("ids %v and %v", a.body["event_id"], b.body["event_id"])
	}
}

func TestSinkFailureIs503WithRetryAfter(t *testing.T) {
	sink := &recorder{err: errors.New("kafka unavailable: broker down")}
	ts := newTestServer(t, func(c *Config) { c.RetryAfter = 7 * time.Second }, sink)
	hook := ts.URL + "/webhooks/emma/" + token
	for _, req := range []*http.Request{
		post(t, hook, "", openEvent),
		post(t, hook, "", `{"event_name":"message_open","data":{}}`), // its dead letter fails too
	} {
		a := do(t, req)
		if a.status != 503 || a.header.Get("Retry-After") != "7" {
			t.Fatalf("status %d Retry-After %q", a.status, a.header.Get("Retry-After"))
		}
		if strings.Contains(a.body["detail"].(string), "broker") {
			t.Fatalf("the answer reveals internals: %v", a.body)
		}
	}
}

func TestRateLimitIs429WithRetryAfter(t *testing.T) {
	sink := &recorder{}
	ts := newTestServer(t, func(c *Config) { c.RatePerIP, c.RateBurst = 0.001, 3 }, sink)
	hook := ts.URL + "/webhooks/emma/" + token
	for i := range 3 {
		if a := do(t, post(t, hook, "", openEvent)); a.status != 200 {
			t.Fatalf("request %d within the burst: status %d", i, a.status)
		}
	}
	a := do(t, post(t, hook, "", openEvent))
	if a.status != 429 || a.header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	// Health is never rate limited.
	if a := do(t, get(t, ts.URL+"/healthz")); a.status != 200 {
		t.Fatalf("healthz %d", a.status)
	}
}

func TestInFlightCapIs503(t *testing.T) {
	sink := &recorder{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	ts := newTestServer(t, func(c *Config) { c.MaxInFlight = 1 }, sink)
	hook := ts.URL + "/webhooks/emma/" + token
	first := make(chan answer, 1)
	go func() { first <- do(t, post(t, hook, "", openEvent)) }()
	select {
	case <-sink.entered: // the first request holds the only slot
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the sink")
	}
	a := do(t, post(t, hook, "", openEvent))
	close(sink.block)
	if a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Fatalf("second request: status %d", a.status)
	}
	if f := <-first; f.status != 200 {
		t.Fatalf("first request: status %d", f.status)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var readyErr error
	var mu sync.Mutex
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	s, err := New(cfg, Deps{
		Decoder: events.NewDecoder(events.DecoderConfig{}),
		Sink:    &recorder{},
		Ready: func(context.Context) Readiness {
			mu.Lock()
			defer mu.Unlock()
			if readyErr != nil {
				return Readiness{Ready: false, Checks: map[string]string{"kafka": readyErr.Error()}}
			}
			return Readiness{Ready: true, Checks: map[string]string{"kafka": "ok"}}
		},
	}, testSettings(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if a := do(t, get(t, ts.URL+"/readyz")); a.status != 200 || a.body["status"] != "ready" {
		t.Fatalf("readyz %d %v", a.status, a.body)
	}
	mu.Lock()
	readyErr = errors.New("kafka brokers: dial refused")
	mu.Unlock()
	a := do(t, get(t, ts.URL+"/readyz"))
	if a.status != 503 || a.body["checks"].(map[string]any)["kafka"] != "kafka brokers: dial refused" {
		t.Fatalf("readyz %d %v", a.status, a.body)
	}
	if a := do(t, get(t, ts.URL+"/healthz")); a.status != 200 {
		t.Fatalf("healthz %d while not ready", a.status)
	}
}

func TestReadinessCheckIsBoundedByReadyTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	cfg.ReadyTimeout = 50 * time.Millisecond
	s, err := New(cfg, Deps{
		Decoder: events.NewDecoder(events.DecoderConfig{}),
		Sink:    &recorder{},
		// A dependency that answers only when asked to give up.
		Ready: func(ctx context.Context) Readiness {
			<-ctx.Done()
			return Readiness{Ready: false, Checks: map[string]string{"kafka": ctx.Err().Error()}}
		},
	}, testSettings(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	start := time.Now()
	a := do(t, get(t, ts.URL+"/readyz"))
	if a.status != 503 || a.body["checks"].(map[string]any)["kafka"] != context.DeadlineExceeded.Error() {
		t.Fatalf("readyz %d %v", a.status, a.body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("readyz took %s with a %s ready timeout", took, cfg.ReadyTimeout)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = ""
	cfg.Tokens = []string{"tiny-tok", "has,comma-0123456789"}
	cfg.BodyLimit = 0
	cfg.PublishTimeout = time.Minute
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"no listen address", "token #1", "token #2", "body limit", "publish timeout"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "tiny-tok") || strings.Contains(msg, "has,comma") {
		t.Errorf("error quotes a token:\n%s", msg)
	}
	cfg = DefaultConfig()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "no webhook tokens") {
		t.Errorf("no tokens without AllowUnauthenticated: %v", err)
	}
	cfg.AllowUnauthenticated = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("unauthenticated allowed: %v", err)
	}
}

func TestServerStartAndShutdown(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.AllowUnauthenticated = true
	s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: &recorder{}}, testSettings(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Start: %v", err)
	}
	s, _ = New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: &recorder{}}, testSettings(t))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := do(t, post(t, "http://"+s.Addr().String()+"/webhooks/emma", "", openEvent)); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := http.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		t.Fatal("still serving after Shutdown")
	}
}

// TestDeadLetterKeepsTheRequestsReceiveTime: a rejected callback's
// received_at is the time the request came in, the one its decode saw, not
// a later reading of the clock.
func TestDeadLetterKeepsTheRequestsReceiveTime(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"malformed", `{"event_name":`},
		{"invalid", `{"event_name":"message_click","data":{"account_id":1,"member_id":"12x","mailing_id":2,"link_id":3,"timestamp":"@D:2026-01-01T00:00:00"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := &recorder{}
			base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
			var mu sync.Mutex
			reads := 0
			now := func() time.Time { // every reading is a second later
				mu.Lock()
				defer mu.Unlock()
				reads++
				return base.Add(time.Duration(reads-1) * time.Second)
			}
			cfg := DefaultConfig()
			cfg.Tokens = []string{token}
			s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: sink, Now: now}, testSettings(t))
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			t.Cleanup(ts.Close)
			do(t, post(t, ts.URL+"/webhooks/emma?token="+token, "", tt.body))
			if len(sink.dead) != 1 {
				t.Fatalf("%d dead letters, want 1", len(sink.dead))
			}
			if got := sink.dead[0].ReceivedAt; !got.Equal(base) {
				t.Fatalf("dead letter received_at %s, want the request's %s", got, base)
			}
		})
	}
}

// TestMountsAreTheWiringsToServe: the receiver serves no /metrics or
// /schemas of its own; what the wiring mounts is served, exact paths and
// those below a "*" pattern, and a mount without a path from / is refused.
func TestMountsAreTheWiringsToServe(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	plain, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: &recorder{}}, testSettings(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(plain.Handler())
	t.Cleanup(ts.Close)
	for _, p := range []string{"/metrics", "/schemas/"} {
		if a := doRaw(t, get(t, ts.URL+p)); a.status != http.StatusNotFound {
			t.Errorf("%s without a mount: %d, want 404", p, a.status)
		}
	}

	echoPath := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.URL.Path)) })
	mounted, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: &recorder{},
		Mounts: []Mount{{Path: "/exact", Handler: echoPath}, {Path: "/tree/*", Handler: echoPath}}}, testSettings(t))
	if err != nil {
		t.Fatal(err)
	}
	ts2 := httptest.NewServer(mounted.Handler())
	t.Cleanup(ts2.Close)
	for _, p := range []string{"/exact", "/tree/", "/tree/a/b.json"} {
		if a := doRaw(t, get(t, ts2.URL+p)); a.status != 200 || a.body != p {
			t.Errorf("GET %s: %d %q", p, a.status, a.body)
		}
	}
	if _, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: &recorder{}, Mounts: []Mount{{Path: "metrics", Handler: echoPath}}}, testSettings(t)); err == nil {
		t.Error("a mount without a leading / was accepted")
	}
}
