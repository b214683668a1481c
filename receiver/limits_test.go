package receiver

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRateLimitRefillsAndSweepsIdleBuckets: the per-IP bucket refills at
// the configured rate, one client's bucket does not spend another's, and a
// full table drops its idle buckets. The clock is explicit (allow takes
// now), so no test waits for real time.
func TestRateLimitRefillsAndSweepsIdleBuckets(t *testing.T) {
	l := newLimits(Config{RatePerIP: 1, RateBurst: 2})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []bool
	for _, at := range []time.Duration{0, 0, 0, 500 * time.Millisecond, time.Second, 1100 * time.Millisecond} {
		got = append(got, l.allow("192.0.2.1", t0.Add(at)))
	}
	if diff := cmp.Diff([]bool{true, true, false, false, true, false}, got); diff != "" {
		t.Fatalf("allowed at 0, 0, 0, 0.5 s, 1 s, 1.1 s (-want +got):\n%s", diff)
	}
	if !l.allow("192.0.2.2", t0) {
		t.Fatal("another client's requests spent this one's bucket")
	}

	for i := range maxBuckets {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&0xff, i&0xff), t0)
	}
	if n := len(l.buckets); n != maxBuckets {
		t.Fatalf("%d buckets, want the table full at %d", n, maxBuckets)
	}
	// Long after every bucket has refilled, a new client finds the idle
	// ones swept.
	later := t0.Add(time.Hour)
	if !l.allow("198.51.100.7", later) {
		t.Fatal("a new client refused")
	}
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1 (the new client's)", n)
	}
}
