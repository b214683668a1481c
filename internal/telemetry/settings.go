// Package telemetry holds what every component receives to log, trace and
// count: one logger, one tracer provider, one propagator, the Prometheus
// registerer on which each component registers its own metrics. It is the
// only telemetry plumbing receiver/ and sinks/ share; exporters are set up
// in cmd/ (tracing.go), so neither links them.
package telemetry

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/emma-gateway/emma-gateway/internal/propagate"
)

// Settings are a component's logger, tracer provider and propagator.
type Settings struct {
	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger
	// TracerProvider makes the component's spans. Default: no-op.
	TracerProvider trace.TracerProvider
	// Propagator carries trace context across HTTP and Kafka. Default: W3C
	// trace-context and baggage.
	Propagator propagation.TextMapPropagator
	// Registerer is where each component registers its own Prometheus
	// metrics. Default: a fresh registry nobody scrapes.
	Registerer prometheus.Registerer
}

// WithDefaults returns s with every nil field set to its default.
func (s Settings) WithDefaults() Settings {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.TracerProvider == nil {
		s.TracerProvider = noop.NewTracerProvider()
	}
	if s.Propagator == nil {
		s.Propagator = propagate.Propagator()
	}
	if s.Registerer == nil {
		s.Registerer = prometheus.NewRegistry()
	}
	return s
}
