package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/dedup"
)

// countingSink counts the publishes made durable, by event id. fail, when
// set, decides per call (1-based) whether that publish fails; gate, when
// set, holds each publish until it is closed or sent to.
type countingSink struct {
	mu      sync.Mutex
	calls   int
	durable map[string]int
	fail    func(call int) bool
	entered chan int // receives the call number as a publish starts, when set
	gate    chan struct{}
	// holdPastDeadline makes a gated publish ignore its context, like a
	// write already sent that Kafka has yet to acknowledge.
	holdPastDeadline bool
}

func (s *countingSink) Publish(ctx context.Context, ev *events.Event) error {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	if s.entered != nil {
		s.entered <- n
	}
	if s.gate != nil && s.holdPastDeadline {
		<-s.gate
	} else if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.fail != nil && s.fail(n) {
		return errors.New("kafka down")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.durable == nil {
		s.durable = map[string]int{}
	}
	s.durable[ev.ID]++
	return nil
}

func (s *countingSink) DeadLetter(context.Context, *events.Rejection) error { return nil }

func (s *countingSink) counts() (calls int, durable map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := map[string]int{}
	for k, v := range s.durable {
		d[k] = v
	}
	return s.calls, d
}

func newDedupServer(t *testing.T, w *dedup.Window, sink Sink, mutate func(*Config)) *httptest.Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	if mutate != nil {
		mutate(&cfg)
	}
	set := testSettings(t)
	s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: sink, Dedup: w, Mounts: metricsMount(set)}, set)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func newDedupWindow(t *testing.T, window time.Duration, maxEntries int) *dedup.Window {
	t.Helper()
	w, err := dedup.New(dedup.Config{Window: window, MaxEntries: maxEntries})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// openFor is openEvent for another member, so that its event_id differs.
func openFor(member int) string {
	return strings.Replace(openEvent, `"member_id":6160010079`, fmt.Sprintf(`"member_id":%d`, member), 1)
}

// TestDuplicateIsAnsweredWithoutPublish: the same callback again, by POST
// and by GET, is answered 200 with the first copy's event_id and
// "duplicate": true, and published once; an unrecognized event too.
func TestDuplicateIsAnsweredWithoutPublish(t *testing.T) {
	sink := &countingSink{}
	ts := newDedupServer(t, newDedupWindow(t, time.Minute, 100), sink, nil)
	hook := ts.URL + "/webhooks/emma/" + token
	unknown := `{"event_name":"member_birthday","data":{"account_id":1743199,"member_id":5}}`
	for _, body := range []string{openEvent, unknown} {
		first := do(t, post(t, hook, "application/json", body))
		if first.status != 200 || first.body["duplicate"] != nil {
			t.Fatalf("first copy: %d %v", first.status, first.body)
		}
		for i, req := range []*http.Request{post(t, hook, "", body), get(t, withPayload(hook, body))} {
			a := do(t, req)
			if a.status != 200 || a.body["duplicate"] != true || a.body["event_id"] != first.body["event_id"] ||
				a.body["status"] != "accepted" || a.body["recognized"] != first.body["recognized"] {
				t.Fatalf("copy %d: %d %v (first %v)", i+2, a.status, a.body, first.body)
			}
		}
	}
	calls, durable := sink.counts()
	if calls != 2 || len(durable) != 2 {
		t.Fatalf("%d publishes, durable %v; want one per callback", calls, durable)
	}
	if other := do(t, post(t, hook, "", openFor(42))); other.status != 200 || other.body["duplicate"] != nil {
		t.Fatalf("another callback: %d %v", other.status, other.body)
	}
	m := scrape(t, ts.URL)
	for _, want := range []string{
		`emma_gateway_webhook_requests_total{delivery="POST",event="message_open",outcome="duplicate"} 1`,
		`emma_gateway_webhook_requests_total{delivery="GET",event="message_open",outcome="duplicate"} 1`,
		`emma_gateway_webhook_requests_total{delivery="GET",event="unrecognized",outcome="duplicate"} 1`,
		`emma_gateway_dedup_remembered 3`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDedupOffPublishesEveryCopy: without a window (nil Deps.Dedup) every
// copy is published, as before.
func TestDedupOffPublishesEveryCopy(t *testing.T) {
	sink := &countingSink{}
	ts := newDedupServer(t, nil, sink, nil)
	for range 3 {
		if a := do(t, post(t, ts.URL+"/webhooks/emma/"+token, "", openEvent)); a.status != 200 || a.body["duplicate"] != nil {
			t.Fatalf("%d %v", a.status, a.body)
		}
	}
	if calls, _ := sink.counts(); calls != 3 {
		t.Fatalf("%d publishes, want 3", calls)
	}
}

// TestConcurrentDuplicatesPublishOnce: copies arriving while the first is
// being published wait for it, and are duplicates once it is durable.
func TestConcurrentDuplicatesPublishOnce(t *testing.T) {
	const copies = 8
	w := newDedupWindow(t, time.Minute, 100)
	sink := &countingSink{entered: make(chan int, copies), gate: make(chan struct{})}
	ts := newDedupServer(t, w, sink, nil)
	answers := make(chan answer, copies)
	send := func() { answers <- do(t, post(t, ts.URL+"/webhooks/emma/"+token, "", openEvent)) }
	go send()
	<-sink.entered // the first copy is publishing
	for range copies - 1 {
		go send()
	}
	waitFor(t, func() bool { return w.Stats().Waits == copies-1 })
	close(sink.gate)
	var dups int
	for range copies {
		a := <-answers
		if a.status != 200 {
			t.Fatalf("%d %v", a.status, a.body)
		}
		if a.body["duplicate"] == true {
			dups++
		}
	}
	calls, durable := sink.counts()
	if calls != 1 || dups != copies-1 || len(durable) != 1 {
		t.Fatalf("%d publishes, %d duplicates, durable %v", calls, dups, durable)
	}
}

// TestFailingFirstCopyIsNoDuplicate: a copy that waited for a first whose
// publish failed is not answered 200 on its strength: it publishes itself.
// The first is answered 503.
func TestFailingFirstCopyIsNoDuplicate(t *testing.T) {
	w := newDedupWindow(t, time.Minute, 100)
	sink := &countingSink{entered: make(chan int, 2), gate: make(chan struct{}), fail: func(call int) bool { return call == 1 }}
	ts := newDedupServer(t, w, sink, nil)
	first, second := make(chan answer, 1), make(chan answer, 1)
	go func() { first <- do(t, post(t, ts.URL+"/webhooks/emma/"+token, "", openEvent)) }()
	<-sink.entered
	go func() { second <- do(t, post(t, ts.URL+"/webhooks/emma/"+token, "", openEvent)) }()
	waitFor(t, func() bool { return w.Stats().Waits == 1 })
	sink.gate <- struct{}{} // the first publish goes on, and fails
	if a := <-first; a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Fatalf("failed first copy: %d %v", a.status, a.body)
	}
	if n := <-sink.entered; n != 2 {
		t.Fatalf("publish #%d after the failure, want #2", n)
	}
	close(sink.gate)
	a := <-second
	if a.status != 200 || a.body["duplicate"] != nil {
		t.Fatalf("second copy: %d %v; want 200 from its own publish", a.status, a.body)
	}
	if calls, durable := sink.counts(); calls != 2 || len(durable) != 1 {
		t.Fatalf("%d publishes, durable %v", calls, durable)
	}
	if a := do(t, post(t, ts.URL+"/webhooks/emma/"+token, "", openEvent)); a.body["duplicate"] != true {
		t.Fatalf("a third copy after the durable second: %v", a.body)
	}
}

// TestCopyWaitingPastItsDeadlineIs503: when the first copy's outcome is
// still unknown at the publish timeout, the waiting copy is answered 503
// with Retry-After, never 200, and does not publish; once the first is
// durable, a retry is a duplicate.
func TestCopyWaitingPastItsDeadlineIs503(t *testing.T) {
	w := newDedupWindow(t, time.Minute, 100)
	sink := &countingSink{entered: make(chan int, 2), gate: make(chan struct{}), holdPastDeadline: true}
	ts := newDedupServer(t, w, sink, func(c *Config) { c.PublishTimeout = 200 * time.Millisecond })
	hook := ts.URL + "/webhooks/emma/" + token
	first := make(chan answer, 1)
	go func() { first <- do(t, post(t, hook, "", openEvent)) }()
	<-sink.entered
	a := do(t, post(t, hook, "", openEvent))
	if a.status != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body["detail"].(string), "still being made durable") {
		t.Fatalf("waiting copy: %d %v", a.status, a.body)
	}
	close(sink.gate)
	if a := <-first; a.status != 200 {
		t.Fatalf("first copy: %d %v", a.status, a.body)
	}
	if a := do(t, post(t, hook, "", openEvent)); a.status != 200 || a.body["duplicate"] != true {
		t.Fatalf("retry after the first was durable: %d %v", a.status, a.body)
	}
	if calls, _ := sink.counts(); calls != 1 {
		t.Fatalf("%d publishes, want 1", calls)
	}
}

// TestDedupMemoryBound: with room for 3 ids, the oldest is forgotten when
// a fourth becomes durable, so a late copy of it is published again, while
// the newer ones are still duplicates; the window never holds more than 3.
func TestDedupMemoryBound(t *testing.T) {
	w := newDedupWindow(t, time.Hour, 3)
	sink := &countingSink{}
	ts := newDedupServer(t, w, sink, nil)
	hook := ts.URL + "/webhooks/emma/" + token
	for m := 1; m <= 5; m++ {
		if a := do(t, post(t, hook, "", openFor(m))); a.status != 200 || a.body["duplicate"] != nil {
			t.Fatalf("member %d: %d %v", m, a.status, a.body)
		}
		if s := w.Stats(); s.Remembered > 3 {
			t.Fatalf("%d remembered, bound 3", s.Remembered)
		}
	}
	if s := w.Stats(); s.Remembered != 3 || s.Evicted != 2 {
		t.Fatalf("stats %+v", s)
	}
	for m := 3; m <= 5; m++ {
		if a := do(t, post(t, hook, "", openFor(m))); a.body["duplicate"] != true {
			t.Fatalf("member %d within the bound: %v", m, a.body)
		}
	}
	if a := do(t, post(t, hook, "", openFor(1))); a.status != 200 || a.body["duplicate"] != nil {
		t.Fatalf("evicted member 1: %d %v; want published again", a.status, a.body)
	}
	if calls, _ := sink.counts(); calls != 6 {
		t.Fatalf("%d publishes, want 6", calls)
	}
	if m := scrape(t, ts.URL); !strings.Contains(m, "emma_gateway_dedup_evicted_total 3") {
		t.Fatalf("evictions not in metrics:\n%s", m)
	}
}

// waitFor polls cond, boundedly.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
