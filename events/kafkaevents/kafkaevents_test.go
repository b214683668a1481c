package kafkaevents

import (
	"context"
	"testing"

	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestStartProcessIsChildOfTheProducerSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tracer := tp.Tracer("test")

	// The producer side, as the gateway does it.
	pctx, producer := tracer.Start(context.Background(), "send emma.message_open", trace.WithSpanKind(trace.SpanKindProducer))
	m := kafka.Message{Topic: "emma.message_open", Partition: 2, Offset: 41, Key: []byte("6160010079")}
	Propagator().Inject(pctx, Headers{H: &m.Headers})
	producer.End()
	if (Headers{H: &m.Headers}).Get("traceparent") == "" {
		t.Fatal("no traceparent header")
	}

	_, span := StartProcess(context.Background(), tracer, m, "analytics")
	span.End()
	ended := rec.Ended()
	consumer := ended[len(ended)-1]
	if consumer.Parent().SpanID() != producer.SpanContext().SpanID() || consumer.SpanContext().TraceID() != producer.SpanContext().TraceID() {
		t.Fatal("the consumer span is not the producer span's child")
	}
	if consumer.SpanKind() != trace.SpanKindConsumer || consumer.Name() != "process emma.message_open" {
		t.Fatalf("span %s %v", consumer.Name(), consumer.SpanKind())
	}
	got := map[string]string{}
	for _, kv := range consumer.Attributes() {
		got[string(kv.Key)] = kv.Value.String()
	}
	for k, v := range map[string]string{"messaging.system": "kafka", "messaging.destination.partition.id": "2", "messaging.kafka.offset": "41", "messaging.consumer.group.name": "analytics", "messaging.kafka.message.key": "6160010079"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// A message without trace context gives a fresh root.
	if sc := trace.SpanContextFromContext(Context(context.Background(), kafka.Message{})); sc.IsValid() {
		t.Fatal("context from nothing")
	}
}
