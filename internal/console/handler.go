package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// Path is where the console is served; its API and assets are below it.
const Path = "/console"

// MinAdminTokenLength is the shortest admin token accepted (SPEC section 7).
const MinAdminTokenLength = 16

// ContentSecurityPolicy is sent with every answer of the console: nothing
// but the console's own script, stylesheet and API, no inline script or
// style, no framing. The plot is inline SVG (DOM, not an image) drawn with
// presentation attributes and classes, which this policy allows.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// State is what the console shows of Kafka and the spool.
type State struct {
	// Kafka is the producer's side of the brokers.
	Kafka KafkaState
	// Spool is the local write-ahead spool.
	Spool SpoolState
}

// KafkaState is the brokers as the gateway sees them.
type KafkaState struct {
	// Known is false when the wiring could not tell; the page then says
	// "unknown" rather than guessing.
	Known bool
	// Brokers are the bootstrap addresses (never credentials).
	Brokers []string
	// Embedded is true for the in-process development broker.
	Embedded bool
	// Ready is true when the brokers answer.
	Ready bool
	// Detail says why not, when not ready.
	Detail string
}

// SpoolState is the spool's content.
type SpoolState struct {
	// Enabled is false when the gateway runs without a spool.
	Enabled bool
	// Records and Bytes are what waits for Kafka; MaxBytes is the cap.
	Records, Bytes, MaxBytes int64
	// Oldest is when the oldest waiting record was spooled; zero if none.
	Oldest time.Time
}

// StateFunc returns the current [State]. It is called once per page and
// per poll (every Poll per open console), with the request's context, so
// it must be quick: read counters, do not ask the brokers.
type StateFunc func(ctx context.Context) State

// Config configures the console [Handler].
type Config struct {
	// DevMode opens the console without a token, as the webhook is open in
	// embedded (development) mode.
	DevMode bool
	// AdminToken, at least 16 characters, opens the console as the
	// password of HTTP Basic auth (any user name) or as a Bearer token.
	// Empty outside DevMode: the console answers 404, as if absent.
	AdminToken string
	// IsWebhookToken, when set, reports whether a credential is a webhook
	// token in force now (a tokens file is reread while the gateway runs):
	// such a credential never opens the console, even if an operator
	// wrote the admin token into the tokens file.
	IsWebhookToken func(string) bool
	// WebhookTokens are the webhook tokens, only for Validate: an admin
	// token equal to one of them would let a webhook token open the
	// console, which SPEC section 7 forbids.
	WebhookTokens []string
	// Recorder holds what the page shows. Required.
	Recorder *Recorder
	// State gives Kafka's and the spool's state; nil shows them unknown.
	State StateFunc
	// Poll is how often the page asks for fresh data when JavaScript runs.
	// Default 1 s; between 200 ms and 10 s.
	Poll time.Duration
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config { return Config{Poll: time.Second} }

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Recorder == nil {
		errs = append(errs, errors.New("console: no recorder"))
	}
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminTokenLength {
		errs = append(errs, fmt.Errorf("console: the admin token must be at least %d characters, it has %d", MinAdminTokenLength, len(c.AdminToken)))
	}
	for _, t := range c.WebhookTokens {
		if c.AdminToken != "" && subtle.ConstantTimeCompare([]byte(t), []byte(c.AdminToken)) == 1 {
			errs = append(errs, errors.New("console: the admin token is also a webhook token; choose one of its own"))
			break
		}
	}
	if c.Poll < 200*time.Millisecond || c.Poll > 10*time.Second {
		errs = append(errs, fmt.Errorf("console: poll interval must be between 200ms and 10s, not %s", c.Poll))
	}
	return errors.Join(errs...)
}

// Enabled reports whether the console is served at all: in development
// mode or with an admin token.
func (c Config) Enabled() bool { return c.DevMode || c.AdminToken != "" }

//go:embed assets
var assets embed.FS

// Handler serves the console at [Path]: the page, its JSON API at
// Path/api/state and its embedded assets at Path/assets/.
type Handler struct {
	cfg       Config
	tokenHash [sha256.Size]byte
	page      *template.Template
	mux       *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// New returns the console's handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	page, err := template.New("console.html").ParseFS(assets, "assets/console.html")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	h := &Handler{cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.AdminToken)), page: page, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET "+Path, h.servePage)
	h.mux.HandleFunc("GET "+Path+"/{$}", h.servePage)
	h.mux.HandleFunc("GET "+Path+"/api/state", h.serveState)
	h.mux.HandleFunc("GET "+Path+"/assets/console.css", h.asset("console.css", "text/css; charset=utf-8"))
	h.mux.HandleFunc("GET "+Path+"/assets/console.js", h.asset("console.js", "text/javascript; charset=utf-8"))
	return h, nil
}

// ServeHTTP checks access, then serves the console.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	switch {
	case !h.cfg.Enabled():
		http.NotFound(w, r)
		return
	case !h.cfg.DevMode && !h.authorized(r):
		hd.Set("WWW-Authenticate", `Basic realm="emma-gateway console", charset="UTF-8"`)
		http.Error(w, "the console needs the admin token (EMMA_GATEWAY_ADMIN_TOKEN) as the Basic auth password or a Bearer token", http.StatusUnauthorized)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized compares the request's credential with the admin token in
// constant time; hashing first makes the time independent of the lengths
// too.
func (h *Handler) authorized(r *http.Request) bool {
	var cred string
	if _, pass, ok := r.BasicAuth(); ok {
		cred = pass
	} else if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
		// The scheme is case-insensitive (RFC 9110 section 11.1).
		cred = strings.TrimSpace(a[7:])
	} else {
		return false
	}
	sum := sha256.Sum256([]byte(cred))
	if subtle.ConstantTimeCompare(sum[:], h.tokenHash[:]) != 1 {
		return false
	}
	return h.cfg.IsWebhookToken == nil || !h.cfg.IsWebhookToken(cred)
}

func (h *Handler) asset(name, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			http.Error(w, "missing asset", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Write(b)
	}
}

func (h *Handler) state(ctx context.Context) State {
	if h.cfg.State == nil {
		return State{}
	}
	return h.cfg.State(ctx)
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	v := buildView(h.cfg.Recorder.Snapshot(), h.state(r.Context()), h.cfg)
	var buf bytes.Buffer
	if err := h.page.Execute(&buf, v); err != nil {
		http.Error(w, "console: rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (h *Handler) serveState(w http.ResponseWriter, r *http.Request) {
	v := buildView(h.cfg.Recorder.Snapshot(), h.state(r.Context()), h.cfg)
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "console: encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
