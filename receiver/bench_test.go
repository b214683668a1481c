package receiver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// BenchmarkWebhook measures the whole HTTP handler (middleware, token
// check, read, decode, validate, the answer) with a sink that takes every
// event at once, so that what is left is the receiver's own cost. Spans are
// made by the SDK without an exporter, as in production with tracing off;
// the access log is formatted as JSON, as in production, and discarded.
func BenchmarkWebhook(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	discard := SinkFuncs{
		PublishFunc:    func(context.Context, *events.Event) error { return nil },
		DeadLetterFunc: func(context.Context, *events.Rejection) error { return nil },
	}
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	set := telemetry.Settings{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), TracerProvider: tp}
	s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: discard}, set)
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	target := "http://gateway.test/webhooks/emma/" + token
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		b.Run(method, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req *http.Request
				if method == http.MethodPost {
					req = httptest.NewRequest(method, target, strings.NewReader(openEvent))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req = httptest.NewRequest(method, target+"?payload="+url.QueryEscape(openEvent), nil)
				}
				req.RemoteAddr = "192.0.2.1:4321"
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", method, w.Code, w.Body)
				}
			}
		})
	}
}
