package receiver

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// fuzzServer is the real handler over a recording sink, logging nowhere.
func fuzzServer(f *testing.F) (http.Handler, *recorder) {
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	sink := &recorder{}
	set := telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}
	s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: sink}, set)
	if err != nil {
		f.Fatal(err)
	}
	return s.Handler(), sink
}

// checkAnswer is the contract of any answer to any input: a status from
// SPEC's table for what a sender can get wrong (never a 5xx with a working
// sink), a JSON body of the right content type, and a 200 only for an
// event the sink holds.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, sink *recorder) {
	t.Helper()
	switch rec.Code {
	case 200, 400, 403, 413, 414, 422:
	default:
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("answer is not JSON: %s", rec.Body)
	}
	ct := rec.Header().Get("Content-Type")
	if rec.Code != 200 {
		if ct != "application/problem+json" {
			t.Fatalf("status %d with content type %q", rec.Code, ct)
		}
		return
	}
	var a Accepted
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.EventID == "" {
		t.Fatalf("accepted answer %s (%v)", rec.Body, err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	last := sink.events[len(sink.events)-1]
	if last.ID != a.EventID {
		t.Fatalf("answered %s, sink holds %s", a.EventID, last.ID)
	}
	if b, err := json.Marshal(last); err != nil || !json.Valid(b) {
		t.Fatalf("accepted event does not normalize: %v", err)
	}
	sink.events = sink.events[:0] // bounded memory over a long fuzz run
}

// FuzzWebhookPOST drives the POST path of the real handler with any body
// and content type. The committed corpus in testdata/fuzz/FuzzWebhookPOST
// runs as a plain test.
func FuzzWebhookPOST(f *testing.F) {
	for _, seed := range []struct{ body, ct string }{
		{openEvent, "application/json"},
		{openEvent, ""},
		{url.Values{"payload": {openEvent}}.Encode(), "application/x-www-form-urlencoded"},
		{`{"event_name":"member_update","data":{"account_id":1,"member_id":1e400}}`, "text/plain"},
		{`{"event_name":"message_click","data":{"account_id":1,"member_id":"12x"}}`, "application/json"},
		{"[[[[[[[[", "application/json"},
		{"payload=%7B", "application/x-www-form-urlencoded"},
	} {
		f.Add([]byte(seed.body), seed.ct)
	}
	h, sink := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/emma/"+token, bytes.NewReader(body))
		req.Header["Content-Type"] = []string{contentType}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if len(bytes.TrimSpace(body)) == 0 && rec.Code != 400 {
			t.Fatalf("empty body: status %d", rec.Code)
		}
		checkAnswer(t, rec, sink)
	})
}

// FuzzWebhookGET drives the GET path of the real handler with any payload
// query parameter, and any raw query after it. The committed corpus in
// testdata/fuzz/FuzzWebhookGET runs as a plain test.
func FuzzWebhookGET(f *testing.F) {
	f.Add(openEvent, "")
	f.Add(openEvent, "utm_source=emma&token=x")
	f.Add(`{"event_name":"member_birthday"}`, "payload=second")
	f.Add("\xff\xfe", "%zz")
	f.Add(`{"event_name":"message_open","data":{"account_id":99999999999999999999}}`, ";")
	h, sink := fuzzServer(f)
	f.Fuzz(func(t *testing.T, payload, rawQuery string) {
		target := "/webhooks/emma/" + token + "?payload=" + url.QueryEscape(payload)
		if rawQuery != "" {
			target += "&" + url.PathEscape(rawQuery)
		}
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if err != nil {
			t.Fatalf("escaped query does not make a request: %v", err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, sink)
	})
}
