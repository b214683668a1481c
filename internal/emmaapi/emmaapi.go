package emmaapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/emma-gateway/emma-gateway/internal/retry"
)

// DefaultBaseURL is Emma's API root; the account id follows it.
const DefaultBaseURL = "https://api.e2ma.net"

// Emma's documented rate limit: 180 calls a minute, answered 403 beyond.
const emmaCallsPerMinute = 180

// Sentinel errors; an error returned by Client wraps at most one of them.
var (
	// ErrUnauthorized: Emma refused the account id or API keys (401).
	ErrUnauthorized = errors.New("bad credentials (check the account id and API keys)")
	// ErrNotFound: no such webhook (or account) (404).
	ErrNotFound = errors.New("not found")
	// ErrRateLimited: Emma still answered 403 (over 180 calls a minute)
	// after every retry.
	ErrRateLimited = errors.New("rate limited by Emma (403, over 180 calls a minute)")
	// ErrRefused: Emma answered false (an update or delete that failed).
	ErrRefused = errors.New("refused: Emma answered false")
	// ErrUnavailable: Emma could not be reached or answered 5xx, after
	// every retry that was safe.
	ErrUnavailable = errors.New("the API is unavailable")
	// ErrBadRequest: Emma rejected the request as invalid (other 4xx).
	ErrBadRequest = errors.New("request rejected by Emma")
	// ErrBadResponse: Emma's answer was not what the API documents.
	ErrBadResponse = errors.New("unexpected answer from Emma")
)

// Config configures a Client. Its String never shows the API keys.
type Config struct {
	// BaseURL is the API root, default DefaultBaseURL; the account id is
	// appended to it.
	BaseURL string
	// AccountID is the Emma account whose webhooks are managed.
	AccountID string
	// PublicKey and PrivateKey are the account's API keys (Basic auth user
	// and password).
	PublicKey  string
	PrivateKey string
	// Timeout bounds one HTTP attempt (default 30s); the caller's context
	// bounds the whole call, retries included.
	Timeout time.Duration
	// CallsPerMinute paces the client (default 180, Emma's limit; 0 or
	// less: no pacing).
	CallsPerMinute int
	// Burst is how many calls may go at once before pacing applies
	// (default 10).
	Burst int
	// MaxRetries is how many times a refused (403) or transiently failed
	// call is tried again (default 4; 0: never).
	MaxRetries int
	// RetryBackoff is the wait before the first retry; it doubles at each
	// retry up to MaxBackoff (defaults 2s and 30s). A Retry-After answer
	// header takes precedence.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// HTTPClient sends the requests; nil means a client with Timeout.
	HTTPClient *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// DefaultConfig returns the configuration for Emma's production API; the
// account id and keys must still be set.
func DefaultConfig() Config {
	return Config{
		BaseURL:        DefaultBaseURL,
		Timeout:        30 * time.Second,
		CallsPerMinute: emmaCallsPerMinute,
		Burst:          10,
		MaxRetries:     4,
		RetryBackoff:   2 * time.Second,
		MaxBackoff:     30 * time.Second,
		UserAgent:      "emma-gateway",
	}
}

// Validate reports every problem of the configuration at once. It names
// the fields but never echoes a key.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "":
		errs = append(errs, errors.New("the API URL is empty"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, errors.New("the API URL must be an absolute http(s) URL"))
	case u.User != nil:
		errs = append(errs, errors.New("the API URL must not carry credentials: set the API keys instead"))
	}
	if c.AccountID == "" {
		errs = append(errs, errors.New("the account id is empty (EMMA_ACCOUNT_ID)"))
	} else if _, err := strconv.ParseUint(c.AccountID, 10, 63); err != nil {
		errs = append(errs, errors.New("the account id must be a positive integer"))
	}
	if c.PublicKey == "" {
		errs = append(errs, errors.New("the public API key is empty (EMMA_PUBLIC_API_KEY)"))
	}
	if c.PrivateKey == "" {
		errs = append(errs, errors.New("the private API key is empty (EMMA_PRIVATE_API_KEY)"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("the timeout must be positive"))
	}
	if c.CallsPerMinute > 0 && c.Burst <= 0 {
		errs = append(errs, errors.New("the burst must be positive when calls are paced"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, errors.New("the retries must not be negative"))
	}
	if c.MaxRetries > 0 && (c.RetryBackoff <= 0 || c.MaxBackoff < c.RetryBackoff) {
		errs = append(errs, errors.New("the retry backoff must be positive and at most the max backoff"))
	}
	return errors.Join(errs...)
}

// String shows the configuration without the API keys.
func (c Config) String() string {
	return fmt.Sprintf("emmaapi.Config{BaseURL:%q AccountID:%q PublicKey:%s PrivateKey:%s Timeout:%s CallsPerMinute:%d MaxRetries:%d}",
		c.BaseURL, c.AccountID, redacted(c.PublicKey), redacted(c.PrivateKey), c.Timeout, c.CallsPerMinute, c.MaxRetries)
}

// GoString keeps the keys out of %#v too.
func (c Config) GoString() string { return c.String() }

func redacted(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "(set)"
}

// Webhook is one registration: Emma calls URL with Method when Event happens.
type Webhook struct {
	ID        int64  `json:"webhook_id"`
	AccountID int64  `json:"account_id"`
	Event     string `json:"event"`
	URL       string `json:"url"`
	Method    string `json:"method"`
}

// EventType is one event Emma offers for webhooks.
type EventType struct {
	Name        string `json:"event_name"`
	ID          int    `json:"webhook_event_id"`
	Description string `json:"description"`
}

// WebhookParams are the fields of a create or update; empty fields are not
// sent (an update changes only what is given).
type WebhookParams struct {
	Event  string `json:"event,omitempty"`
	URL    string `json:"url,omitempty"`
	Method string `json:"method,omitempty"`
	// PublicKey is create's public_key parameter (older name user); Create
	// fills it with the client's public key when empty.
	PublicKey string `json:"public_key,omitempty"`
}

// Client calls Emma's webhook API for one account. It is safe for
// concurrent use.
type Client struct {
	cfg     Config
	base    string // BaseURL/{account_id}
	http    *http.Client
	limiter *rate.Limiter
	sleep   func(context.Context, time.Duration) error
}

// New returns a client for cfg, or cfg's problems.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	lim := rate.NewLimiter(rate.Inf, 0)
	if cfg.CallsPerMinute > 0 {
		lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(cfg.CallsPerMinute)), cfg.Burst)
	}
	return &Client{
		cfg:     cfg,
		base:    strings.TrimSuffix(cfg.BaseURL, "/") + "/" + cfg.AccountID,
		http:    hc,
		limiter: lim,
		sleep:   sleepCtx,
	}, nil
}

// String names the account and API without the keys.
func (c Client) String() string {
	return fmt.Sprintf("emmaapi.Client{%s}", c.base)
}

// GoString keeps the keys out of %#v, which would otherwise print the
// unexported configuration field by field.
func (c Client) GoString() string { return c.String() }

// List returns every webhook of the account (GET /{account}/webhooks).
func (c *Client) List(ctx context.Context) ([]Webhook, error) {
	var out []Webhook
	if err := c.call(ctx, http.MethodGet, "/webhooks", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns one webhook (GET /{account}/webhooks/{id}); ErrNotFound if
// there is none.
func (c *Client) Get(ctx context.Context, id int64) (Webhook, error) {
	var out Webhook
	err := c.call(ctx, http.MethodGet, "/webhooks/"+strconv.FormatInt(id, 10), nil, &out)
	return out, err
}

// EventTypes lists the events Emma offers for webhooks
// (GET /{account}/webhooks/events).
func (c *Client) EventTypes(ctx context.Context) ([]EventType, error) {
	var out []EventType
	if err := c.call(ctx, http.MethodGet, "/webhooks/events", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Create registers a webhook (POST /{account}/webhooks) and returns its id.
// Emma defaults an empty Method to POST.
func (c *Client) Create(ctx context.Context, p WebhookParams) (int64, error) {
	if p.PublicKey == "" {
		p.PublicKey = c.cfg.PublicKey
	}
	var id idOrBool
	if err := c.call(ctx, http.MethodPost, "/webhooks", p, &id); err != nil {
		return 0, err
	}
	if !id.ok {
		return 0, fmt.Errorf("emma api: POST /webhooks: %w", ErrRefused)
	}
	return id.id, nil
}

// Update changes a webhook (PUT /{account}/webhooks/{id}) and returns its
// id. Emma answers false when the update failed: ErrRefused.
func (c *Client) Update(ctx context.Context, id int64, p WebhookParams) (int64, error) {
	var got idOrBool
	path := "/webhooks/" + strconv.FormatInt(id, 10)
	if err := c.call(ctx, http.MethodPut, path, p, &got); err != nil {
		return 0, err
	}
	if !got.ok {
		return 0, fmt.Errorf("emma api: PUT %s: %w", path, ErrRefused)
	}
	return got.id, nil
}

// Delete removes a webhook (DELETE /{account}/webhooks/{id}).
func (c *Client) Delete(ctx context.Context, id int64) error {
	return c.deleteAt(ctx, "/webhooks/"+strconv.FormatInt(id, 10))
}

// DeleteAll removes every webhook of the account (DELETE /{account}/webhooks).
func (c *Client) DeleteAll(ctx context.Context) error {
	return c.deleteAt(ctx, "/webhooks")
}

func (c *Client) deleteAt(ctx context.Context, path string) error {
	var ok bool
	if err := c.call(ctx, http.MethodDelete, path, nil, &ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("emma api: DELETE %s: %w", path, ErrRefused)
	}
	return nil
}

// idOrBool decodes the answers of create and update: an id (a number, or
// a numeric string to be lenient) or false.
type idOrBool struct {
	id int64
	ok bool
}

func (v *idOrBool) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "false" {
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an id or false, got %.40q", string(b))
	}
	v.id, v.ok = id, true
	return nil
}

// call sends one API call, pacing and retrying it, and decodes the answer
// into out. Retries: 403 (rate) and 429 always, because Emma did nothing;
// 5xx and network errors only for methods that are safe to repeat
// (GET, PUT, DELETE), because a repeated create would register twice.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("emma api: %s %s: %w", method, path, err)
		}
	}
	idempotent := method != http.MethodPost
	backoff := c.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		if err := c.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("emma api: %s %s: %w", method, path, err)
		}
		status, answer, retryAfter, err := c.attempt(ctx, method, path, body)
		var sentinel error
		again := false
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("emma api: %s %s: %w", method, path, ctx.Err())
			}
			sentinel, again = ErrUnavailable, idempotent
		case status >= 200 && status < 300:
			if err := json.Unmarshal(answer, out); err != nil {
				return fmt.Errorf("emma api: %s %s: %w: %v", method, path, ErrBadResponse, err)
			}
			return nil
		case status == http.StatusUnauthorized:
			sentinel = ErrUnauthorized
		case status == http.StatusNotFound:
			sentinel = ErrNotFound
		case status == http.StatusForbidden || status == http.StatusTooManyRequests:
			sentinel, again = ErrRateLimited, true
		case status >= 500:
			sentinel, again = ErrUnavailable, idempotent
		default:
			sentinel = ErrBadRequest
		}
		if !again || attempt >= c.cfg.MaxRetries {
			return &Error{Method: method, Path: path, Status: status, Detail: detail(answer, err), Err: sentinel}
		}
		// Jittered, so that clients failing together do not retry in step;
		// a Retry-After is Emma's own word and is kept.
		wait := retry.Jitter(backoff)
		if retryAfter > 0 {
			wait = retryAfter
		}
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("emma api: %s %s: %w (while waiting to retry: %w)", method, path, err, sentinel)
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

func (c *Client) attempt(ctx context.Context, method, path string, body []byte) (int, []byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	req.SetBasicAuth(c.cfg.PublicKey, c.cfg.PrivateKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer res.Body.Close()
	// Emma's answers are small; 8 MiB bounds a broken or hostile server.
	answer, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return 0, nil, 0, err
	}
	return res.StatusCode, answer, retryAfter(res.Header.Get("Retry-After")), nil
}

func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// detail is what an Error tells of the answer: a short excerpt of Emma's
// body, or the network error. Neither holds the keys: they travel only in
// the Authorization header, which no error repeats.
func detail(answer []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	s := strings.Join(strings.Fields(string(answer)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Error is a call Emma refused or that could not be made. It wraps one of
// the sentinel errors.
type Error struct {
	Method, Path string
	// Status is Emma's HTTP status, 0 when none came.
	Status int
	// Detail is an excerpt of Emma's answer or the network error.
	Detail string
	Err    error
}

// Error says what was called, Emma's status, the sentinel's meaning and
// an excerpt of the answer.
func (e *Error) Error() string {
	s := fmt.Sprintf("emma api: %s %s: ", e.Method, e.Path)
	if e.Status != 0 {
		s += fmt.Sprintf("%d %s: ", e.Status, http.StatusText(e.Status))
	}
	s += e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
