package sinks

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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
	g := newGatedWriter()
	c := &coalescer{write: g.write, timeout: time.Minute}
	ctx := context.Background()

	first := make(chan []error)
	go func() { first <- c.produce(ctx, msgs("a")) }()
	<-g.entered // written at once, alone

	var wg sync.WaitGroup
	results := make([][]error, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.produce(ctx, msgs("b", "c"))
		}()
	}
	// Let the three queue behind the write in flight.
	for {
		c.mu.Lock()
		n := len(c.queue)
		c.mu.Unlock()
		if n == 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	g.release <- nil
	if errs := <-first; errs[0] != nil {
		t.Fatalf("first: %v", errs)
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
	for _, errs := range results {
		for _, err := range errs {
			if err != nil {
				failed++
				if !errors.Is(err, kafka.NotLeaderForPartition) {
					t.Errorf("error %v", err)
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
	g := newGatedWriter()
	c := &coalescer{write: g.write, timeout: time.Minute}
	first := make(chan []error)
	go func() { first <- c.produce(context.Background(), msgs("a")) }()
	<-g.entered

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	errs := c.produce(ctx, msgs("late"))
	if !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Fatalf("gave up with %v", errs)
	}
	boom := errors.New("broker gone")
	g.release <- boom
	if errs := <-first; !errors.Is(errs[0], boom) {
		t.Fatalf("first: %v", errs)
	}
	c.wg.Wait()
	if len(g.calls) != 1 {
		t.Fatalf("the withdrawn call was written: %v", g.calls)
	}
}
