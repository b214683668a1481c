package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
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
// carries a valid traceparent; they are then dropped at once. Shut the
// provider down to flush what is queued.
func TracerProvider(ctx context.Context, version string, getenv func(string) string) (*sdktrace.TracerProvider, error) {
	res, err := resource.Merge(
		resource.NewSchemaless(semconv.ServiceName(defaultServiceName), semconv.ServiceVersion(version)),
		resource.Environment(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exp, err := spanExporter(ctx, getenv)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
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
