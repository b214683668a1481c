package receiver

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

type originalURLKey struct{}

// traced wraps h in otelhttp's server instrumentation (server span, incoming
// traceparent continued) without letting it see the URL: the webhook path
// may hold the token and the query the token and the payload, and neither
// may reach a span. The request otelhttp sees has the token segment
// replaced and no query; h gets the original back.
func traced(h http.Handler, tp trace.TracerProvider, prop propagation.TextMapPropagator) http.Handler {
	restore := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := r.Context().Value(originalURLKey{}).(*url.URL); ok {
			r.URL = u
			r.RequestURI = u.RequestURI()
		}
		h.ServeHTTP(w, r)
	})
	inst := otelhttp.NewHandler(restore, "http",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(prop),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method + " " + routeOf(r.URL.Path)
		}),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redacted := *r.URL
		redacted.Path = routeOf(r.URL.Path)
		redacted.RawPath, redacted.RawQuery, redacted.ForceQuery, redacted.User = "", "", false, nil
		r2 := r.WithContext(context.WithValue(r.Context(), originalURLKey{}, r.URL))
		r2.URL = &redacted
		r2.RequestURI = redacted.Path
		inst.ServeHTTP(w, r2)
	})
}

// routeOf maps a request path to the route it can show in telemetry: the
// webhook path without its token; the other known paths as they are;
// anything else as "unmatched" (an attacker's path is no span name).
func routeOf(path string) string {
	switch {
	case path == "/webhooks/emma" || strings.HasPrefix(path, "/webhooks/emma/"):
		return "/webhooks/emma"
	case path == "/healthz" || path == "/readyz" || path == "/metrics":
		return path
	}
	return "unmatched"
}
