// Package kafkaevents is for downstream Go services that consume the
// gateway's topics with segmentio/kafka-go: [Decode] turns a message into
// the typed [events.Event], and [Context] or [StartProcess] continue the
// gateway's trace from the message's headers. It also owns the wire
// contract (contract.go): the header names, content types, CloudEvents
// source and type prefixes and default topic names, which the gateway's
// producer imports from here.
//
// It depends on kafka-go and OpenTelemetry's API only; package events stays
// free of both.
package kafkaevents

import (
	"context"
	"strconv"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Headers adapts a kafka-go message's headers to OpenTelemetry's
// propagation.TextMapCarrier.
type Headers struct{ H *[]kafka.Header }

var _ propagation.TextMapCarrier = Headers{}

// Get returns the first value of key.
func (c Headers) Get(key string) string {
	for _, h := range *c.H {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces the value of key, or adds it.
func (c Headers) Set(key, value string) {
	for i, h := range *c.H {
		if h.Key == key {
			(*c.H)[i].Value = []byte(value)
			return
		}
	}
	*c.H = append(*c.H, kafka.Header{Key: key, Value: []byte(value)})
}

// Keys lists the header keys.
func (c Headers) Keys() []string {
	keys := make([]string, len(*c.H))
	for i, h := range *c.H {
		keys[i] = h.Key
	}
	return keys
}

// Context returns ctx carrying the trace context of m (the gateway's
// producer span), so that spans started from it join the callback's trace.
func Context(ctx context.Context, m kafka.Message) context.Context {
	return Propagator().Extract(ctx, Headers{&m.Headers})
}

// StartProcess starts a CONSUMER span "process {topic}" as a child of the
// gateway's producer span, with the messaging semantic-convention
// attributes. End it when the message is handled.
func StartProcess(ctx context.Context, tracer trace.Tracer, m kafka.Message, consumerGroup string) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.operation.name", "process"),
		attribute.String("messaging.destination.name", m.Topic),
		attribute.String("messaging.destination.partition.id", strconv.Itoa(m.Partition)),
		attribute.Int64("messaging.kafka.offset", m.Offset),
	}
	if consumerGroup != "" {
		attrs = append(attrs, attribute.String("messaging.consumer.group.name", consumerGroup))
	}
	if len(m.Key) > 0 {
		attrs = append(attrs, attribute.String("messaging.kafka.message.key", string(m.Key)))
	}
	return tracer.Start(Context(ctx, m), "process "+m.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}
