package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// tracedServer is a server whose spans rec records.
func tracedServer(t *testing.T, sink Sink) (*httptest.Server, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	set := testSettings(t)
	set.TracerProvider, set.Propagator = tp, propagation.TraceContext{}
	s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: sink, Mounts: metricsMount(set)}, set)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, rec
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func serverSpanOf(t *testing.T, rec *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			return s
		}
	}
	t.Fatalf("no server span among %d", len(rec.Ended()))
	return nil
}

// The server span continues the caller's trace, is the parent of decode and
// validate, names the route and carries the HTTP attributes, but neither the
// token nor the query.
func TestServerSpan(t *testing.T) {
	ts, rec := tracedServer(t, &recorder{})
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			rec.Reset()
			target := ts.URL + "/webhooks/emma/" + token
			var req *http.Request
			if method == http.MethodPost {
				req = post(t, target, "application/json", openEvent)
			} else {
				req, _ = http.NewRequest(method, target+"?payload="+url.QueryEscape(openEvent), nil)
			}
			req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			req.Header.Set("User-Agent", "emma-test")
			if a := do(t, req); a.status != http.StatusOK {
				t.Fatalf("status %d %v", a.status, a.body)
			}
			server := serverSpanOf(t, rec)
			if server.Name() != method+" /webhooks/emma" {
				t.Errorf("name %q", server.Name())
			}
			if server.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || server.Parent().SpanID().String() != "00f067aa0ba902b7" {
				t.Errorf("the incoming trace was not continued: %s, parent %s", server.SpanContext().TraceID(), server.Parent().SpanID())
			}
			children := 0
			for _, s := range rec.Ended() {
				if s.Name() == "decode" || s.Name() == "validate" {
					children++
					if s.Parent().SpanID() != server.SpanContext().SpanID() {
						t.Errorf("%s is not a child of the server span", s.Name())
					}
				}
			}
			if children != 2 {
				t.Errorf("%d decode/validate spans, want 2", children)
			}
			a := spanAttrs(server)
			u, _ := url.Parse(ts.URL)
			want := map[attribute.Key]string{
				"http.request.method":      method,
				"url.path":                 "/webhooks/emma",
				"url.scheme":               "http",
				"server.address":           u.Hostname(),
				"network.peer.address":     "127.0.0.1",
				"client.address":           "127.0.0.1",
				"user_agent.original":      "emma-test",
				"network.protocol.version": "1.1",
			}
			for k, v := range want {
				if a[k].AsString() != v {
					t.Errorf("%s = %q, want %q", k, a[k].AsString(), v)
				}
			}
			if a["http.response.status_code"].AsInt64() != 200 || a["http.response.body.size"].AsInt64() <= 0 || a["server.port"].AsInt64() <= 0 || a["network.peer.port"].AsInt64() <= 0 {
				t.Errorf("attributes %v", a)
			}
			if method == http.MethodPost && a["http.request.body.size"].AsInt64() != int64(len(openEvent)) {
				t.Errorf("http.request.body.size %v, want %d", a["http.request.body.size"], len(openEvent))
			}
			if server.Status().Code != codes.Unset {
				t.Errorf("status %v", server.Status())
			}
			for _, kv := range server.Attributes() {
				if v := kv.Value.String(); strings.Contains(v, token) || strings.Contains(v, "payload") {
					t.Errorf("%s carries the token or the query: %s", kv.Key, v)
				}
			}
		})
	}
}

// An answer of 5xx marks the server span as an error; a 4xx does not; a
// path the gateway does not serve is no span name.
func TestServerSpanStatus(t *testing.T) {
	ts, rec := tracedServer(t, &recorder{err: errors.New("kafka down")})
	cases := []struct {
		method, path string
		status       int
		name         string
		code         codes.Code
	}{
		{http.MethodPost, "/webhooks/emma/" + token, http.StatusServiceUnavailable, "POST /webhooks/emma", codes.Error},
		{http.MethodPost, "/webhooks/emma/wrong-token-000000000000", http.StatusUnauthorized, "POST /webhooks/emma", codes.Unset},
		{http.MethodGet, "/healthz", http.StatusOK, "GET /healthz", codes.Unset},
		{http.MethodGet, "/metrics", http.StatusOK, "GET /metrics", codes.Unset},
		{http.MethodGet, "/no/such/secret-path", http.StatusNotFound, "GET unmatched", codes.Unset},
	}
	for _, tc := range cases {
		rec.Reset()
		req := post(t, ts.URL+tc.path, "application/json", openEvent)
		if tc.method == http.MethodGet {
			req, _ = http.NewRequest(tc.method, ts.URL+tc.path, nil)
		}
		a := doRaw(t, req)
		if a.status != tc.status {
			t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, a.status, tc.status)
		}
		s := serverSpanOf(t, rec)
		if s.Name() != tc.name || s.Status().Code != tc.code || spanAttrs(s)["http.response.status_code"].AsInt64() != int64(tc.status) {
			t.Errorf("%s %s: span %q status %v attributes %v", tc.method, tc.path, s.Name(), s.Status(), spanAttrs(s))
		}
	}
}

// The access log line names the server span: its trace and span ids.
func TestAccessLogCarriesServerSpanIDs(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	logs := &syncBuffer{}
	set := telemetry.Settings{Logger: slog.New(slog.NewJSONHandler(logs, nil)), TracerProvider: tp, Registerer: prometheus.NewRegistry()}
	s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: &recorder{}}, set)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if a := do(t, post(t, ts.URL+"/webhooks/emma/"+token, "application/json", openEvent)); a.status != http.StatusOK {
		t.Fatalf("status %d", a.status)
	}
	server := serverSpanOf(t, rec)
	var line struct {
		Msg     string `json:"msg"`
		TraceID string `json:"trace_id"`
		SpanID  string `json:"span_id"`
	}
	for l := range strings.Lines(logs.String()) {
		if err := json.Unmarshal([]byte(l), &line); err == nil && line.Msg == "request" {
			break
		}
	}
	if line.TraceID != server.SpanContext().TraceID().String() || line.SpanID != server.SpanContext().SpanID().String() {
		t.Fatalf("access log ids %s/%s, server span %s/%s", line.TraceID, line.SpanID, server.SpanContext().TraceID(), server.SpanContext().SpanID())
	}
}
