package sinks

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// coalescer is a group commit in front of kafka-go's Writer, in the manner
// of Nagle's algorithm: a publish that finds no write in flight is written
// at once, alone; publishes that arrive while one is in flight queue, and
// the next write takes all of them in one WriteMessages call.
//
// Why: kafka-go's Writer batches per partition only what arrives within
// BatchTimeout of a batch's first message, so a lone message always waits
// for the timer, and under load a short timer yields batches of one or two
// messages, each its own produce request (measured with emma-gateway bench:
// 1.5 messages a request at 64 concurrent callbacks with a 1 ms timer).
// Handing the Writer everything that queued in one call puts each
// partition's share in one batch, so the produce requests, which are what
// a broker and the gateway's syscalls pay for, grow with the load instead
// of multiplying with it, and with a near-zero BatchTimeout a lone message
// never waits for a timer. Partitioning, acks, retries, leader changes and
// the Completion callback stay the Writer's.
//
// There is one write in flight at a time. Its goroutine lives for a busy
// period: it writes what is queued until nothing is, then ends; the
// WaitGroup lets Close wait for it.
type coalescer struct {
	write func(ctx context.Context, msgs []kafka.Message) error
	// timeout bounds one shared write; callers give up sooner on their own
	// contexts.
	timeout time.Duration

	wg    sync.WaitGroup
	mu    sync.Mutex
	queue []*produceCall
	busy  bool // a writer goroutine runs
}

// produceCall is one caller's messages and, once written, their errors.
type produceCall struct {
	msgs []kafka.Message
	errs []error
	done chan struct{} // closed when errs is set
}

// produce writes msgs, coalesced with whatever else is waiting, and returns
// each message's error (nil for those Kafka acknowledged). When ctx ends
// first the messages' errors are ctx's, although a write already sent may
// still land (at-least-once, as with the Writer alone).
func (c *coalescer) produce(ctx context.Context, msgs []kafka.Message) []error {
	call := &produceCall{msgs: msgs, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, call)
	if !c.busy {
		c.busy = true
		c.wg.Add(1)
		go c.run()
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.errs
	case <-ctx.Done():
	}
	c.mu.Lock()
	// Not yet taken by a write: withdraw, so that nothing is sent for a
	// caller that reports the messages failed.
	if i := slices.Index(c.queue, call); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
	}
	c.mu.Unlock()
	errs := make([]error, len(msgs))
	for i := range errs {
		errs[i] = ctx.Err()
	}
	return errs
}

// run writes what is queued, in one WriteMessages a round, until nothing
// is.
func (c *coalescer) run() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		calls := c.queue
		c.queue = nil
		if len(calls) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.flush(calls)
	}
}

// flush writes calls' messages in one WriteMessages and gives each call its
// messages' errors.
func (c *coalescer) flush(calls []*produceCall) {
	n := 0
	for _, call := range calls {
		n += len(call.msgs)
	}
	all := make([]kafka.Message, 0, n)
	for _, call := range calls {
		all = append(all, call.msgs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	err := c.write(ctx, all)
	cancel()
	var werrs kafka.WriteErrors
	perMessage := errors.As(err, &werrs) && len(werrs) == len(all)
	i := 0
	for _, call := range calls {
		call.errs = make([]error, len(call.msgs))
		for j := range call.msgs {
			switch {
			case perMessage:
				call.errs[j] = werrs[i]
			case err != nil:
				call.errs[j] = err
			}
			i++
		}
		close(call.done)
	}
}
