package sinks

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"
)

// gatedWriter is a write func whose calls block until released, recording
// each call's messages.
type gatedWriter struct {
	mu      sync.Mutex
	calls   [][]kafka.Message
	entered chan struct{}
	release chan error
}

func newGatedWriter() *gatedWriter {
	return &gatedWriter{entered: make(chan struct{}, 100), release: make(chan error, 100)}
}

func (g *gatedWriter) write(ctx context.Context, msgs []kafka.Message) error {
	g.mu.Lock()
	g.calls = append(g.calls, msgs)
	g.mu.Unlock()
	g.entered <- struct{}{}
	return <-g.release
}

func msgs(topics ...string) []kafka.Message {
	var out []kafka.Message
	for _, t := range topics {
		out = append(out, kafka.Message{Topic: t})
	}
	return out
}

// TestCoalescerWritesALoneCallAtOnceAndBatchesWhatQueues: the first publish
// is written alone without waiting; the publishes that arrive while it is
// in flight go out together in the next write, each getting its own
// messages' errors back.
func TestCoalescerWritesALoneCallAtOnceAndBatchesWhatQueues(t *testing.T) {
	synctest.Test(t, testCoalescerWritesALoneCallAtOnceAndBatchesWhatQueues)
}

func testCoalescerWritesALoneCallAtOnceAndBatchesWhatQueues(t *testing.T) {
	g := newGatedWriter()
	c := &coalescer{write: g.write, timeout: time.Minute}
	ctx := context.Background()

	first := make(chan []result)
	go func() { first <- c.produce(ctx, msgs("a")) }()
	<-g.entered // written at once, alone

	var wg sync.WaitGroup
	results := make([][]result, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.produce(ctx, msgs("b", "c"))
		}()
	}
	synctest.Wait() // the three queue behind the write in flight
	if len(c.queue) != 3 {
		t.Fatalf("%d calls queued, want 3", len(c.queue))
	}
	g.release <- nil
	if res := <-first; res[0].err != nil {
		t.Fatalf("first: %v", res)
	}
	<-g.entered
	// The second write fails one message of six: only its caller sees it.
	werrs := make(kafka.WriteErrors, 6)
	werrs[3] = kafka.NotLeaderForPartition
	g.release <- werrs
	wg.Wait()
	if len(g.calls) != 2 || len(g.calls[0]) != 1 || len(g.calls[1]) != 6 {
		t.Fatalf("writes %d, sizes %v", len(g.calls), g.calls)
	}
	failed := 0
	for _, res := range results {
		for _, r := range res {
			if r.err != nil {
				failed++
				if !errors.Is(r.err, kafka.NotLeaderForPartition) {
					t.Errorf("error %v", r.err)
				}
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d messages failed, want 1: %v", failed, results)
	}
	c.wg.Wait() // the writer goroutine ends once nothing is queued
	if c.busy {
		t.Fatal("still busy with nothing queued")
	}
}

// TestCoalescerCallerGivesUpAndWithdraws: a caller whose context ends while
// queued returns its context's error and its messages are never written;
// a whole-write error reaches every caller of that write.
func TestCoalescerCallerGivesUpAndWithdraws(t *testing.T) {
	synctest.Test(t, testCoalescerCallerGivesUpAndWithdraws)
}

func testCoalescerCallerGivesUpAndWithdraws(t *testing.T) {
	g := newGatedWriter()
	c := &coalescer{write: g.write, timeout: time.Minute}
	first := make(chan []result)
	go func() { first <- c.produce(context.Background(), msgs("a")) }()
	<-g.entered

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	res := c.produce(ctx, msgs("late"))
	if !errors.Is(res[0].err, context.DeadlineExceeded) {
		t.Fatalf("gave up with %v", res)
	}
	boom := errors.New("broker gone")
	g.release <- boom
	if res := <-first; !errors.Is(res[0].err, boom) {
		t.Fatalf("first: %v", res)
	}
	c.wg.Wait()
	if len(g.calls) != 1 {
		t.Fatalf("the withdrawn call was written: %v", g.calls)
	}
}

// memSpool is a spooler in memory.
type memSpool struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (s *memSpool) Append(_ context.Context, msgs ...kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msgs...)
	return nil
}

func (s *memSpool) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs) > 0
}

// TestCoalescerSpoolsAHungRoundAndWhatQueuedBehindIt: a round Kafka does
// not acknowledge within the spool deadline is spooled when it passes, and
// a call that queued behind it follows it into the spool, in order, without
// being written: nothing of it can reach Kafka ahead of the spooled round.
func TestCoalescerSpoolsAHungRoundAndWhatQueuedBehindIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var writes [][]kafka.Message
		hung := func(ctx context.Context, msgs []kafka.Message) error {
			writes = append(writes, msgs)
			<-ctx.Done() // a broker that never answers
			return ctx.Err()
		}
		sp := &memSpool{}
		c := &coalescer{write: hung, timeout: time.Minute, spool: sp, spoolAfter: 2 * time.Second}
		start := time.Now()
		type done struct {
			res []result
			at  time.Duration
		}
		a, b := make(chan done, 1), make(chan done, 1)
		go func() { r := c.produce(context.Background(), msgs("a")); a <- done{r, time.Since(start)} }()
		time.Sleep(time.Second)
		go func() { r := c.produce(context.Background(), msgs("b")); b <- done{r, time.Since(start)} }()
		ra, rb := <-a, <-b
		c.wg.Wait()

		want := []done{{[]result{{spooled: "timeout"}}, 2 * time.Second}, {[]result{{spooled: "spool pending"}}, 2 * time.Second}}
		if diff := cmp.Diff(want, []done{ra, rb}, cmp.AllowUnexported(done{}, result{})); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"a", "b"}, topics(sp.msgs)); diff != "" {
			t.Errorf("spool order (-want +got):\n%s", diff)
		}
		if len(writes) != 1 {
			t.Errorf("%d writes, want only the hung one: %v", len(writes), writes)
		}
	})
}

// TestCoalescerRoundsStayWithinABatch: what queues behind a write goes out
// in rounds of at most maxMessages, so that a partition's share is one
// produce batch that Kafka takes or refuses whole.
func TestCoalescerRoundsStayWithinABatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGatedWriter()
		c := &coalescer{write: g.write, timeout: time.Minute, maxMessages: 2}
		var wg sync.WaitGroup
		produce := func(topic string) {
			wg.Go(func() { c.produce(context.Background(), msgs(topic)) })
			synctest.Wait()
		}
		produce("a") // in flight
		<-g.entered
		for _, topic := range []string{"b", "c", "d"} {
			produce(topic)
		}
		for range 3 {
			g.release <- nil
			synctest.Wait()
		}
		wg.Wait()
		var got [][]string
		for _, call := range g.calls {
			got = append(got, topics(call))
		}
		if diff := cmp.Diff([][]string{{"a"}, {"b", "c"}, {"d"}}, got); diff != "" {
			t.Errorf("rounds (-want +got):\n%s", diff)
		}
	})
}

func topics(ms []kafka.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Topic)
	}
	return out
}

// TestCoalescerRefusesCallsAfterClose: a publish that arrives once Shutdown
// has begun (a request still in flight past the server's own deadline) is
// refused instead of starting a writer that Shutdown's wait would race.
func TestCoalescerRefusesCallsAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGatedWriter()
		c := &coalescer{write: g.write, timeout: time.Minute}
		first := make(chan []result)
		go func() { first <- c.produce(context.Background(), msgs("a")) }()
		<-g.entered
		c.close()
		if res := c.produce(context.Background(), msgs("late")); !errors.Is(res[0].err, errCoalescerClosed) {
			t.Fatalf("after close: %v", res)
		}
		g.release <- nil
		if res := <-first; res[0].err != nil {
			t.Fatalf("the write in flight at close: %v", res)
		}
		c.wg.Wait()
		if len(g.calls) != 1 {
			t.Fatalf("written after close: %v", g.calls)
		}
	})
}
