package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestVerificationWaitsForTheSpoolToDrain: an event answered 200 from the
// gateway's spool reaches Kafka only when the spool replays it, so the
// delivery check reads the topics once the gateway's spool gauge says 0
// (seen against Apache Kafka: 426 events of a bench --url run reported
// missing were still in the spool, and in Kafka a moment later). A
// gateway without a spool is not waited for; one whose spool does not
// empty is waited for at most the timeout, and what it still holds is
// reported.
func TestVerificationWaitsForTheSpoolToDrain(t *testing.T) {
	serve := func(t *testing.T, page func(n int64) string) (string, *atomic.Int64) {
		var calls atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/metrics" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprint(w, page(calls.Add(1)))
		}))
		t.Cleanup(srv.Close)
		return srv.URL, &calls
	}
	const other = "# HELP emma_gateway_spool_records_other x\nemma_gateway_spool_bytes 123\n"

	t.Run("drains", func(t *testing.T) {
		url, calls := serve(t, func(n int64) string { return other + fmt.Sprintf("emma_gateway_spool_records %d\n", max(0, 3-n)) })
		waited, left := waitSpoolDrained(context.Background(), url+"/", 10*time.Second)
		if left != 0 || calls.Load() != 3 || waited < 400*time.Millisecond {
			t.Errorf("waited %v, %d left, after %d polls; want 0 left after the third poll (two 200 ms pauses)", waited, left, calls.Load())
		}
	})
	t.Run("no spool", func(t *testing.T) {
		url, calls := serve(t, func(int64) string { return other })
		if waited, left := waitSpoolDrained(context.Background(), url, 10*time.Second); left != 0 || calls.Load() != 1 || waited > 2*time.Second {
			t.Errorf("without the gauge: waited %v, %d left, %d polls; want one poll and no wait", waited, left, calls.Load())
		}
	})
	t.Run("never drains", func(t *testing.T) {
		url, _ := serve(t, func(int64) string { return "emma_gateway_spool_records 7\n" })
		waited, left := waitSpoolDrained(context.Background(), url, 600*time.Millisecond)
		if left != 7 || waited < 600*time.Millisecond || waited > 5*time.Second {
			t.Errorf("a spool that never drains: waited %v, %d left; want 7 left after the 600 ms bound", waited, left)
		}
	})
	t.Run("no metrics", func(t *testing.T) {
		if waited, left := waitSpoolDrained(context.Background(), "http://127.0.0.1:1", 10*time.Second); left != 0 || waited > 5*time.Second {
			t.Errorf("an unreachable /metrics: waited %v, %d left", waited, left)
		}
	})
}
