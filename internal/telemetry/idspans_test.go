package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestIDTracerProviderSpans(t *testing.T) {
	tr := NewIDTracerProvider(nil).Tracer("test")
	ctx, root := tr.Start(context.Background(), "root")
	rsc := root.SpanContext()
	if !rsc.IsValid() || !rsc.IsSampled() || root.IsRecording() {
		t.Fatalf("root: valid %v sampled %v recording %v", rsc.IsValid(), rsc.IsSampled(), root.IsRecording())
	}
	if !trace.SpanFromContext(ctx).SpanContext().Equal(rsc) {
		t.Fatal("the context does not carry the span")
	}
	seen := map[trace.SpanID]bool{rsc.SpanID(): true}
	for range 1000 {
		_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindProducer))
		sc := child.SpanContext()
		if sc.TraceID() != rsc.TraceID() || !sc.IsSampled() || seen[sc.SpanID()] || !sc.SpanID().IsValid() {
			t.Fatalf("child %v of %v: same trace, sampled, a new span id each", sc, rsc)
		}
		seen[sc.SpanID()] = true
		child.SetAttributes() // records nothing, panics at nothing
		child.End()
	}
	if _, other := tr.Start(context.Background(), "root"); other.SpanContext().TraceID() == rsc.TraceID() {
		t.Fatal("two roots share a trace id")
	}
	if _, nr := tr.Start(ctx, "new root", trace.WithNewRoot()); nr.SpanContext().TraceID() == rsc.TraceID() {
		t.Fatal("WithNewRoot kept the parent's trace")
	}
}

// The sampled flag is the sampler's decision, the parent's for a
// parent-based one, as with the SDK.
func TestIDTracerProviderSampledFlag(t *testing.T) {
	remote := func(sampled bool) context.Context {
		cfg := trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, Remote: true}
		if sampled {
			cfg.TraceFlags = trace.FlagsSampled
		}
		return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(cfg))
	}
	cases := []struct {
		name    string
		sampler sdktrace.Sampler
		ctx     context.Context
		want    bool
	}{
		{"parent-based, sampled parent", nil, remote(true), true},
		{"parent-based, unsampled parent", nil, remote(false), false},
		{"never", sdktrace.NeverSample(), context.Background(), false},
		{"always, unsampled parent", sdktrace.AlwaysSample(), remote(false), true},
		{"ratio 0", sdktrace.TraceIDRatioBased(0), context.Background(), false},
	}
	for _, tc := range cases {
		_, s := NewIDTracerProvider(tc.sampler).Tracer("t").Start(tc.ctx, "s")
		if s.SpanContext().IsSampled() != tc.want {
			t.Errorf("%s: sampled %v, want %v", tc.name, s.SpanContext().IsSampled(), tc.want)
		}
		if parent := trace.SpanContextFromContext(tc.ctx); parent.IsValid() && s.SpanContext().TraceID() != parent.TraceID() {
			t.Errorf("%s: the remote parent's trace was not continued", tc.name)
		}
	}
}
