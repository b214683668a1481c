package console

import (
	"math"
	"math/bits"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emma-gateway/emma-gateway/events"
)

// Window is how far back the per-second counts go: the plot and the
// totals cover the last 15 minutes.
const Window = 15 * time.Minute

const (
	windowSeconds = int64(Window / time.Second)
	// maxOutcomes bounds the outcome names counted apart; the receiver has
	// about a dozen. Names beyond it are counted as "other", so that a
	// wiring bug cannot grow the per-second buckets.
	maxOutcomes  = 24
	otherOutcome = "other"
	// maxText bounds a string taken from a request (an unrecognized
	// event_name is whatever the sender wrote).
	maxText = 80
)

// OutcomeAccepted is the outcome of a callback made durable and published;
// the accepted/s figures count it.
const OutcomeAccepted = "accepted"

// Callback is one webhook answer as the console shows it. It has no field
// for the payload or a token, on purpose.
type Callback struct {
	// Time is when the request arrived; zero means the recorder's now.
	Time time.Time
	// Method is GET or POST.
	Method string
	// Event is the event_name, empty when none was read.
	Event string
	// Account is the Emma account id, 0 when unknown.
	Account int64
	// Status is the HTTP status answered.
	Status int
	// Outcome is the receiver's outcome label ("accepted", "invalid",
	// "unauthorized", ...).
	Outcome string
	// Latency is the time from arrival to answer.
	Latency time.Duration
	// EventID is the event's event_id, when it has one.
	EventID string
	// Topic, Partition and Offset say where Kafka put the event (the first
	// destination when routes fan it out); Partition is -1 when unknown.
	Topic     string
	Partition int32
	Offset    int64
	// Spooled is true when the event went to the local spool, not (yet)
	// to Kafka.
	Spooled bool
}

// DeadLetter is a callback rejected to the dead-letter topic.
type DeadLetter struct {
	// Time is when the request arrived; zero means the recorder's now.
	Time time.Time
	// Method is GET or POST.
	Method string
	// Event is the event_name, empty when none was read.
	Event string
	// Account is the Emma account id, 0 when unknown.
	Account int64
	// Reason is why the callback was rejected (the dead letter's reason
	// header).
	Reason string
	// Fields are the fields that failed validation.
	Fields []events.FieldError
	// Topic, Partition and Offset locate the letter in the dead-letter
	// topic; Partition is -1 when unknown.
	Topic     string
	Partition int32
	Offset    int64
}

// RecorderConfig configures a [Recorder].
type RecorderConfig struct {
	// Recent is how many callbacks the ring keeps. Default 200.
	Recent int
	// DeadLetters is how many dead letters are kept. Default 50.
	DeadLetters int
	// Now is the clock; default time.Now. Tests inject one.
	Now func() time.Time
}

// DefaultRecorderConfig returns the defaults documented on
// [RecorderConfig].
func DefaultRecorderConfig() RecorderConfig {
	return RecorderConfig{Recent: 200, DeadLetters: 50, Now: time.Now}
}

// Recorder keeps what the console shows: a ring of the most recent
// callbacks, one of the latest dead letters, and per-second counts by
// outcome with a latency histogram over the last [Window].
//
// Everything is preallocated: [Recorder.Record] copies the callback into a
// slot and bumps counters under one mutex, without allocating, so that it
// can sit on the hot path of every webhook (see BenchmarkRecord).
type Recorder struct {
	now func() time.Time

	mu      sync.Mutex
	recent  []Callback
	next    int // slot of the next callback
	total   int64
	letters []DeadLetter
	nextDL  int
	totalDL int64
	seconds []second // indexed by unix second modulo windowSeconds
	names   []string // outcome names by index; [0] is "accepted"
	index   map[string]uint8
}

// second holds the answers of one wall-clock second.
type second struct {
	unix   int64
	counts [maxOutcomes]uint32
	hist   histogram
}

// NewRecorder returns a recorder; zero fields of cfg take their defaults.
func NewRecorder(cfg RecorderConfig) *Recorder {
	d := DefaultRecorderConfig()
	if cfg.Recent <= 0 {
		cfg.Recent = d.Recent
	}
	if cfg.DeadLetters <= 0 {
		cfg.DeadLetters = d.DeadLetters
	}
	if cfg.Now == nil {
		cfg.Now = d.Now
	}
	r := &Recorder{
		now:     cfg.Now,
		recent:  make([]Callback, cfg.Recent),
		letters: make([]DeadLetter, cfg.DeadLetters),
		seconds: make([]second, windowSeconds),
		names:   make([]string, 0, maxOutcomes),
		index:   make(map[string]uint8, maxOutcomes),
	}
	r.outcome(OutcomeAccepted)
	return r
}

func clip(s string) string {
	if len(s) > maxText {
		return s[:maxText]
	}
	return s
}

// ownName is an event name the ring may keep: the registry's own string for
// a known event (no allocation), otherwise a copy. The decoder's strings
// are slices of the callback's payload, and a slice kept in the ring would
// keep the whole payload (up to the body limit) alive as long as its row.
func ownName(s string) string {
	if t, ok := events.Lookup(s); ok {
		return t.Name
	}
	s = clip(s)
	for len(s) > 0 && !utf8.ValidString(s) { // cut at a rune boundary
		s = s[:len(s)-1]
	}
	return strings.Clone(s)
}

// outcome returns the index of name, adding it while there is room. Called
// with mu held.
func (r *Recorder) outcome(name string) uint8 {
	if i, ok := r.index[name]; ok {
		return i
	}
	if len(r.names) >= maxOutcomes-1 {
		name = otherOutcome
		if i, ok := r.index[name]; ok {
			return i
		}
	}
	i := uint8(len(r.names))
	r.names = append(r.names, name)
	r.index[name] = i
	return i
}

// Record adds one answered callback.
func (r *Recorder) Record(c Callback) {
	if c.Time.IsZero() {
		c.Time = r.now()
	}
	c.Event, c.EventID, c.Outcome, c.Method = ownName(c.Event), clip(c.EventID), clip(c.Outcome), clip(c.Method)
	unix := c.Time.Unix()
	r.mu.Lock()
	r.recent[r.next] = c
	r.next = (r.next + 1) % len(r.recent)
	r.total++
	s := &r.seconds[mod(unix, windowSeconds)]
	if s.unix != unix {
		if s.unix > unix {
			// Older than what the slot holds now: too late for the counts.
			r.mu.Unlock()
			return
		}
		*s = second{unix: unix}
	}
	s.counts[r.outcome(c.Outcome)]++
	s.hist.add(c.Latency)
	r.mu.Unlock()
}

// RecordDeadLetter adds one dead letter. Its Fields slice is kept, not
// copied: the caller must not change it afterwards.
func (r *Recorder) RecordDeadLetter(d DeadLetter) {
	if d.Time.IsZero() {
		d.Time = r.now()
	}
	d.Event, d.Method, d.Reason = ownName(d.Event), clip(d.Method), clip(d.Reason)
	r.mu.Lock()
	r.letters[r.nextDL] = d
	r.nextDL = (r.nextDL + 1) % len(r.letters)
	r.totalDL++
	r.mu.Unlock()
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Step is the width of one point of [Snapshot.Series].
const Step = 10 * time.Second

// Snapshot is a consistent copy of what a [Recorder] holds.
type Snapshot struct {
	// Now is the recorder's clock when the snapshot was taken.
	Now time.Time
	// Recent holds the most recent callbacks, newest first.
	Recent []Callback
	// Callbacks counts every callback recorded since start.
	Callbacks int64
	// DeadLetters holds the latest dead letters, newest first.
	DeadLetters []DeadLetter
	// DeadLetterCount counts every dead letter recorded since start.
	DeadLetterCount int64
	// Outcomes names the outcomes seen, "accepted" first; Point.Counts and
	// Totals.Counts are indexed alike.
	Outcomes []string
	// Series covers the last [Window] in points [Step] apart, oldest first.
	Series []Point
	// LastMinute and Total sum the last minute and the whole window.
	LastMinute, Total Totals
}

// Point is one step of the plot.
type Point struct {
	// Start is the first second of the step.
	Start time.Time
	// Counts are the answers by outcome (indexed as Snapshot.Outcomes).
	Counts []int64
	// AcceptedPerSec is the rate of accepted callbacks over the step (over
	// the part already elapsed, for the last one).
	AcceptedPerSec float64
	// P99 is the 99th percentile of the answers' latency; zero without
	// answers.
	P99 time.Duration
}

// Totals sums a stretch of the window.
type Totals struct {
	// Counts are the answers by outcome (indexed as Snapshot.Outcomes).
	Counts []int64
	// Answers is the sum of Counts.
	Answers int64
	// AcceptedPerSec is the rate of accepted callbacks over the stretch.
	AcceptedPerSec float64
	// P99 is the 99th percentile of the answers' latency.
	P99 time.Duration
}

// Snapshot copies what the recorder holds.
func (r *Recorder) Snapshot() Snapshot {
	now := r.now()
	snap := Snapshot{Now: now}
	nowUnix := now.Unix()
	step := int64(Step / time.Second)
	// Points aligned on Step: the last one holds now.
	lastStart := nowUnix - mod(nowUnix, step)
	firstStart := lastStart - windowSeconds + step

	r.mu.Lock()
	snap.Callbacks, snap.DeadLetterCount = r.total, r.totalDL
	n := int(min(r.total, int64(len(r.recent))))
	snap.Recent = make([]Callback, 0, n)
	for i := 1; i <= n; i++ {
		snap.Recent = append(snap.Recent, r.recent[(r.next-i+len(r.recent))%len(r.recent)])
	}
	n = int(min(r.totalDL, int64(len(r.letters))))
	snap.DeadLetters = make([]DeadLetter, 0, n)
	for i := 1; i <= n; i++ {
		snap.DeadLetters = append(snap.DeadLetters, r.letters[(r.nextDL-i+len(r.letters))%len(r.letters)])
	}
	snap.Outcomes = append([]string(nil), r.names...)
	no := len(snap.Outcomes)
	var total, minute acc
	total.init(no)
	minute.init(no)
	for start := firstStart; start <= lastStart; start += step {
		var pt acc
		pt.init(no)
		for u := start; u < start+step && u <= nowUnix; u++ {
			s := &r.seconds[mod(u, windowSeconds)]
			if s.unix != u {
				continue
			}
			pt.add(s, no)
			total.add(s, no)
			if u > nowUnix-60 {
				minute.add(s, no)
			}
		}
		elapsed := min(step, nowUnix-start+1)
		snap.Series = append(snap.Series, Point{
			Start:          time.Unix(start, 0),
			Counts:         pt.counts,
			AcceptedPerSec: float64(pt.counts[0]) / float64(elapsed),
			P99:            pt.hist.quantile(0.99),
		})
	}
	r.mu.Unlock()
	snap.Total = total.totals(nowUnix - firstStart + 1)
	snap.LastMinute = minute.totals(60)
	return snap
}

// acc sums seconds.
type acc struct {
	counts []int64
	hist   histogram
}

func (a *acc) init(n int) { a.counts = make([]int64, n) }

func (a *acc) add(s *second, n int) {
	for i := range n {
		a.counts[i] += int64(s.counts[i])
	}
	a.hist.merge(&s.hist)
}

func (a *acc) totals(seconds int64) Totals {
	t := Totals{Counts: a.counts, P99: a.hist.quantile(0.99)}
	for _, c := range a.counts {
		t.Answers += c
	}
	t.AcceptedPerSec = float64(a.counts[0]) / float64(seconds)
	return t
}

// histogram is a log-linear histogram of latencies in microseconds: four
// buckets per power of two, so a quantile is known within 25 % (it is
// reported as its bucket's upper bound, never below the truth) from 1 µs
// to over a minute in 100 counters. A sorted sample would be exact but
// cost an allocation per second and a sort per snapshot.
type histogram [histBuckets]uint32

const (
	subBits     = 2
	histBuckets = 100
)

func bucketOf(d time.Duration) int {
	v := uint64(max(d.Microseconds(), 0))
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - 1
	i := (e-subBits+1)<<subBits | int(v>>(e-subBits))&(1<<subBits-1)
	return min(i, histBuckets-1)
}

// upperBound is the smallest latency above every value of bucket i.
func upperBound(i int) time.Duration {
	if i < 1<<subBits {
		return time.Duration(i+1) * time.Microsecond
	}
	e := i>>subBits + subBits - 1
	m := i & (1<<subBits - 1)
	return time.Duration((1<<subBits+m+1)<<(e-subBits)) * time.Microsecond
}

func (h *histogram) add(d time.Duration) { h[bucketOf(d)]++ }

func (h *histogram) merge(o *histogram) {
	for i, c := range o {
		h[i] += c
	}
}

func (h *histogram) quantile(q float64) time.Duration {
	var n uint64
	for _, c := range h {
		n += uint64(c)
	}
	if n == 0 {
		return 0
	}
	// The rank of the q-quantile, 1-based: the smallest value with at
	// least q of the answers at or below it.
	rank := uint64(math.Ceil(q*float64(n) - 1e-9))
	var seen uint64
	for i, c := range h {
		seen += uint64(c)
		if seen >= rank {
			return upperBound(i)
		}
	}
	return upperBound(histBuckets - 1)
}

// CallbackOf fills what a [Callback] takes from a decoded event: arrival
// time, method, event name, account and event_id. The wiring adds the
// answer (Status, Outcome, Latency) and where Kafka put it. Nothing of the
// payload is taken.
func CallbackOf(ev *events.Event) Callback {
	return Callback{
		Time:      ev.ReceivedAt,
		Method:    string(ev.Delivery),
		Event:     ev.Name,
		Account:   int64(ev.AccountID()),
		EventID:   ev.ID,
		Partition: -1,
	}
}
