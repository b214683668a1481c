// Package propagate holds the one trace-context propagation of the gateway,
// shared by the telemetry settings (HTTP in, Kafka out) and by
// events/kafkaevents (what consumers read). It imports only
// OpenTelemetry's propagation API, so that neither side links the other's
// dependencies.
package propagate

import "go.opentelemetry.io/otel/propagation"

// Propagator returns W3C trace-context (traceparent, tracestate) and
// baggage, a new value each call: there is no shared mutable propagator.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}
