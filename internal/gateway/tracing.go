package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// defaultServiceName is the service.name when OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES name none.
const defaultServiceName = "emma-gateway"

// TracerProvider builds the tracer provider from the standard OTEL_*
// environment variables (getenv; the resource reads the process's own):
//
//   - OTEL_TRACES_EXPORTER: otlp, console or none. Unset, it is otlp when an
//     OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), none otherwise: no exporter
//     configured means no export.
//   - OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL:
//     http/protobuf (default) or grpc. Endpoint, headers, timeout,
//     compression and TLS are read by the exporters themselves.
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: the resource.
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: read by the SDK.
//
// Spans are made even without an exporter, so that every Kafka message
// carries a valid traceparent and every log line its ids: then by a
// [telemetry.IDTracerProvider], whose spans carry ids and the sampled flag
// OTEL_TRACES_SAMPLER decides but record nothing (the SDK would record
// each span and its attributes only to drop them). Shut the provider down
// to flush what is queued.
func TracerProvider(ctx context.Context, version string, getenv func(string) string) (Provider, error) {
	res, err := resource.Merge(
		resource.NewSchemaless(semconv.ServiceName(defaultServiceName), semconv.ServiceVersion(version)),
		resource.Environment(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	exp, err := spanExporter(ctx, getenv)
	if err != nil {
		return nil, err
	}
	if exp == nil {
		return telemetry.NewIDTracerProvider(sampler(getenv)), nil
	}
	return sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp)), nil
}

// Provider is a tracer provider with the lifecycle serve drives.
type Provider interface {
	trace.TracerProvider
	ForceFlush(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// sampler is the sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// name, as the SDK reads them (which it does itself when it makes the
// spans): parent-based always-on by default and for a name it does not
// know, ratio 1 for a missing or bad argument.
func sampler(getenv func(string) string) sdktrace.Sampler {
	ratio := func() float64 {
		r, err := strconv.ParseFloat(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG")), 64)
		if err != nil || r < 0 || r > 1 {
			return 1
		}
		return r
	}
	switch strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))) {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio())
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio()))
	}
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

func spanExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	kind := strings.TrimSpace(strings.ToLower(getenv("OTEL_TRACES_EXPORTER")))
	if kind == "" {
		kind = "none"
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
			kind = "otlp"
		}
	}
	switch kind {
	case "none":
		return nil, nil
	case "console":
		return stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	case "otlp":
		proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if proto == "" {
			proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		switch proto {
		case "", "http/protobuf":
			return otlptracehttp.New(ctx)
		case "grpc":
			return otlptracegrpc.New(ctx)
		}
		return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", proto)
	}
	return nil, errors.New("tracing: OTEL_TRACES_EXPORTER " + fmt.Sprintf("%q", kind) + ": want otlp, console or none")
}
