package emmaapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRetriesAreJittered: the waits between retries are spread around the
// doubling backoff, so that clients failing together do not retry in step;
// a Retry-After is kept as Emma gave it.
func TestRetriesAreJittered(t *testing.T) {
	retryAfter := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.BaseURL, cfg.AccountID, cfg.PublicKey, cfg.PrivateKey = srv.URL, "100", "pub", "priv"
	cfg.RetryBackoff, cfg.MaxBackoff, cfg.MaxRetries = 100*time.Millisecond, time.Hour, 4
	cfg.CallsPerMinute, cfg.Burst = 60000, 100
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	distinct := map[time.Duration]bool{}
	for range 5 {
		waits = nil
		if _, err := c.List(context.Background()); err == nil {
			t.Fatal("a 503 answer succeeded")
		}
		if len(waits) != 4 {
			t.Fatalf("%d waits, want 4", len(waits))
		}
		for i, w := range waits {
			base := cfg.RetryBackoff << i
			if w < base/2 || w >= 3*base/2 {
				t.Errorf("wait %d is %v, outside [%v, %v)", i, w, base/2, 3*base/2)
			}
			distinct[w] = true
		}
	}
	if len(distinct) < 10 {
		t.Errorf("20 waits took only %d values: not jittered", len(distinct))
	}
	retryAfter = "7"
	waits = nil
	_, _ = c.List(context.Background())
	for _, w := range waits {
		if w != 7*time.Second {
			t.Errorf("wait %v, Retry-After said 7s", w)
		}
	}
}
