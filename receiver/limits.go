package receiver

import (
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// limits guards the webhook endpoint: a cap on requests in flight (503) and
// an optional token bucket per client IP (429).
type limits struct {
	inflight chan struct{} // nil: no cap
	rate     rate.Limit
	burst    int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxBuckets bounds the per-IP table; idle buckets are swept beyond it.
const maxBuckets = 10000

func newLimits(cfg Config) *limits {
	l := &limits{rate: rate.Limit(cfg.RatePerIP), burst: cfg.RateBurst, buckets: map[string]*bucket{}}
	if cfg.MaxInFlight > 0 {
		l.inflight = make(chan struct{}, cfg.MaxInFlight)
	}
	return l
}

func (l *limits) allow(ip string, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) >= maxBuckets && now.Sub(l.swept) > time.Second {
			// A full bucket is as good as no bucket: drop the idle ones.
			for k, v := range l.buckets {
				if now.Sub(v.seen) > time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)) {
					delete(l.buckets, k)
				}
			}
			l.swept = now
		}
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		if len(l.buckets) < maxBuckets {
			l.buckets[ip] = b
		}
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

func (l *limits) middleware(retryAfter time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// The client IP as the server's IPExtractor finds it: behind
			// trusted proxies, the client's, not the proxy's.
			if !l.allow(c.RealIP(), time.Now()) {
				return problem(http.StatusTooManyRequests, outcomeRateLimited, "too many requests from this address").retry(retryAfter)
			}
			if l.inflight != nil {
				select {
				case l.inflight <- struct{}{}:
					defer func() { <-l.inflight }()
				default:
					return problem(http.StatusServiceUnavailable, outcomeUnavailable, "the gateway is at capacity").retry(retryAfter)
				}
			}
			return next(c)
		}
	}
}
