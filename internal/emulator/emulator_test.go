package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/emmaapi"
	"github.com/emma-gateway/emma-gateway/internal/emulator"
)

var at = time.Date(2026, 11, 20, 10, 1, 2, 0, time.UTC)

func start(t *testing.T, mutate func(*emulator.Config)) (*emulator.Emulator, *httptest.Server) {
	t.Helper()
	cfg := emulator.DefaultConfig()
	cfg.Now = func() time.Time { return at }
	cfg.AccountID = 100 // the documentation's samples' account
	if mutate != nil {
		mutate(&cfg)
	}
	em, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	return em, srv
}

// raw sends one API request with the default credentials and returns the
// status and the body as text.
func raw(t *testing.T, srv *httptest.Server, method, path, body string, auth bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(emulator.DefaultPublicKey, emulator.DefaultPrivateKey)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

// TestAPIAnswersAsTheDocumentation replays the documentation's samples, in
// order, and compares the answers as text (bare ids, true, false).
func TestAPIAnswersAsTheDocumentation(t *testing.T) {
	_, srv := start(t, nil)
	steps := []struct {
		method, path, body string
		auth               bool
		status             int
		answer             string
	}{
		{"GET", "/100/webhooks", "", true, 200, `[]`},
		{"POST", "/100/webhooks", `{"url": "http://myemma.com/blog/", "event": "mailing_finish"}`, true, 200, `1024`},
		{"POST", "/100/webhooks", `{"url": "http://tech.myemma.com", "event": "mailing_finish", "method": "get"}`, true, 200, `1025`},
		{"GET", "/100/webhooks/1024", "", true, 200, `{"webhook_id":1024,"account_id":100,"event":"mailing_finish","url":"http://myemma.com/blog/","method":"POST"}`},
		{"PUT", "/100/webhooks/1024", `{"url": "http://tech.myemma.com/"}`, true, 200, `1024`},
		{"PUT", "/100/webhooks/1024", `{"method": "PATCH"}`, true, 200, `false`},
		{"GET", "/100/webhooks", "", true, 200, `[{"webhook_id":1024,"account_id":100,"event":"mailing_finish","url":"http://tech.myemma.com/","method":"POST"},{"webhook_id":1025,"account_id":100,"event":"mailing_finish","url":"http://tech.myemma.com","method":"GET"}]`},
		{"DELETE", "/100/webhooks/1025", "", true, 200, `true`},
		{"GET", "/100/webhooks/1025", "", true, 404, `{"error":"Not found"}`},
		{"PUT", "/100/webhooks/1025", `{"url": "http://x/"}`, true, 404, `{"error":"Not found"}`},
		{"DELETE", "/100/webhooks/1025", "", true, 404, `{"error":"Not found"}`},
		{"POST", "/100/webhooks", `{"url": "http://x/", "event": "member_birthday"}`, true, 400, `{"error":"unknown event"}`},
		{"POST", "/100/webhooks", `{"event": "mailing_finish"}`, true, 400, `{"error":"event and url are required"}`},
		{"DELETE", "/100/webhooks", "", true, 200, `true`},
		{"GET", "/100/webhooks", "", true, 200, `[]`},
		{"GET", "/100/webhooks", "", false, 401, `{"error":"Invalid credentials"}`},
		{"GET", "/101/webhooks", "", true, 401, `{"error":"The keys do not belong to this account"}`},
	}
	for _, s := range steps {
		status, answer := raw(t, srv, s.method, s.path, s.body, s.auth)
		if status != s.status || answer != s.answer {
			t.Fatalf("%s %s %s: %d %s\nwant %d %s", s.method, s.path, s.body, status, answer, s.status, s.answer)
		}
	}
}

func TestEventTypesAreTheDocumentations18(t *testing.T) {
	_, srv := start(t, nil)
	status, answer := raw(t, srv, "GET", "/100/webhooks/events", "", true)
	var got []emmaapi.EventType
	if err := json.Unmarshal([]byte(answer), &got); status != 200 || err != nil {
		t.Fatalf("%d %s", status, answer)
	}
	if len(got) != 18 {
		t.Fatalf("%d event types, want 18", len(got))
	}
	for i, et := range got {
		if et.ID != i+1 || et.Name == "member_add" || et.Description == "" {
			t.Errorf("event type %d: %+v", i, et)
		}
	}
	if diff := cmp.Diff(emmaapi.EventType{Name: "message_share_click", ID: 8, Description: "Fired when a someone follows a link a member has shared."}, got[7]); diff != "" {
		t.Errorf("event 8 is not the documentation's (-want +got):\n%s", diff)
	}
}

func TestRateLimitAnswers403(t *testing.T) {
	_, srv := start(t, func(c *emulator.Config) { c.CallsPerMinute = 2 })
	for i, want := range []int{200, 200, 403} {
		if status, _ := raw(t, srv, "GET", "/100/webhooks", "", true); status != want {
			t.Fatalf("call %d: %d, want %d", i, status, want)
		}
	}
}

// receiver records the callbacks it gets.
type receiver struct {
	mu   sync.Mutex
	got  []*http.Request
	body []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got, rc.body = append(rc.got, r), append(rc.body, string(b))
	rc.mu.Unlock()
	if strings.Contains(r.URL.Path, "broken") {
		http.Error(w, "nope", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte(`{"status":"accepted"}`))
}

func TestFireCallsEveryWebhookOfTheEventByItsMethod(t *testing.T) {
	em, srv := start(t, nil)
	rc := &receiver{}
	target := httptest.NewServer(rc)
	t.Cleanup(target.Close)
	for _, b := range []string{
		`{"event":"message_open","url":"` + target.URL + `/hook/post"}`,
		`{"event":"message_open","url":"` + target.URL + `/hook/get?token=abc","method":"GET"}`,
		`{"event":"message_click","url":"` + target.URL + `/hook/other"}`,
		`{"event":"message_open","url":"` + target.URL + `/broken"}`,
	} {
		if status, answer := raw(t, srv, "POST", "/100/webhooks", b, true); status != 200 {
			t.Fatalf("%d %s", status, answer)
		}
	}
	status, answer := raw(t, srv, "POST", "/_emulator/fire", `{"event":"message_open","data":{"subject":"Hello"}}`, false)
	if status != 200 {
		t.Fatalf("fire: %d %s", status, answer)
	}
	var res emulator.FireResult
	if err := json.Unmarshal([]byte(answer), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Deliveries) != 3 || len(rc.got) != 3 {
		t.Fatalf("%d deliveries, %d received, want 3", len(res.Deliveries), len(rc.got))
	}
	// Emma's layout, and its clock: 10:01:02 UTC is 04:01:02 Central (CST).
	want := `{"event_name": "message_open", "data": {"account_id": 100, "member_id": 6160010001, "mailing_id": 5012340001, "subject": "Hello", "timestamp": "@D:2026-11-20T04:01:02"}}`
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(want)); err != nil {
		t.Fatal(err)
	}
	// The fire answer carries the payload as a JSON value (compacted by
	// encoding/json); the bytes delivered are checked below.
	if string(res.Payload) != compact.String() {
		t.Fatalf("payload\n got %s\nwant %s", res.Payload, compact.String())
	}
	post, get := rc.got[0], rc.got[1]
	if post.Method != "POST" || post.URL.Path != "/hook/post" || rc.body[0] != want || post.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("POST delivery: %s %s %q %s", post.Method, post.URL, rc.body[0], post.Header)
	}
	if get.Method != "GET" || get.URL.Query().Get("payload") != want || get.URL.Query().Get("token") != "abc" || rc.body[1] != "" {
		t.Fatalf("GET delivery: %s %s", get.Method, get.URL)
	}
	d := em.Deliveries()
	if len(d) != 3 || d[0].Status != 200 || d[1].Status != 200 || d[1].Method != "GET" || d[2].Status != 503 || d[0].Response != `{"status":"accepted"}` {
		t.Fatalf("deliveries %+v", d)
	}
	status, answer = raw(t, srv, "GET", "/_emulator/deliveries", "", false)
	var listed []emulator.Delivery
	if err := json.Unmarshal([]byte(answer), &listed); status != 200 || err != nil || len(listed) != 3 || listed[2].WebhookID != 1027 {
		t.Fatalf("deliveries endpoint: %d %s", status, answer)
	}
	// A second fire uses new ids, so the two are distinct events.
	res2, err := em.Fire(context.Background(), emulator.FireRequest{Event: "message_open"})
	if err != nil || string(res2.Payload) == string(res.Payload) {
		t.Fatalf("second fire: %s %v", res2.Payload, err)
	}
}

func TestFireRecordsAnUnreachableReceiver(t *testing.T) {
	em, srv := start(t, func(c *emulator.Config) { c.DeliveryTimeout = time.Second })
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	raw(t, srv, "POST", "/100/webhooks", `{"event":"group_create","url":"`+dead.URL+`/x"}`, true)
	res, err := em.Fire(context.Background(), emulator.FireRequest{Event: "group_create"})
	if err != nil || len(res.Deliveries) != 1 || res.Deliveries[0].Status != 0 || !strings.Contains(res.Deliveries[0].Error, "refused") {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestFireUnknownEvent(t *testing.T) {
	em, srv := start(t, nil)
	if _, err := em.Fire(context.Background(), emulator.FireRequest{Event: "member_birthday"}); !errors.Is(err, emulator.ErrUnknownEvent) {
		t.Fatalf("error %v", err)
	}
	if status, _ := raw(t, srv, "POST", "/_emulator/fire", `{"event":"member_birthday"}`, false); status != 400 {
		t.Fatalf("status %d", status)
	}
	if status, _ := raw(t, srv, "POST", "/_emulator/fire", `not json`, false); status != 400 {
		t.Fatalf("status %d", status)
	}
}

// TestPayloadsAreValidCallbacks decodes the generated payload of every
// event type with the gateway's own decoder, at its defaults (Emma's
// clock): it must be recognized, valid, and fully typed (nothing left in
// Extra), with ids above 2^32, its time read back exactly, and written in
// Emma's layout.
func TestPayloadsAreValidCallbacks(t *testing.T) {
	dec := events.NewDecoder(events.DecoderConfig{})
	for _, typ := range events.Types() {
		t.Run(typ.Name, func(t *testing.T) {
			b, err := emulator.Payload(typ.Name, 1743199, 7, at, nil).JSON()
			if err != nil {
				t.Fatal(err)
			}
			ev, err := dec.Decode(b, events.DeliveryPOST, at)
			if err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if ev.Type.Name != typ.Name || ev.AccountID() != 1743199 || !ev.Time().Equal(at) || len(ev.Extra) != 0 {
				t.Fatalf("%s decoded as %s account %d at %s extra %v", b, ev.Type.Name, ev.AccountID(), ev.Time(), ev.Extra)
			}
			key := ev.Key()
			if len(key) < 10 || key <= "4294967296" {
				t.Fatalf("key %q is not an id above 2^32", key)
			}
			if !strings.HasPrefix(string(b), `{"event_name": "`+typ.Name+`", `) || !strings.Contains(string(b), `"timestamp": "@D:2026-11-20T04:01:02"`) {
				t.Fatalf("not in Emma's layout and clock: %s", b)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, b); err != nil {
				t.Fatal(err)
			}
			// json.dumps: a space after every separator outside strings,
			// none elsewhere.
			if strings.Count(string(b), ", ")+strings.Count(string(b), ": ") != len(b)-compact.Len() {
				t.Fatalf("separators not json.dumps': %s", b)
			}
		})
	}
}

// TestPayloadLayoutIsJSONDumps pins the bytes: member_add in the key order
// of the real captured callback (SPEC section 2), null for the missing
// signup form, the summer clock (CDT, UTC-5), and strings escaped as
// json.dumps(ensure_ascii=True) does (non-ASCII as \u escapes, UTF-16
// pairs beyond the BMP, DEL too; <, > and & as they are).
func TestPayloadLayoutIsJSONDumps(t *testing.T) {
	summer := time.Date(2026, 7, 4, 17, 0, 0, 0, time.UTC)
	b, err := emulator.Payload("member_add", 1743199, 7, summer, nil).JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event_name": "member_add", "resource_url": "https://api.e2ma.net/1743199/members/6160010007", "data": {"signup_form_id": null, "timestamp": "@D:2026-07-04T12:00:00", "group_ids": [4300000001], "account_id": 1743199, "member_id": 6160010007}}`
	if string(b) != want {
		t.Fatalf("member_add\n got %s\nwant %s", b, want)
	}
	b, err = emulator.Payload("message_open", 1, 1, at, map[string]any{"subject": "Caf\u00e9 <b> & \u2615 \U0001D11E \x7f", "zz_extra": map[string]any{"b": 1, "a": []any{1, "x"}}}).JSON()
	if err != nil {
		t.Fatal(err)
	}
	want = `{"event_name": "message_open", "data": {"account_id": 1, "member_id": 6160010001, "mailing_id": 5012340001, "subject": "Caf\u00e9 <b> & \u2615 \ud834\udd1e \u007f", "timestamp": "@D:2026-11-20T04:01:02", "zz_extra": {"a": [1, "x"], "b": 1}}}`
	if string(b) != want {
		t.Fatalf("message_open\n got %s\nwant %s", b, want)
	}
}

func TestStartAndShutdown(t *testing.T) {
	cfg := emulator.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	em, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := em.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown before start: %v", err)
	}
	if err := em.Start(); err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "http", Host: em.Addr(), Path: "/_emulator/deliveries"}
	res, err := http.Get(u.String())
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %v", err, res)
	}
	res.Body.Close()
	for range 2 {
		if err := em.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := http.Get(u.String()); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := emulator.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	err := emulator.Config{}.Validate()
	for _, want := range []string{"listen address", "account id", "keys", "delivery timeout", "first webhook id", "deliveries kept"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

// TestSlowUpdateBodyDoesNotStallOtherCalls: an update whose body is still
// arriving holds no lock, so the other API calls are answered meanwhile.
func TestSlowUpdateBodyDoesNotStallOtherCalls(t *testing.T) {
	_, srv := start(t, nil)
	if status, body := raw(t, srv, http.MethodPost, "/100/webhooks", `{"event":"message_open","url":"https://gw.example.com/webhooks/emma/t"}`, true); status != 200 {
		t.Fatalf("create: %d %s", status, body)
	}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() }) // before the server closes: it waits for the handler
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/100/webhooks/1024", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(emulator.DefaultPublicKey, emulator.DefaultPrivateKey)
	done := make(chan int, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	if _, err := pw.Write([]byte(`{"method":`)); err != nil { // half a body: the handler is reading
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	list, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/100/webhooks", nil)
	list.SetBasicAuth(emulator.DefaultPublicKey, emulator.DefaultPrivateKey)
	res, err := http.DefaultClient.Do(list)
	if err != nil {
		t.Fatalf("list while an update body is arriving: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("list: %d", res.StatusCode)
	}
	_, _ = pw.Write([]byte(`"GET"}`))
	pw.Close()
	if status := <-done; status != 200 {
		t.Fatalf("update: %d", status)
	}
}
