package receiver

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/dedup"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// BenchmarkWebhookDedup is BenchmarkWebhook's POST with a new callback
// each time (another member_id, so another event_id), without and with the
// default dedup window: the difference is the window's cost per callback,
// evictions included once it is full. "duplicate" sends one callback again
// and again: every copy after the first is answered without a publish; its
// baseline is "off-same", the same callback again without a window (one
// body sent over and over is cheaper to serve than new ones, window or not).
func BenchmarkWebhookDedup(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	discard := SinkFuncs{
		PublishFunc:    func(context.Context, *events.Event) error { return nil },
		DeadLetterFunc: func(context.Context, *events.Rejection) error { return nil },
	}
	prefix, suffix, _ := strings.Cut(openEvent, "6160010079")
	for _, bc := range []struct {
		name   string
		window bool
		same   bool
	}{{"off", false, false}, {"on", true, false}, {"off-same", false, true}, {"duplicate", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Tokens = []string{token}
			var w *dedup.Window
			if bc.window {
				var err error
				if w, err = dedup.New(dedup.DefaultConfig()); err != nil {
					b.Fatal(err)
				}
			}
			set := telemetry.Settings{Logger: slog.New(slog.DiscardHandler), TracerProvider: tp}
			s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: discard, Dedup: w}, set)
			if err != nil {
				b.Fatal(err)
			}
			h := s.Handler()
			target := "http://gateway.test/webhooks/emma/" + token
			b.ReportAllocs()
			member := int64(1_000_000_000)
			for b.Loop() {
				if !bc.same {
					member++
				}
				body := prefix + strconv.FormatInt(member, 10) + suffix
				req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.RemoteAddr = "192.0.2.1:4321"
				rw := httptest.NewRecorder()
				h.ServeHTTP(rw, req)
				if rw.Code != http.StatusOK {
					b.Fatalf("%d %s", rw.Code, rw.Body)
				}
			}
		})
	}
}
