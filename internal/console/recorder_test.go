package console

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/emma-gateway/emma-gateway/events"
)

// clock is a settable clock for the recorder.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// t0 is on a Step boundary, so that the series' points are easy to name.
var t0 = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

func newTestRecorder(cfg RecorderConfig) (*Recorder, *clock) {
	c := &clock{t: t0}
	cfg.Now = c.now
	return NewRecorder(cfg), c
}

func TestHistogramQuantileIsAnUpperBoundWithinAQuarter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		var h histogram
		n := 1 + rng.IntN(5000)
		lat := make([]time.Duration, n)
		for i := range lat {
			// log-uniform from 1 µs to 10 s
			lat[i] = time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*7))
			h.add(lat[i])
		}
		slices.Sort(lat)
		exact := lat[(99*n+99)/100-1] // the ceil(0.99 n)-th smallest
		got := h.quantile(0.99)
		if got < exact || float64(got) > 1.25*float64(exact)+float64(time.Microsecond) {
			t.Fatalf("trial %d, %d latencies: p99 %v, exact %v: want within [exact, 1.25 exact]", trial, n, got, exact)
		}
	}
	var h histogram
	if h.quantile(0.99) != 0 {
		t.Error("p99 of nothing is not zero")
	}
	h.add(10 * time.Minute) // beyond the last bucket: clamped, not lost
	if got := h.quantile(0.99); got < time.Minute {
		t.Errorf("p99 of one 10-minute answer: %v", got)
	}
}

func TestBucketBoundsCoverEveryMicrosecond(t *testing.T) {
	prev := -1
	for us := int64(0); us < 1<<20; us++ {
		d := time.Duration(us) * time.Microsecond
		b := bucketOf(d)
		if b < prev {
			t.Fatalf("bucket of %v is %d, below the bucket %d of a smaller latency", d, b, prev)
		}
		if ub := upperBound(b); ub <= d {
			t.Fatalf("%v in bucket %d whose upper bound is %v", d, b, ub)
		}
		if b > 0 && upperBound(b-1) > d {
			t.Fatalf("%v in bucket %d, but bucket %d already ends above it at %v", d, b, b-1, upperBound(b-1))
		}
		prev = b
	}
}

func TestRingKeepsOnlyTheNewestCallbacks(t *testing.T) {
	r, _ := newTestRecorder(RecorderConfig{Recent: 5, DeadLetters: 3})
	for i := range 12 {
		r.Record(Callback{EventID: fmt.Sprint("id-", i), Outcome: "accepted", Status: 200})
	}
	s := r.Snapshot()
	var ids []string
	for _, c := range s.Recent {
		ids = append(ids, c.EventID)
	}
	if want := []string{"id-11", "id-10", "id-9", "id-8", "id-7"}; !slices.Equal(ids, want) {
		t.Errorf("recent %v, want %v (newest first, bounded at 5)", ids, want)
	}
	if s.Callbacks != 12 {
		t.Errorf("callbacks counted %d, want 12", s.Callbacks)
	}
	for i := range 4 {
		r.RecordDeadLetter(DeadLetter{Reason: fmt.Sprint("r", i)})
	}
	s = r.Snapshot()
	var reasons []string
	for _, d := range s.DeadLetters {
		reasons = append(reasons, d.Reason)
	}
	if want := []string{"r3", "r2", "r1"}; !slices.Equal(reasons, want) || s.DeadLetterCount != 4 {
		t.Errorf("dead letters %v (count %d), want %v and 4", reasons, s.DeadLetterCount, want)
	}
	// Fewer than the ring holds: only those.
	r2, _ := newTestRecorder(RecorderConfig{})
	r2.Record(Callback{EventID: "only"})
	if s := r2.Snapshot(); len(s.Recent) != 1 || len(s.DeadLetters) != 0 {
		t.Errorf("one callback recorded, snapshot has %d callbacks and %d letters", len(s.Recent), len(s.DeadLetters))
	}
}

func TestRecorderClipsLongStrings(t *testing.T) {
	r, _ := newTestRecorder(RecorderConfig{})
	long := string(make([]byte, 5000))
	r.Record(Callback{Event: long, EventID: long})
	if c := r.Snapshot().Recent[0]; len(c.Event) != maxText || len(c.EventID) != maxText {
		t.Errorf("event %d and event_id %d bytes kept, want %d", len(c.Event), len(c.EventID), maxText)
	}
}

func TestBucketsCountByOutcomeOverTheWindow(t *testing.T) {
	r, clk := newTestRecorder(RecorderConfig{})
	// Second 0: 100 accepted (99 at 1 ms, one at 800 ms) and 4 invalid.
	for i := range 100 {
		lat := time.Millisecond
		if i == 99 {
			lat = 800 * time.Millisecond
		}
		r.Record(Callback{Outcome: "accepted", Latency: lat})
	}
	for range 4 {
		r.Record(Callback{Outcome: "invalid", Latency: 100 * time.Microsecond})
	}
	clk.add(25 * time.Second) // into the third step
	for range 20 {
		r.Record(Callback{Outcome: "accepted", Latency: 2 * time.Millisecond})
	}
	s := r.Snapshot()
	if !slices.Equal(s.Outcomes, []string{"accepted", "invalid"}) {
		t.Fatalf("outcomes %v", s.Outcomes)
	}
	if len(s.Series) != int(Window/Step) {
		t.Fatalf("%d points, want %d", len(s.Series), Window/Step)
	}
	last := s.Series[len(s.Series)-1]
	third := s.Series[len(s.Series)-3]
	if !last.Start.Equal(t0.Add(20*time.Second)) || !third.Start.Equal(t0) {
		t.Fatalf("last point starts %v, third from last %v", last.Start, third.Start)
	}
	if !slices.Equal(third.Counts, []int64{100, 4}) || !slices.Equal(last.Counts, []int64{20, 0}) {
		t.Errorf("counts %v and %v, want [100 4] and [20 0]", third.Counts, last.Counts)
	}
	if third.AcceptedPerSec != 10 {
		t.Errorf("accepted/s of a 10 s step with 100: %v", third.AcceptedPerSec)
	}
	// The last step has run 6 seconds (20..25): 20/6 per second.
	if got := last.AcceptedPerSec; got < 3.33 || got > 3.34 {
		t.Errorf("accepted/s of the running step: %v, want 20/6", got)
	}
	// p99 of 104: the 103rd smallest is 1 ms; the 800 ms one is the 1 %.
	if third.P99 < time.Millisecond || third.P99 > 1250*time.Microsecond {
		t.Errorf("p99 of the first second %v, want about 1 ms", third.P99)
	}
	if s.LastMinute.Answers != 124 || !slices.Equal(s.LastMinute.Counts, []int64{120, 4}) {
		t.Errorf("last minute %+v", s.LastMinute)
	}
	if got := s.LastMinute.AcceptedPerSec; got != 2 {
		t.Errorf("accepted/s over the last minute %v, want 120/60", got)
	}
	// 14 minutes on, the first second has left the last minute but not the
	// window; a minute more and it has left both.
	clk.add(14 * time.Minute)
	s = r.Snapshot()
	if s.LastMinute.Answers != 0 || s.Total.Answers != 124 {
		t.Errorf("after 14 min: last minute %d, window %d; want 0 and 124", s.LastMinute.Answers, s.Total.Answers)
	}
	clk.add(time.Minute)
	s = r.Snapshot()
	if s.Total.Answers != 0 || s.Total.P99 != 0 {
		t.Errorf("after 15 min: window still counts %d answers, p99 %v", s.Total.Answers, s.Total.P99)
	}
	// The slot of a second is reused, never summed with the one 15 min
	// before it.
	r.Record(Callback{Outcome: "accepted"})
	if s := r.Snapshot(); s.Total.Answers != 1 {
		t.Errorf("a new answer in a reused slot: window counts %d", s.Total.Answers)
	}
	// A callback stamped older than its slot's second is shown in the
	// ring but not counted.
	r.Record(Callback{Time: clk.now().Add(-Window), Outcome: "accepted", EventID: "late"})
	if s := r.Snapshot(); s.Total.Answers != 1 || s.Recent[0].EventID != "late" {
		t.Errorf("late callback: window %d, newest %q", s.Total.Answers, s.Recent[0].EventID)
	}
}

func TestOutcomesBeyondTheBoundCountAsOther(t *testing.T) {
	r, _ := newTestRecorder(RecorderConfig{})
	for i := range 40 {
		r.Record(Callback{Outcome: fmt.Sprint("o", i)})
	}
	s := r.Snapshot()
	if len(s.Outcomes) != maxOutcomes || s.Outcomes[maxOutcomes-1] != otherOutcome {
		t.Fatalf("%d outcomes, last %q", len(s.Outcomes), s.Outcomes[len(s.Outcomes)-1])
	}
	if got := s.Total.Counts[maxOutcomes-1]; got != 40-(maxOutcomes-2) {
		t.Errorf("other counts %d, want %d", got, 40-(maxOutcomes-2))
	}
	if s.Total.Answers != 40 {
		t.Errorf("answers %d, want 40", s.Total.Answers)
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	r := NewRecorder(RecorderConfig{})
	c := Callback{Method: "POST", Event: "message_open", Account: 1743199, Status: 200, Outcome: "accepted", Latency: 3 * time.Millisecond, EventID: "b1946ac92492d2347c6235b4d2611184", Topic: "emma.message_open", Partition: 3, Offset: 12345}
	r.Record(c) // the outcome's first use takes its slot
	if n := testing.AllocsPerRun(1000, func() { r.Record(c) }); n != 0 {
		t.Errorf("Record allocates %v times per call", n)
	}
}

func TestRecordIsSafeConcurrently(t *testing.T) {
	r := NewRecorder(RecorderConfig{Recent: 64})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				r.Record(Callback{Outcome: "accepted", EventID: fmt.Sprint(g, "-", i)})
				if i%500 == 0 {
					r.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	if s := r.Snapshot(); s.Callbacks != 8000 || len(s.Recent) != 64 || s.Total.Answers != 8000 {
		t.Errorf("callbacks %d, recent %d, window %d", s.Callbacks, len(s.Recent), s.Total.Answers)
	}
}

// BenchmarkRecord is the console's cost per callback on the webhook path
// (the budget: about a microsecond).
func BenchmarkRecord(b *testing.B) {
	r := NewRecorder(RecorderConfig{})
	c := Callback{Method: "POST", Event: "message_open", Account: 1743199, Status: 200, Outcome: "accepted", Latency: 3 * time.Millisecond, EventID: "b1946ac92492d2347c6235b4d2611184", Topic: "emma.message_open", Partition: 3, Offset: 12345, Time: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		r.Record(c)
	}
}

// BenchmarkRecordParallel is Record under contention from every core, as
// concurrent webhooks call it.
func BenchmarkRecordParallel(b *testing.B) {
	r := NewRecorder(RecorderConfig{})
	c := Callback{Method: "POST", Event: "message_open", Account: 1743199, Status: 200, Outcome: "accepted", Latency: 3 * time.Millisecond, EventID: "b1946ac92492d2347c6235b4d2611184", Topic: "emma.message_open", Partition: 3, Offset: 12345}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(c)
		}
	})
}

// BenchmarkSnapshot is the cost of one poll of an open console.
func BenchmarkSnapshot(b *testing.B) {
	r := NewRecorder(RecorderConfig{})
	for i := range 10000 {
		r.Record(Callback{Outcome: []string{"accepted", "invalid", "duplicate"}[i%3], Latency: time.Duration(i) * time.Microsecond})
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Snapshot()
	}
}

func TestRecordKeepsNoSliceOfThePayload(t *testing.T) {
	rec := NewRecorder(RecorderConfig{Recent: 2, DeadLetters: 2})
	payload := `{"event_name":"made_up_event","data":{"account_id":1}}` + strings.Repeat(" ", 1<<16)
	name := payload[15:28] // as the decoder hands it over: a slice of the payload
	rec.Record(Callback{Time: time.Now(), Method: "POST", Event: name, Status: 200, Outcome: OutcomeAccepted})
	rec.RecordDeadLetter(DeadLetter{Time: time.Now(), Method: "POST", Event: name, Reason: "validation"})
	snap := rec.Snapshot()
	for _, got := range []string{snap.Recent[0].Event, snap.DeadLetters[0].Event} {
		if got != "made_up_event" {
			t.Fatalf("event %q", got)
		}
		if unsafe.StringData(got) == unsafe.StringData(name) {
			t.Error("the ring keeps a slice of the payload, and so the whole payload alive")
		}
	}
	rec.Record(Callback{Time: time.Now(), Method: "POST", Event: strings.Clone("message_open"), Status: 200, Outcome: OutcomeAccepted})
	known, _ := events.Lookup("message_open")
	if got := rec.Snapshot().Recent[0].Event; unsafe.StringData(got) != unsafe.StringData(known.Name) {
		t.Error("a known event's name is not the registry's own string")
	}
}
