package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

const incomingTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func spanByName(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			if found != nil {
				t.Fatalf("two spans named %q", name)
			}
			found = s
		}
	}
	if found == nil {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("no span %q among %v", name, names)
	}
	return found
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestTraceFromCallbackToKafkaMessage checks the span tree of a POST (with
// an incoming traceparent) and a GET callback: server span, decode and
// validate, and one producer span whose context is the message's
// traceparent.
func TestTraceFromCallbackToKafkaMessage(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	// The GET repeats the POST's callback: without the dedup window it is
	// published again, with spans of its own.
	tg := startTestGateway(t, func(c *gateway.Config) { c.Dedup.Window = 0 }, func(s *telemetry.Settings) { s.TracerProvider = tp })
	payload := openCallback(7)
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			rec.Reset()
			target := tg.url + "/webhooks/emma/" + testToken
			var req *http.Request
			if method == http.MethodPost {
				req, _ = http.NewRequest(method, target, strings.NewReader(payload))
				req.Header.Set("traceparent", incomingTraceparent)
			} else {
				req, _ = http.NewRequest(method, target+"?payload="+url.QueryEscape(payload), nil)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("callback: %v %v", err, res)
			}
			res.Body.Close()
			spans := rec.Ended()
			server := spanByName(t, spans, method+" /webhooks/emma")
			decode := spanByName(t, spans, "decode")
			validate := spanByName(t, spans, "validate")
			send := spanByName(t, spans, "send emma.message_open")
			if server.SpanKind() != trace.SpanKindServer || send.SpanKind() != trace.SpanKindProducer {
				t.Fatalf("kinds: server %v, send %v", server.SpanKind(), send.SpanKind())
			}
			for _, child := range []sdktrace.ReadOnlySpan{decode, validate, send} {
				if child.Parent().SpanID() != server.SpanContext().SpanID() || child.SpanContext().TraceID() != server.SpanContext().TraceID() {
					t.Fatalf("%s is not a child of the server span", child.Name())
				}
			}
			if method == http.MethodPost && server.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Fatalf("the incoming trace was not continued: %s", server.SpanContext().TraceID())
			}
			if a := attrs(decode); a["emma.event_name"].AsString() != "message_open" {
				t.Fatalf("decode attributes %v", a)
			}
			if a := attrs(validate); a["emma.event_name"].AsString() != "message_open" {
				t.Fatalf("validate attributes %v", a)
			}
			a := attrs(send)
			want := map[attribute.Key]string{
				"messaging.system":            "kafka",
				"messaging.operation.type":    "send",
				"messaging.operation.name":    "send",
				"messaging.destination.name":  "emma.message_open",
				"messaging.kafka.message.key": "6000000007",
			}
			for k, v := range want {
				if a[k].AsString() != v {
					t.Errorf("send span %s = %q, want %q", k, a[k].AsString(), v)
				}
			}
			if _, ok := a["messaging.destination.partition.id"]; !ok {
				t.Errorf("send span has no partition: %v", a)
			}
			if _, ok := a["messaging.kafka.offset"]; !ok {
				t.Errorf("send span has no offset: %v", a)
			}
			if a := attrs(server); a["http.route"].AsString() != "/webhooks/emma" && a["http.request.method"].AsString() != method {
				t.Errorf("server span attributes %v", a)
			}
			// The consumed message continues the producer span.
			msgs := consume(t, tg.brokers, "emma.message_open")
			last := msgs[0]
			for _, m := range msgs {
				if m.Offset >= last.Offset && m.Partition == last.Partition {
					last = m
				}
			}
			sc := trace.SpanContextFromContext(kafkaevents.Context(context.Background(), last))
			if sc.SpanID() != send.SpanContext().SpanID() || sc.TraceID() != server.SpanContext().TraceID() {
				t.Fatalf("message traceparent %s/%s, want producer span %s/%s", sc.TraceID(), sc.SpanID(), send.SpanContext().TraceID(), send.SpanContext().SpanID())
			}
			assertNoSecretInSpans(t, spans, testToken, "payload=", `"event_name"`, "load")
		})
	}
}

func assertNoSecretInSpans(t *testing.T, spans []sdktrace.ReadOnlySpan, secrets ...string) {
	t.Helper()
	for _, s := range spans {
		texts := []string{s.Name()}
		for _, kv := range s.Attributes() {
			texts = append(texts, string(kv.Key)+"="+kv.Value.String())
		}
		for _, e := range s.Events() {
			for _, kv := range e.Attributes {
				texts = append(texts, kv.Value.String())
			}
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %q carries %q: %s", s.Name(), secret, text)
				}
			}
		}
	}
}

// TestSpansReachAnOTLPHTTPEndpoint runs a real OTLP/HTTP receiver on
// loopback, configures the gateway with the standard OTEL_* variables and
// decodes the protobuf it receives.
func TestSpansReachAnOTLPHTTPEndpoint(t *testing.T) {
	var mu sync.Mutex
	var got []*collectortrace.ExportTraceServiceRequest
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &collectortrace.ExportTraceServiceRequest{}
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer otlp.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	tp, err := gateway.TracerProvider(context.Background(), "test", os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	tg := startTestGateway(t, nil, func(s *telemetry.Settings) { s.TracerProvider = tp })
	if status, _ := tg.callback(t, http.MethodPost, openCallback(1)); status != 200 {
		t.Fatalf("status %d", status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	names := map[string]bool{}
	var service string
	for _, req := range got {
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.Resource.Attributes {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names[s.Name] = true
				}
			}
		}
	}
	for _, want := range []string{"POST /webhooks/emma", "decode", "validate", "send emma.message_open"} {
		if !names[want] {
			t.Errorf("the OTLP endpoint did not receive span %q (got %v)", want, names)
		}
	}
	if service != "emma-gateway" {
		t.Errorf("service.name %q", service)
	}
	_ = tp.Shutdown(context.Background())
}

// TestMetricsAfterTraffic scrapes /metrics after accepted, invalid,
// unauthorized and spooled callbacks.
func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, func(c *gateway.Config) { c.Kafka.Spool.Dir = t.TempDir() }, func(s *telemetry.Settings) { s.Registerer = telemetry.NewRegistry() })
	for range 2 {
		if status, _ := tg.callback(t, http.MethodPost, openCallback(1)); status != 200 {
			t.Fatal(status)
		}
	}
	tg.callback(t, http.MethodGet, openCallback(2))
	tg.callback(t, http.MethodGet, `{"event_name":"message_open","data":{"account_id":1}}`)
	tg.callback(t, http.MethodPost, `{"event_name":"member_birthday","data":{"account_id":1}}`)
	res, _ := http.Post(tg.url+"/webhooks/emma/wrong-token-00000000000", "application/json", strings.NewReader(openCallback(3)))
	res.Body.Close()

	res, err := http.Get(tg.url + "/metrics")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/metrics: %v %v", err, res)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := string(b)
	for _, want := range []string{
		`emma_gateway_webhook_requests_total{delivery="POST",event="message_open",outcome="accepted"} 1`,
		// The second POST is the first's duplicate: answered, not published.
		`emma_gateway_webhook_requests_total{delivery="POST",event="message_open",outcome="duplicate"} 1`,
		`emma_gateway_dedup_remembered 3`,
		`emma_gateway_webhook_requests_total{delivery="GET",event="message_open",outcome="accepted"} 1`,
		`emma_gateway_webhook_requests_total{delivery="GET",event="message_open",outcome="invalid"} 1`,
		`emma_gateway_webhook_requests_total{delivery="POST",event="unrecognized",outcome="unrecognized"} 1`,
		`emma_gateway_webhook_requests_total{delivery="POST",event="",outcome="unauthorized"} 1`,
		`emma_gateway_webhook_request_duration_seconds_count{outcome="accepted"} 2`,
		`emma_gateway_webhook_requests_in_flight 0`,
		`emma_gateway_publish_duration_seconds_count{result="kafka",topic="emma.message_open"} 2`,
		`emma_gateway_publish_duration_seconds_count{result="kafka",topic="emma.deadletter"} 1`,
		`emma_gateway_publish_duration_seconds_count{result="kafka",topic="emma.unrecognized"} 1`,
		`emma_gateway_kafka_producer_messages_total 4`,
		`emma_gateway_kafka_producer_errors_total 0`,
		`emma_gateway_spool_records 0`,
		`emma_gateway_spool_oldest_age_seconds 0`,
		`emma_gateway_spool_replayed_total 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, testToken) || strings.Contains(text, "wrong-token") {
		t.Error("/metrics shows a token")
	}
}
