package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/console"
	"github.com/emma-gateway/emma-gateway/internal/dedup"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// Sink makes events durable. Publish and DeadLetter return nil only once the
// event (or rejected callback) is durable; any error means it is not, and the
// callback is answered 503.
type Sink interface {
	Publish(ctx context.Context, ev *events.Event) error
	DeadLetter(ctx context.Context, r *events.Rejection) error
}

// SinkFuncs adapts two functions to a [Sink], for tests.
type SinkFuncs struct {
	PublishFunc    func(ctx context.Context, ev *events.Event) error
	DeadLetterFunc func(ctx context.Context, r *events.Rejection) error
}

// Publish calls f.PublishFunc.
func (f SinkFuncs) Publish(ctx context.Context, ev *events.Event) error {
	return f.PublishFunc(ctx, ev)
}

// DeadLetter calls f.DeadLetterFunc.
func (f SinkFuncs) DeadLetter(ctx context.Context, r *events.Rejection) error {
	return f.DeadLetterFunc(ctx, r)
}

var _ Sink = SinkFuncs{}

// Placement is where a sink put an event's first copy or a dead letter,
// as the operator console shows it.
type Placement struct {
	Topic string
	// Partition and Offset are -1 when unknown.
	Partition int32
	Offset    int64
	// Spooled is true when the copy waits in the local spool.
	Spooled bool
}

// PlacingSink is a [Sink] that also says where it put what it was given.
// With a console recorder in [Deps], the receiver uses these methods when
// its sink has them, to show topic, partition and offset.
type PlacingSink interface {
	Sink
	PublishPlaced(ctx context.Context, ev *events.Event) (Placement, error)
	DeadLetterPlaced(ctx context.Context, r *events.Rejection) (Placement, error)
}

// Readiness is the answer of a readiness check: whether the gateway can
// accept events now, and a line per dependency saying why.
type Readiness struct {
	Ready  bool              `json:"-"`
	Checks map[string]string `json:"checks"`
}

// ReadyFunc checks the gateway's dependencies for /readyz. The policy
// (which failures make the gateway unready) is the caller's: with a spool,
// an unreachable Kafka still leaves the gateway able to accept events.
type ReadyFunc func(ctx context.Context) Readiness

// Deps are what the server needs besides its configuration.
type Deps struct {
	// Decoder decodes callbacks. Required.
	Decoder *events.Decoder
	// Sink receives decoded events and dead letters. Required.
	Sink Sink
	// Ready is the readiness check of /readyz. Default: always ready.
	Ready ReadyFunc
	// Now returns the current time. Default time.Now; tests fix it.
	Now func() time.Time
	// Dedup remembers the event ids made durable recently, so that a
	// callback delivered again is answered 200 with "duplicate": true and
	// not published again (SPEC section 3). Default nil: off, every copy is
	// published.
	Dedup *dedup.Window
	// Mounts are GET handlers the wiring serves beside the webhook, such
	// as /metrics and /schemas/*: the receiver links neither Prometheus'
	// HTTP handler nor the schemas.
	Mounts []Mount
	// Recorder, when set, is given every webhook answer and every dead
	// letter, for the operator console (never a payload or a token).
	Recorder *console.Recorder
}

// Mount is a GET handler served at Path, in Echo's syntax: a trailing "*"
// matches every path below (e.g. "/schemas/*").
type Mount struct {
	Path    string
	Handler http.Handler
}

// Server is the gateway's HTTP server.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	tracer  trace.Tracer
	metrics *metrics
	handler http.Handler
	tokens  *tokenStore
	certs   *certReloader // nil without TLS
	echo    *echo.Echo
	http    *http.Server
	limits  *limits
	placer  PlacingSink // the sink, when it is one and a recorder is set
	// placements are the boxes of setPlacement.
	placements sync.Pool

	mu       sync.Mutex
	ln       net.Listener
	started  bool
	stopOnce sync.Once
	stopErr  error
	serveErr chan error
	stop     chan struct{} // closed by Shutdown: stops background work
	wg       sync.WaitGroup
}

// New returns a server for cfg. It does not listen: call Start.
func New(cfg Config, deps Deps, set telemetry.Settings) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Decoder == nil || deps.Sink == nil {
		return nil, errors.New("receiver: a decoder and a sink are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	set = set.WithDefaults()
	for _, m := range deps.Mounts {
		if !strings.HasPrefix(m.Path, "/") || m.Handler == nil {
			return nil, fmt.Errorf("receiver: mount %q needs a path from / and a handler", m.Path)
		}
	}
	toks, err := newTokenStore(cfg, set.Logger)
	if err != nil {
		return nil, err
	}
	met, err := newMetrics(set.Registerer)
	if err != nil {
		return nil, err
	}
	if deps.Dedup != nil {
		if err := registerDedup(set.Registerer, deps.Dedup); err != nil {
			return nil, err
		}
	}
	allowed, _ := parseNets("allowed CIDR", cfg.AllowedCIDRs) // Validate checked them
	proxies, _ := parseNets("trusted proxy", cfg.TrustedProxies)
	s := &Server{
		cfg:      cfg,
		deps:     deps,
		log:      set.Logger,
		tracer:   set.TracerProvider.Tracer("github.com/emma-gateway/emma-gateway/receiver"),
		metrics:  met,
		tokens:   toks,
		limits:   newLimits(cfg),
		serveErr: make(chan error, 1),
		stop:     make(chan struct{}),
	}
	if deps.Recorder != nil {
		s.placer, _ = deps.Sink.(PlacingSink)
	}
	if cfg.TLSCertFile != "" {
		if s.certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, set.Logger); err != nil {
			return nil, err
		}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = ipExtractor(proxies)
	e.HTTPErrorHandler = s.handleError
	// What the wiring serves beside the webhook (metrics, schemas), like
	// health and readiness unguarded by the webhook's limits.
	known := []string{"/healthz", "/readyz"}
	for _, m := range deps.Mounts {
		known = append(known, m.Path)
	}
	// One middleware, not three: Echo applies its middleware anew for
	// every request, a closure each.
	edge := s.serverSpan(set.Propagator, known, s.accessLog(securityHeaders()))
	e.Use(edge)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	for _, m := range deps.Mounts {
		e.GET(m.Path, echo.WrapHandler(m.Handler))
	}
	// Route middleware, not an Echo group: a group with middleware adds
	// catch-all routes that turn a wrong method into 404 instead of 405.
	// Only the webhook routes are guarded: health, readiness and metrics
	// must answer probes and scrapers whatever the load or their address.
	guards := []echo.MiddlewareFunc{s.limits.middleware(cfg.RetryAfter)}
	if len(allowed) > 0 {
		guards = append([]echo.MiddlewareFunc{allowAddresses(allowed)}, guards...)
	}
	// Composed once here: as route middleware Echo would compose them for
	// every request.
	guarded := s.webhook
	for i := len(guards) - 1; i >= 0; i-- {
		guarded = guards[i](guarded)
	}
	for _, path := range []string{"/webhooks/emma", "/webhooks/emma/:token"} {
		e.GET(path, guarded)
		e.POST(path, guarded)
	}
	s.echo = e
	s.handler = e
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(set.Logger.Handler(), slog.LevelDebug),
	}
	if s.certs != nil {
		s.http.TLSConfig = s.certs.tlsConfig()
	}
	return s, nil
}

// Handler returns the server's HTTP handler, tracing included, for
// embedding and tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on the configured address and serves in the background.
// It returns once listening; ctx is not kept (background work ends with
// Shutdown, never with a caller's context).
func (s *Server) Start(_ context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("receiver: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("receiver: listen: %w", err)
	}
	s.ln, s.started = ln, true
	go func() {
		var err error
		if s.certs != nil {
			// The certificate comes from TLSConfig.GetCertificate;
			// ServeTLS adds HTTP/2 to what is negotiated.
			err = s.http.ServeTLS(ln, "", "")
		} else {
			err = s.http.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	if s.tokens.file != "" {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.tokens.watch(s.cfg.TokensReloadInterval, s.stop)
		}()
	}
	s.log.Info("listening for Emma webhooks", "addr", ln.Addr().String(), "tls", s.certs != nil)
	return nil
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting connections and waits, until ctx is done, for the
// requests in flight to be answered. Safe without Start and safe twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		close(s.stop)
		defer s.wg.Wait()
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		if !started {
			return
		}
		s.stopErr = s.http.Shutdown(ctx)
		if s.stopErr != nil {
			_ = s.http.Close()
		}
		if err := <-s.serveErr; err != nil && s.stopErr == nil {
			s.stopErr = err
		}
	})
	return s.stopErr
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.ReadyTimeout)
	defer cancel()
	r := Readiness{Ready: true}
	if s.deps.Ready != nil {
		r = s.deps.Ready(ctx)
	}
	if !r.Ready {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": r.Checks})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready", "checks": r.Checks})
}

// securityHeaders marks every answer as data for machines: not to be
// sniffed, framed or cached. The values are built once and assigned as
// shared one-element slices (len == cap, so an Add elsewhere copies rather
// than writes into them): Header.Set would allocate four slices per
// request.
func securityHeaders() step {
	values := [...]struct {
		key   string // canonical
		value []string
	}{
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Cache-Control", []string{"no-store"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'"}},
	}
	return func(c echo.Context, next echo.HandlerFunc) error {
		h := c.Response().Header()
		for _, kv := range values {
			h[kv.key] = kv.value
		}
		return next(c)
	}
}

// step is a stage of the middleware every request passes (server span,
// access log, security headers): a function of the request and the rest
// of the chain, so that the stages nest without a closure each per
// request.
type step func(c echo.Context, next echo.HandlerFunc) error
