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
// known are the other paths a span may name (health, readiness, the
// mounts); a pattern ending in "*" names every path below it.
func traced(h http.Handler, tp trace.TracerProvider, prop propagation.TextMapPropagator, known []string) http.Handler {
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
			return r.Method + " " + routeOf(r.URL.Path, known)
		}),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redacted := *r.URL
		redacted.Path = routeOf(r.URL.Path, known)
		redacted.RawPath, redacted.RawQuery, redacted.ForceQuery, redacted.User = "", "", false, nil
		r2 := r.WithContext(context.WithValue(r.Context(), originalURLKey{}, r.URL))
		r2.URL = &redacted
		r2.RequestURI = redacted.Path
		inst.ServeHTTP(w, r2)
	})
}

// routeOf maps a request path to the route it can show in telemetry: the
// webhook path without its token; the other known paths as they are (a
// pattern for those under a "*" mount); anything else as "unmatched" (an
// attacker's path is no span name).
func routeOf(path string, known []string) string {
	if path == "/webhooks/emma" || strings.HasPrefix(path, "/webhooks/emma/") {
		return "/webhooks/emma"
	}
	for _, k := range known {
		if prefix, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(path, prefix) || path == k {
			return k
		}
	}
	return "unmatched"
}
