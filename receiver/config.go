package receiver

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config configures the webhook server. Start from [DefaultConfig].
type Config struct {
	// Addr is the listen address. Default ":8080".
	Addr string
	// Tokens are the accepted webhook tokens; several at once allow
	// rotation. Secrets: never logged.
	Tokens []string
	// AllowUnauthenticated accepts callbacks without a token when Tokens is
	// empty. Must be set explicitly; New refuses no tokens otherwise.
	AllowUnauthenticated bool
	// BodyLimit is the largest POST body accepted, in bytes. Default 1 MiB.
	BodyLimit int64
	// PublishTimeout bounds how long a callback waits for the sink before
	// it is answered 503. Default 5 s.
	PublishTimeout time.Duration
	// RetryAfter is the Retry-After of 503 and 429 answers. Default 5 s.
	RetryAfter time.Duration
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
		MaxInFlight:       1024,
		RateBurst:         100,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      20 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    1<<20 + 8<<10,
	}
}

// Validate reports every problem with c at once. It never quotes a token.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("receiver: no listen address"))
	}
	if len(c.Tokens) == 0 && !c.AllowUnauthenticated {
		errs = append(errs, errors.New("receiver: no webhook tokens configured and unauthenticated access not allowed"))
	}
	for i, t := range c.Tokens {
		if len(t) < 16 || strings.ContainsAny(t, " \t\r\n,/?#&%") {
			errs = append(errs, fmt.Errorf("receiver: token #%d must be at least 16 characters without spaces, commas or URL delimiters", i+1))
		}
	}
	if c.BodyLimit < 1 {
		errs = append(errs, fmt.Errorf("receiver: body limit must be positive, not %d", c.BodyLimit))
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"publish timeout", c.PublishTimeout}, {"retry-after", c.RetryAfter},
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
