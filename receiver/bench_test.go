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
	"time"

	"github.com/labstack/echo/v4"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/console"
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
	discard := placingDiscard{}
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	// console: the recorder on (with a sink that says where events went,
	// as sinks.Kafka does), beside off, in the same run.
	for _, console_ := range []bool{false, true} {
		set := telemetry.Settings{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), TracerProvider: tp, Registerer: prometheus.NewRegistry()}
		deps := Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: discard}
		name := "console=off"
		if console_ {
			deps.Recorder = console.NewRecorder(console.DefaultRecorderConfig())
			name = "console=on"
		}
		s, err := New(cfg, deps, set)
		if err != nil {
			b.Fatal(err)
		}
		h := s.Handler()
		target := "http://gateway.test/webhooks/emma/" + token
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			b.Run(name+"/"+method, func(b *testing.B) {
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
}

// placingDiscard takes every event at once and says where it went.
type placingDiscard struct{}

func (placingDiscard) Publish(context.Context, *events.Event) error        { return nil }
func (placingDiscard) DeadLetter(context.Context, *events.Rejection) error { return nil }
func (placingDiscard) PublishPlaced(context.Context, *events.Event) (Placement, error) {
	return Placement{Topic: "emma.message_open", Partition: 1, Offset: 42}, nil
}
func (placingDiscard) DeadLetterPlaced(context.Context, *events.Rejection) (Placement, error) {
	return Placement{Topic: "emma.deadletter", Partition: 0, Offset: 7}, nil
}

// BenchmarkConsoleBookkeeping measures what the console adds to one
// accepted callback, apart from the handler whose own cost drowns it on a
// shared machine: leaving the placement in the request's context and
// handing the answer to the recorder.
func BenchmarkConsoleBookkeeping(b *testing.B) {
	rec := console.NewRecorder(console.DefaultRecorderConfig())
	s := &Server{deps: Deps{Recorder: rec}}
	ev, err := events.NewDecoder(events.DecoderConfig{}).Decode([]byte(openEvent), events.DeliveryPOST, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	e := echo.New()
	req := httptest.NewRequest(http.MethodPost, "http://gateway.test/webhooks/emma", nil)
	c := e.NewContext(req, httptest.NewRecorder())
	setEvent(c, ev.Name, ev.ID)
	setOutcome(c, outcomeAccepted)
	c.Set(ctxEvent, ev)
	start := time.Now()
	b.ReportAllocs()
	var offset int64
	for b.Loop() {
		offset++ // a value known at run time, boxed as in the handler
		s.setPlacement(c, Placement{Topic: "emma.message_open", Partition: 1, Offset: offset})
		s.record(c, start, http.StatusOK, outcomeAccepted, 3*time.Millisecond)
	}
}
