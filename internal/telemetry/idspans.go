package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// IDTracerProvider makes spans that record nothing but carry a valid span
// context each: a trace id (the parent's, or a new one), a new span id,
// and the sampled flag as its sampler decides, as the SDK's spans would.
// It is the gateway's provider when no exporter is configured: every Kafka
// message still carries a traceparent of its own producer span, and every
// log line its trace and span ids, but nothing records what no one
// exports. With the SDK and no exporter, each span still allocated its
// record and copied and normalized every attribute, about a quarter of a
// callback's CPU.
type IDTracerProvider struct {
	embedded.TracerProvider
	sampler sdktrace.Sampler
}

// NewIDTracerProvider returns a provider whose spans' sampled flag follows
// sampler (nil: parent-based always-on, the SDK's default).
func NewIDTracerProvider(sampler sdktrace.Sampler) *IDTracerProvider {
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	return &IDTracerProvider{sampler: sampler}
}

// Tracer returns the provider's tracer; name and options are not kept.
func (p *IDTracerProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return idTracer{p: p}
}

// Shutdown does nothing: nothing is buffered.
func (p *IDTracerProvider) Shutdown(context.Context) error { return nil }

// ForceFlush does nothing: nothing is buffered.
func (p *IDTracerProvider) ForceFlush(context.Context) error { return nil }

type idTracer struct {
	embedded.Tracer
	p *IDTracerProvider
}

// Start returns a span with a fresh span id, child of ctx's span unless an
// option asks for a new root.
func (t idTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	var psc trace.SpanContext
	if !cfg.NewRoot() {
		psc = trace.SpanContextFromContext(ctx)
	}
	tid := psc.TraceID()
	for !tid.IsValid() {
		binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
	}
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.BigEndian.PutUint64(sid[:], rand.Uint64())
	}
	res := t.p.sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: ctx, TraceID: tid, Name: name, Kind: cfg.SpanKind(), Attributes: cfg.Attributes(), Links: cfg.Links(),
	})
	flags := psc.TraceFlags() &^ trace.FlagsSampled
	if res.Decision == sdktrace.RecordAndSample {
		flags |= trace.FlagsSampled
	}
	s := &idSpan{p: t.p, sc: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, TraceState: res.Tracestate})}
	return trace.ContextWithSpan(ctx, s), s
}

// idSpan is a span that records nothing: noop's methods but its own span
// context.
type idSpan struct {
	noop.Span
	p  *IDTracerProvider
	sc trace.SpanContext
}

// SpanContext returns the span's context.
func (s *idSpan) SpanContext() trace.SpanContext { return s.sc }

// TracerProvider returns the provider that made the span.
func (s *idSpan) TracerProvider() trace.TracerProvider { return s.p }
