package emulator

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/emmaapi"
)

// Defaults of Config, printed by emma-gateway emulate so a demo can use
// them. The account id is the one of SPEC's real captured callback (and of
// deploy/compose.yaml).
const (
	DefaultAddr       = "127.0.0.1:8090"
	DefaultAccountID  = 1743199
	DefaultPublicKey  = "emulator-public-key"
	DefaultPrivateKey = "emulator-private-key"
)

// ErrUnknownEvent is returned by Fire for an event name the emulator
// cannot fire.
var ErrUnknownEvent = errors.New("unknown event")

// Config configures an Emulator.
type Config struct {
	// Addr is the listen address of Start; loopback by default because the
	// emulator has no real security.
	Addr string
	// AccountID is the one account the emulator holds.
	AccountID int64
	// PublicKey and PrivateKey are the Basic auth credentials it accepts.
	PublicKey  string
	PrivateKey string
	// CallsPerMinute is the API's rate limit, answered 403 beyond like
	// Emma's (default 180; 0 or less: none). /_emulator/ is not limited.
	CallsPerMinute int
	// DeliveryTimeout bounds one callback to a webhook (default 10s).
	DeliveryTimeout time.Duration
	// FirstWebhookID is the id of the first webhook created (default
	// 1024, as in the documentation's sample).
	FirstWebhookID int64
	// MaxDeliveries is how many deliveries are kept, oldest dropped first
	// (default 10000), so a long load test does not grow without bound.
	MaxDeliveries int
	// HTTPClient delivers callbacks; nil means a plain client.
	HTTPClient *http.Client
	// Now is the clock of timestamps in payloads; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the configuration of emma-gateway emulate.
func DefaultConfig() Config {
	return Config{
		Addr:            DefaultAddr,
		AccountID:       DefaultAccountID,
		PublicKey:       DefaultPublicKey,
		PrivateKey:      DefaultPrivateKey,
		CallsPerMinute:  180,
		DeliveryTimeout: 10 * time.Second,
		FirstWebhookID:  1024,
		MaxDeliveries:   10000,
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("the listen address is empty"))
	}
	if c.AccountID <= 0 {
		errs = append(errs, errors.New("the account id must be positive"))
	}
	if c.PublicKey == "" || c.PrivateKey == "" {
		errs = append(errs, errors.New("the public and private keys must be set"))
	}
	if c.DeliveryTimeout <= 0 {
		errs = append(errs, errors.New("the delivery timeout must be positive"))
	}
	if c.FirstWebhookID <= 0 {
		errs = append(errs, errors.New("the first webhook id must be positive"))
	}
	if c.MaxDeliveries <= 0 {
		errs = append(errs, errors.New("the number of deliveries kept must be positive"))
	}
	return errors.Join(errs...)
}

// Delivery is one callback the emulator made, and the receiver's answer.
type Delivery struct {
	WebhookID int64           `json:"webhook_id"`
	Event     string          `json:"event"`
	Method    string          `json:"method"`
	URL       string          `json:"url"`
	Payload   json.RawMessage `json:"payload"`
	// Status is the receiver's HTTP status; 0 when the call failed.
	Status int `json:"status"`
	// Response is the start of the receiver's answer.
	Response string `json:"response,omitempty"`
	// Error says why the call failed, if it did.
	Error    string        `json:"error,omitempty"`
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration_ns"`
}

// FireRequest is the body of POST /_emulator/fire.
type FireRequest struct {
	Event string `json:"event"`
	// AccountID is the account_id of the payload (default the emulator's).
	AccountID int64 `json:"account_id,omitempty"`
	// Data overrides or adds fields of the generated data.
	Data map[string]any `json:"data,omitempty"`
}

// FireResult is the answer of POST /_emulator/fire.
type FireResult struct {
	Event      string          `json:"event"`
	Payload    json.RawMessage `json:"payload"`
	Deliveries []Delivery      `json:"deliveries"`
}

// Emulator is the in-memory Emma. Its zero value is not usable: use New.
type Emulator struct {
	cfg     Config
	http    *http.Client
	limiter *rate.Limiter
	now     func() time.Time
	mux     *http.ServeMux

	mu         sync.Mutex
	webhooks   map[int64]emmaapi.Webhook
	nextID     int64
	nextEntity int64
	deliveries []Delivery
	calls      map[string]int

	srvMu sync.Mutex
	srv   *http.Server
	ln    net.Listener
	done  chan struct{}
}

// New returns an emulator for cfg, or cfg's problems.
func New(cfg Config) (*Emulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Emulator{
		cfg:        cfg,
		http:       cfg.HTTPClient,
		limiter:    rate.NewLimiter(rate.Inf, 0),
		now:        cfg.Now,
		webhooks:   map[int64]emmaapi.Webhook{},
		nextID:     cfg.FirstWebhookID,
		nextEntity: 1,
		calls:      map[string]int{},
	}
	if e.http == nil {
		e.http = &http.Client{}
	}
	if e.now == nil {
		e.now = time.Now
	}
	if cfg.CallsPerMinute > 0 {
		e.limiter = rate.NewLimiter(rate.Every(time.Minute/time.Duration(cfg.CallsPerMinute)), cfg.CallsPerMinute)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{account}/webhooks", e.api(e.list))
	m.HandleFunc("GET /{account}/webhooks/events", e.api(e.eventTypes))
	m.HandleFunc("GET /{account}/webhooks/{id}", e.api(e.get))
	m.HandleFunc("POST /{account}/webhooks", e.api(e.create))
	m.HandleFunc("PUT /{account}/webhooks/{id}", e.api(e.update))
	m.HandleFunc("DELETE /{account}/webhooks/{id}", e.api(e.delete))
	m.HandleFunc("DELETE /{account}/webhooks", e.api(e.deleteAll))
	m.HandleFunc("POST /_emulator/fire", e.fireHandler)
	m.HandleFunc("GET /_emulator/deliveries", e.deliveriesHandler)
	e.mux = m
	return e, nil
}

// Handler serves the API and the control endpoints (for httptest).
func (e *Emulator) Handler() http.Handler { return e.mux }

// Start listens on Config.Addr and serves in the background; it returns
// once the address is bound. Addr tells the address (useful with port 0).
func (e *Emulator) Start() error {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	if e.srv != nil {
		return errors.New("emulator: already started")
	}
	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	e.ln = ln
	e.srv = &http.Server{Handler: e.mux, ReadHeaderTimeout: 10 * time.Second}
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		_ = e.srv.Serve(ln)
	}()
	return nil
}

// Addr is the address Start bound, empty before Start.
func (e *Emulator) Addr() string {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	if e.ln == nil {
		return ""
	}
	return e.ln.Addr().String()
}

// Shutdown stops the server started by Start; it is safe without Start
// and safe twice.
func (e *Emulator) Shutdown(ctx context.Context) error {
	e.srvMu.Lock()
	srv, done := e.srv, e.done
	e.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	<-done
	return err
}

// Webhooks returns the registrations, by id.
func (e *Emulator) Webhooks() []emmaapi.Webhook {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sortedLocked()
}

// Calls returns how many API calls were answered, by "METHOD route", e.g.
// "POST /webhooks" (refused calls included), so tests can count writes.
func (e *Emulator) Calls() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.calls)
}

// Deliveries returns the callbacks made so far, oldest first.
func (e *Emulator) Deliveries() []Delivery {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.deliveries)
}

func (e *Emulator) sortedLocked() []emmaapi.Webhook {
	out := slices.Collect(maps.Values(e.webhooks))
	slices.SortFunc(out, func(a, b emmaapi.Webhook) int { return cmp.Compare(a.ID, b.ID) })
	if out == nil {
		out = []emmaapi.Webhook{}
	}
	return out
}

// apiError is an answer other than 2xx.
type apiError struct {
	status int
	msg    string
}

func (a *apiError) Error() string { return a.msg }

// api wraps an API handler with what every API call shares: the count,
// Basic auth, the account and the rate limit, and the JSON answer.
func (e *Emulator) api(h func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		route := r.Method + " " + strings.TrimPrefix(r.Pattern[strings.Index(r.Pattern, " ")+1:], "/{account}")
		e.mu.Lock()
		e.calls[route]++
		e.mu.Unlock()
		var v any
		err := e.authorize(r)
		if err == nil {
			v, err = h(r)
		}
		if ae := (*apiError)(nil); errors.As(err, &ae) {
			if ae.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="emma-emulator"`)
			}
			writeJSON(w, ae.status, map[string]string{"error": ae.msg})
			return
		} else if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func (e *Emulator) authorize(r *http.Request) error {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(e.cfg.PublicKey)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(e.cfg.PrivateKey)) != 1 {
		return &apiError{http.StatusUnauthorized, "Invalid credentials"}
	}
	if r.PathValue("account") != strconv.FormatInt(e.cfg.AccountID, 10) {
		return &apiError{http.StatusUnauthorized, "The keys do not belong to this account"}
	}
	if !e.limiter.Allow() {
		return &apiError{http.StatusForbidden, fmt.Sprintf("Rate limit exceeded: %d calls a minute", e.cfg.CallsPerMinute)}
	}
	return nil
}

func (e *Emulator) list(*http.Request) (any, error) {
	return e.Webhooks(), nil
}

func (e *Emulator) eventTypes(*http.Request) (any, error) {
	var out []emmaapi.EventType
	for _, t := range events.Types() {
		// Emma lists 18 events; member_add, which it also sends, is not
		// among them.
		if t.WebhookEventID > 0 {
			out = append(out, emmaapi.EventType{Name: t.Name, ID: t.WebhookEventID, Description: t.Description})
		}
	}
	return out, nil
}

func (e *Emulator) lookup(r *http.Request) (emmaapi.Webhook, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return emmaapi.Webhook{}, &apiError{http.StatusNotFound, "Not found"}
	}
	wh, ok := e.webhooks[id]
	if !ok {
		return emmaapi.Webhook{}, &apiError{http.StatusNotFound, "Not found"}
	}
	return wh, nil
}

func (e *Emulator) get(r *http.Request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lookup(r)
}

// params reads a create or update body. user is the older name of
// public_key; neither is checked beyond being a string, as the emulator
// authenticates with Basic auth.
type params struct {
	Event     *string `json:"event"`
	URL       *string `json:"url"`
	Method    *string `json:"method"`
	PublicKey *string `json:"public_key"`
	User      *string `json:"user"`
}

func readParams(r *http.Request) (params, error) {
	var p params
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return p, &apiError{http.StatusBadRequest, "cannot read the body"}
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, &apiError{http.StatusBadRequest, "the body must be a JSON object"}
	}
	if p.Event != nil {
		// member_add is accepted although Emma does not list it: Emma
		// sends it, and the gateway knows it.
		if _, ok := events.Lookup(*p.Event); !ok {
			return p, &apiError{http.StatusBadRequest, "unknown event"}
		}
	}
	if p.URL != nil {
		u, err := url.Parse(*p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return p, &apiError{http.StatusBadRequest, "url must be an absolute http(s) URL"}
		}
	}
	if p.Method != nil {
		m := strings.ToUpper(*p.Method)
		if m != http.MethodGet && m != http.MethodPost {
			return p, &apiError{http.StatusBadRequest, "method must be GET or POST"}
		}
		p.Method = &m
	}
	return p, nil
}

func (e *Emulator) create(r *http.Request) (any, error) {
	p, err := readParams(r)
	if err != nil {
		return nil, err
	}
	if p.Event == nil || p.URL == nil {
		return nil, &apiError{http.StatusBadRequest, "event and url are required"}
	}
	wh := emmaapi.Webhook{AccountID: e.cfg.AccountID, Event: *p.Event, URL: *p.URL, Method: http.MethodPost}
	if p.Method != nil {
		wh.Method = *p.Method
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	wh.ID = e.nextID
	e.nextID++
	e.webhooks[wh.ID] = wh
	return wh.ID, nil
}

func (e *Emulator) update(r *http.Request) (any, error) {
	// The body is read before the lock is taken: a slow client must not
	// stall every other call. An unknown id still answers 404 first.
	p, perr := readParams(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	wh, err := e.lookup(r)
	if err != nil {
		return nil, err
	}
	err = perr
	if ae := (*apiError)(nil); errors.As(err, &ae) && ae.status == http.StatusBadRequest {
		// Emma's documented answer to an update that failed.
		return false, nil
	} else if err != nil {
		return nil, err
	}
	if p.Event != nil {
		wh.Event = *p.Event
	}
	if p.URL != nil {
		wh.URL = *p.URL
	}
	if p.Method != nil {
		wh.Method = *p.Method
	}
	e.webhooks[wh.ID] = wh
	return wh.ID, nil
}

func (e *Emulator) delete(r *http.Request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	wh, err := e.lookup(r)
	if err != nil {
		return nil, err
	}
	delete(e.webhooks, wh.ID)
	return true, nil
}

func (e *Emulator) deleteAll(*http.Request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.webhooks)
	return true, nil
}

// Fire calls every webhook registered for req.Event with a generated
// payload, one after the other in id order, and returns the deliveries.
// It fails only for an unknown event: a receiver's error is recorded in its
// delivery.
func (e *Emulator) Fire(ctx context.Context, req FireRequest) (FireResult, error) {
	if _, ok := events.Lookup(req.Event); !ok {
		return FireResult{}, fmt.Errorf("%w %q", ErrUnknownEvent, req.Event)
	}
	if req.AccountID == 0 {
		req.AccountID = e.cfg.AccountID
	}
	e.mu.Lock()
	entity := e.nextEntity
	e.nextEntity++
	var targets []emmaapi.Webhook
	for _, wh := range e.sortedLocked() {
		if wh.Event == req.Event {
			targets = append(targets, wh)
		}
	}
	e.mu.Unlock()
	payload, err := Payload(req.Event, req.AccountID, entity, e.now(), req.Data).JSON()
	if err != nil {
		return FireResult{}, fmt.Errorf("emulator: payload of %s: %w", req.Event, err)
	}
	res := FireResult{Event: req.Event, Payload: payload, Deliveries: []Delivery{}}
	for _, wh := range targets {
		d := e.deliver(ctx, wh, payload)
		res.Deliveries = append(res.Deliveries, d)
	}
	e.mu.Lock()
	e.deliveries = append(e.deliveries, res.Deliveries...)
	if over := len(e.deliveries) - e.cfg.MaxDeliveries; over > 0 {
		e.deliveries = slices.Delete(e.deliveries, 0, over)
	}
	e.mu.Unlock()
	return res, nil
}

// deliver calls one webhook as Emma does: POST with the JSON as body, or
// GET with the JSON url-encoded in the payload query parameter (added to
// the query the URL already has, such as a token).
func (e *Emulator) deliver(ctx context.Context, wh emmaapi.Webhook, payload []byte) Delivery {
	d := Delivery{WebhookID: wh.ID, Event: wh.Event, Method: wh.Method, URL: wh.URL, Payload: payload, At: e.now()}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.DeliveryTimeout)
	defer cancel()
	var req *http.Request
	var err error
	if wh.Method == http.MethodGet {
		var u *url.URL
		if u, err = url.Parse(wh.URL); err == nil {
			q := u.Query()
			q.Set("payload", string(payload))
			u.RawQuery = q.Encode()
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, bytes.NewReader(payload))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		d.Error = err.Error()
		return d
	}
	req.Header.Set("User-Agent", "emma-gateway-emulator")
	start := time.Now()
	res, err := e.http.Do(req)
	d.Duration = time.Since(start)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	d.Status, d.Response = res.StatusCode, string(b)
	return d
}

func (e *Emulator) fireHandler(w http.ResponseWriter, r *http.Request) {
	var req FireRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be {\"event\": \"...\"}"})
		return
	}
	res, err := e.Fire(r.Context(), req)
	if errors.Is(err, ErrUnknownEvent) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	} else if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (e *Emulator) deliveriesHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.Deliveries())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
