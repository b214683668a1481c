package receiver

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// serverSpan is the server span of every request (SPEC section 5): it
// continues an incoming traceparent, is named "{method} {route}" and
// carries the HTTP semantic-convention attributes otelhttp's server
// instrumentation gave it, but never the URL: the webhook path may hold the
// token and the query the token and the payload, so url.path is the route.
//
// It replaces otelhttp's handler, which cost about a third of the
// receiver's allocations a callback (42 of 102 in BenchmarkWebhook): a
// copy of the request to hide its URL and another for the span's context,
// httpsnoop's response-writer wrapper, a body wrapper, a labeler in the
// context, and the attribute sets of HTTP metrics the gateway does not
// export through OpenTelemetry (its metrics are Prometheus'). As Echo
// middleware it reads the status and sizes from Echo's response instead of
// wrapping the writer.
//
// known are the paths a span may name besides the webhook (health,
// readiness, the mounts); a pattern ending in "*" names every path below.
// inner is the rest of the request's middleware; it must render errors
// (accessLog does), so that the status the span records is the one sent.
func (s *Server) serverSpan(prop propagation.TextMapPropagator, known []string, inner step) echo.MiddlewareFunc {
	// The names of the webhook's spans and the start options, built once
	// (a variadic call would allocate its slice each time).
	webhookNames := map[string]string{http.MethodGet: "GET /webhooks/emma", http.MethodPost: "POST /webhooks/emma"}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	tracer := s.tracer
	serve := func(c echo.Context, next echo.HandlerFunc) error {
		r := c.Request()
		route := routeOf(r.URL.Path, known)
		name, ok := webhookNames[r.Method]
		if !ok || route != "/webhooks/emma" {
			name = r.Method + " " + route
		}
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, name, opts...)
		defer span.End()
		c.SetRequest(r.WithContext(ctx))
		err := inner(c, next)
		res := c.Response()
		if res.Status >= 500 {
			span.SetStatus(codes.Error, "")
		}
		// Set once the answer is known, in one call: each call and the
		// start option would each copy the attributes. A sampler
		// therefore sees none; the gateway's (OTEL_TRACES_SAMPLER's
		// parent-based ratio and always-on) look at none.
		if span.IsRecording() { // else the attributes are built for nothing
			span.SetAttributes(requestAttrs(c, r, route, res)...)
		}
		return err
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { return serve(c, next) }
	}
}

// requestAttrs are the server span's request attributes: those of the
// HTTP server semantic conventions otelhttp set, with url.path the route
// and client.address the client IP as the server's IPExtractor finds it
// (behind trusted proxies only, not any X-Forwarded-For).
// With them the answer's: the status and the bodies' sizes (the
// request's from its Content-Length, as the conventions define it).
func requestAttrs(c echo.Context, r *http.Request, route string, res *echo.Response) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 14)
	host, port := splitHostPort(r.Host)
	attrs = append(attrs, semconv.ServerAddress(host), methodAttr(r.Method))
	if r.TLS != nil {
		attrs = append(attrs, semconv.URLScheme("https"))
		if port == 443 {
			port = -1
		}
	} else {
		attrs = append(attrs, semconv.URLScheme("http"))
		if port == 80 {
			port = -1
		}
	}
	if port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	if peer, peerPort := splitHostPort(r.RemoteAddr); peer != "" {
		attrs = append(attrs, semconv.NetworkPeerAddress(peer))
		if peerPort > 0 {
			attrs = append(attrs, semconv.NetworkPeerPort(peerPort))
		}
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	if ip := c.RealIP(); ip != "" {
		attrs = append(attrs, semconv.ClientAddress(ip))
	}
	attrs = append(attrs, semconv.URLPath(route))
	if _, v, ok := strings.Cut(r.Proto, "/"); ok && v != "" {
		attrs = append(attrs, semconv.NetworkProtocolVersion(v))
	}
	attrs = append(attrs, semconv.HTTPResponseStatusCode(res.Status))
	if r.ContentLength > 0 {
		attrs = append(attrs, semconv.HTTPRequestBodySize(int(r.ContentLength)))
	}
	if res.Size > 0 {
		attrs = append(attrs, semconv.HTTPResponseBodySize(int(res.Size)))
	}
	return attrs
}

// methodAttr is http.request.method: the method when it is a standard one,
// else _OTHER (with the original beside it the conventions would put a
// sender's string in the span).
func methodAttr(m string) attribute.KeyValue {
	switch m {
	case http.MethodGet:
		return semconv.HTTPRequestMethodGet
	case http.MethodPost:
		return semconv.HTTPRequestMethodPost
	case http.MethodHead:
		return semconv.HTTPRequestMethodHead
	case http.MethodPut:
		return semconv.HTTPRequestMethodPut
	case http.MethodDelete:
		return semconv.HTTPRequestMethodDelete
	case http.MethodPatch:
		return semconv.HTTPRequestMethodPatch
	case http.MethodOptions:
		return semconv.HTTPRequestMethodOptions
	case http.MethodConnect:
		return semconv.HTTPRequestMethodConnect
	case http.MethodTrace:
		return semconv.HTTPRequestMethodTrace
	}
	return semconv.HTTPRequestMethodOther
}

// splitHostPort splits "host:port" (or "[v6]:port"); port is -1 when
// absent or not a port number.
func splitHostPort(hostport string) (string, int) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), -1
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return host, -1
	}
	return host, int(port)
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
