package receiver

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the webhook server. Start from [DefaultConfig].
type Config struct {
	// Addr is the listen address. Default ":8080".
	Addr string
	// Tokens are the accepted webhook tokens; several at once allow
	// rotation. A token may be bound to the Emma accounts it may post for:
	// "token:1743199|1743200"; events of other accounts are answered 403.
	// Secrets: never logged.
	Tokens []string
	// TokensFile names a file of more tokens, one a line in the syntax of
	// Tokens, with # comments. It is reread when it changes (checked every
	// TokensReloadInterval) and on [Server.ReloadTokens] (SIGHUP), so tokens
	// rotate without a restart; a file that cannot be read or parsed keeps
	// the tokens in force and logs an error. With a tokens file every
	// callback needs a token, even when the file is empty.
	TokensFile string
	// TokensReloadInterval is how often TokensFile is checked for changes.
	// Default 5 s.
	TokensReloadInterval time.Duration
	// AllowUnauthenticated accepts callbacks without a token when neither
	// Tokens nor TokensFile is set. Must be set explicitly; New refuses no
	// tokens otherwise.
	AllowUnauthenticated bool
	// AllowedCIDRs, when set, restricts the webhook endpoint to clients in
	// these networks (others are answered 403). Health, readiness and
	// metrics are not restricted. Default: any address.
	AllowedCIDRs []string
	// TrustedProxies are the networks (CIDRs or single addresses) of the
	// reverse proxies in front of the gateway. Only their X-Forwarded-For
	// is believed: the client IP is the right-most address in it that is
	// not a trusted proxy. The allow-list and the per-IP rate limit use that
	// IP. Default: none, the client IP is the connection's.
	TrustedProxies []string
	// MaxQueryBytes bounds a request's query string, and so a GET payload;
	// a longer one is answered 414. Default 256 KiB.
	MaxQueryBytes int
	// TLSCertFile and TLSKeyFile, both or neither, make the server speak
	// HTTPS (HTTP/1.1 and HTTP/2) with this PEM certificate and key. The
	// files are reread when they change, so a renewed certificate is used
	// without a restart. Default: plain HTTP, for a TLS-terminating ingress.
	TLSCertFile, TLSKeyFile string
	// BodyLimit is the largest POST body accepted, in bytes. Default 1 MiB.
	BodyLimit int64
	// PublishTimeout bounds how long a callback waits for the sink before
	// it is answered 503. Default 5 s.
	PublishTimeout time.Duration
	// RetryAfter is the Retry-After of 503 and 429 answers. Default 5 s.
	RetryAfter time.Duration
	// ReadyTimeout bounds one readiness check of /readyz, so that a
	// dependency that hangs makes the gateway unready instead of the probe
	// time out. Default 3 s, below the readiness probe's timeout in the
	// deploy manifests (4 s).
	ReadyTimeout time.Duration
	// MaxInFlight caps the webhook requests served at once; beyond it the
	// answer is 503. Default 1024; 0 means no cap.
	MaxInFlight int
	// RatePerIP is the sustained webhook requests per second allowed from
	// one client IP (token bucket), beyond which the answer is 429. Default
	// 0: no limit (Emma sends from few addresses, in bursts).
	RatePerIP float64
	// RateBurst is the token bucket's size. Default 100.
	RateBurst int
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// http.Server's. Defaults 5 s, 15 s, 20 s and 60 s.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers, and so the size
	// of a GET payload. Default 1 MiB + 8 KiB.
	MaxHeaderBytes int
}

// DefaultConfig returns the defaults documented on [Config]'s fields.
func DefaultConfig() Config {
	return Config{
		Addr:              ":8080",
		BodyLimit:         1 << 20,
		PublishTimeout:    5 * time.Second,
		RetryAfter:        5 * time.Second,
		ReadyTimeout:      3 * time.Second,
		MaxInFlight:       1024,
		RateBurst:         100,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      20 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    1<<20 + 8<<10,

		TokensReloadInterval: 5 * time.Second,
		MaxQueryBytes:        256 << 10,
	}
}

// Validate reports every problem with c at once. It never quotes a token.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("receiver: no listen address"))
	}
	if len(c.Tokens) == 0 && c.TokensFile == "" && !c.AllowUnauthenticated {
		errs = append(errs, errors.New("receiver: no webhook tokens configured and unauthenticated access not allowed"))
	}
	for i, t := range c.Tokens {
		if _, err := parseToken(t); err != nil {
			errs = append(errs, fmt.Errorf("receiver: token #%d: %w", i+1, err))
		}
	}
	if c.TokensFile != "" && c.TokensReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("receiver: tokens reload interval must be positive, not %s", c.TokensReloadInterval))
	}
	if _, err := parseNets("allowed CIDR", c.AllowedCIDRs); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseNets("trusted proxy", c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if c.MaxQueryBytes < 1 {
		errs = append(errs, fmt.Errorf("receiver: max query bytes must be positive, not %d", c.MaxQueryBytes))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("receiver: TLS needs both a certificate file and a key file"))
	}
	if c.BodyLimit < 1 {
		errs = append(errs, fmt.Errorf("receiver: body limit must be positive, not %d", c.BodyLimit))
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"publish timeout", c.PublishTimeout}, {"retry-after", c.RetryAfter}, {"ready timeout", c.ReadyTimeout},
		{"read header timeout", c.ReadHeaderTimeout}, {"read timeout", c.ReadTimeout},
		{"write timeout", c.WriteTimeout}, {"idle timeout", c.IdleTimeout},
	}
	for _, d := range durations {
		if d.d <= 0 {
			errs = append(errs, fmt.Errorf("receiver: %s must be positive, not %s", d.name, d.d))
		}
	}
	if c.WriteTimeout > 0 && c.PublishTimeout >= c.WriteTimeout {
		errs = append(errs, fmt.Errorf("receiver: publish timeout (%s) must be shorter than the write timeout (%s), or answers would be cut off", c.PublishTimeout, c.WriteTimeout))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("receiver: max in-flight must not be negative, not %d", c.MaxInFlight))
	}
	if c.RatePerIP < 0 || c.RatePerIP > 0 && c.RateBurst < 1 {
		errs = append(errs, fmt.Errorf("receiver: rate limit needs a non-negative rate and a burst of at least 1 (rate %g, burst %d)", c.RatePerIP, c.RateBurst))
	}
	if c.MaxHeaderBytes < 4096 {
		errs = append(errs, fmt.Errorf("receiver: max header bytes must be at least 4096, not %d", c.MaxHeaderBytes))
	}
	return errors.Join(errs...)
}
