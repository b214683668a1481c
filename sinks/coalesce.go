package sinks

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// coalescer is the single writer in front of the producer, in the manner of
// Nagle's algorithm: a publish that finds no write in flight is written at
// once, alone; publishes that arrive while one is in flight queue, and the
// next write takes all of them in one producer call, which sends one
// produce request per broker with every partition's share.
//
// Why one writer: with a spool, the coalescer decides what is spooled, in
// the one goroutine that writes, so that the order of the calls survives
// an outage: a round's messages Kafka did not take within the spool
// deadline are appended before the next round starts, and while the spool
// holds records every round goes to the spool behind them. A caller that
// spooled its own messages after the write returned raced the next round,
// which could put a later event of the same member in Kafka ahead of the
// spooled one. Within a round, the producer keeps each partition's records
// in their order, and holds back those behind one that failed.
//
// A round holds at most maxMessages messages (0: unbounded) and about
// maxBytes bytes, the producer's request bound, so that one round is about
// one request per broker.
//
// There is one write in flight at a time. Its goroutine lives for a busy
// period: it writes what is queued until nothing is, then ends; the
// WaitGroup lets Shutdown wait for it.
type coalescer struct {
	write func(ctx context.Context, msgs []kafka.Message) error
	// timeout bounds one shared write without a spool; callers give up
	// sooner on their own contexts.
	timeout time.Duration
	// spool, when set, takes what Kafka does not acknowledge within
	// spoolAfter of the oldest call of a round.
	spool      spooler
	spoolAfter time.Duration
	// maxMessages and maxBytes bound a round (0: unbounded).
	maxMessages, maxBytes int

	wg     sync.WaitGroup
	mu     sync.Mutex
	queue  []*produceCall
	busy   bool // a writer goroutine runs
	closed bool // set by close: no new writer goroutine may start
}

// errCoalescerClosed answers the calls made after Shutdown began, when a
// request still in flight at the server's own shutdown deadline publishes.
var errCoalescerClosed = errors.New("sinks: the Kafka sink is shutting down")

// close refuses the calls that come after it, so that Shutdown's wg.Wait
// never runs concurrently with an Add (a WaitGroup misuse that can panic).
func (c *coalescer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// spooler is the part of [Spool] the coalescer uses.
type spooler interface {
	Append(ctx context.Context, msgs ...kafka.Message) error
	Pending() bool
}

// result is what became of one message.
type result struct {
	// err is nil when the message is durable, in Kafka or in the spool.
	err error
	// spooled says why the message is in the spool; "" when Kafka has it.
	spooled string
}

// produceCall is one caller's messages and, once handled, their results.
type produceCall struct {
	msgs []kafka.Message
	at   time.Time // queued
	res  []result
	done chan struct{} // closed when res is set
}

// produce makes msgs durable, coalesced with whatever else is waiting, and
// returns each message's result. When ctx ends first the messages' errors
// are ctx's, although a write already sent may still land, and messages a
// round took may still be spooled (at-least-once, as with any write
// already sent).
func (c *coalescer) produce(ctx context.Context, msgs []kafka.Message) []result {
	call := &produceCall{msgs: msgs, at: time.Now(), done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		res := make([]result, len(msgs))
		for i := range res {
			res[i].err = errCoalescerClosed
		}
		return res
	}
	c.queue = append(c.queue, call)
	if !c.busy {
		c.busy = true
		c.wg.Add(1)
		go c.run()
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.res
	case <-ctx.Done():
	}
	c.mu.Lock()
	// Not yet taken by a round: withdraw, so that nothing is sent or
	// spooled for a caller that reports the messages failed.
	if i := slices.Index(c.queue, call); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
	}
	c.mu.Unlock()
	res := make([]result, len(msgs))
	for i := range res {
		res[i].err = ctx.Err()
	}
	return res
}

// run handles what is queued, one round at a time, until nothing is.
func (c *coalescer) run() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		calls := c.take()
		if len(calls) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.flush(calls)
	}
}

// take removes the next round's calls from the queue: at least one, then
// as many as fit the round's bounds. c.mu is held.
func (c *coalescer) take() []*produceCall {
	n, size := 0, 0
	i := 0
	for ; i < len(c.queue); i++ {
		cn, csize := len(c.queue[i].msgs), 0
		for _, m := range c.queue[i].msgs {
			csize += messageSize(m)
		}
		if i > 0 && (c.maxMessages > 0 && n+cn > c.maxMessages || c.maxBytes > 0 && size+csize > c.maxBytes) {
			break
		}
		n, size = n+cn, size+csize
	}
	calls := c.queue[:i:i]
	c.queue = slices.Clone(c.queue[i:])
	return calls
}

// messageSize is about what a message takes in a produce batch: its bytes
// and a record's framing.
func messageSize(m kafka.Message) int {
	n := len(m.Key) + len(m.Value) + 64
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// flush handles one round: written in one WriteMessages, or spooled, and
// each call gets its messages' results.
func (c *coalescer) flush(calls []*produceCall) {
	n := 0
	for _, call := range calls {
		n += len(call.msgs)
	}
	all := make([]kafka.Message, 0, n)
	for _, call := range calls {
		all = append(all, call.msgs...)
	}
	res := make([]result, len(all))
	switch {
	case c.spool != nil && c.spool.Pending():
		// Behind what the spool holds, so that the replay keeps the order.
		c.toSpool(all, res, "spool pending", nil)
	case c.spool != nil && !time.Now().Before(calls[0].at.Add(c.spoolAfter)):
		// Waited out its deadline behind a slow round.
		c.toSpool(all, res, "timeout", nil)
	default:
		var ctx context.Context
		var cancel context.CancelFunc
		if c.spool != nil {
			ctx, cancel = context.WithDeadline(context.Background(), calls[0].at.Add(c.spoolAfter))
		} else {
			ctx, cancel = context.WithTimeout(context.Background(), c.timeout)
		}
		err := c.write(ctx, all)
		cancel()
		var werrs kafka.WriteErrors
		perMessage := errors.As(err, &werrs) && len(werrs) == len(all)
		var failed []int
		for i := range all {
			switch {
			case perMessage:
				res[i].err = werrs[i]
			default:
				res[i].err = err
			}
			if res[i].err != nil {
				failed = append(failed, i)
			}
		}
		if c.spool != nil && len(failed) > 0 {
			// A write that timed out may still land, so a spooled copy can
			// duplicate it: at-least-once, deduplicated by event_id.
			spool := make([]kafka.Message, len(failed))
			for j, i := range failed {
				spool[j] = all[i]
			}
			c.toSpool(spool, res, "", failed)
		}
	}
	i := 0
	for _, call := range calls {
		call.res = res[i : i+len(call.msgs) : i+len(call.msgs)]
		i += len(call.msgs)
		close(call.done)
	}
}

// toSpool appends msgs, in order, and records their results: at, when
// given, maps msgs to their index in res (else msgs are res's messages);
// reason, when empty, is each message's own write error.
func (c *coalescer) toSpool(msgs []kafka.Message, res []result, reason string, at []int) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	err := c.spool.Append(ctx, msgs...)
	cancel()
	for j := range msgs {
		i := j
		if at != nil {
			i = at[j]
		}
		if err != nil {
			res[i].err = err
			continue
		}
		why := reason
		if why == "" {
			why = errorType(res[i].err)
		}
		res[i] = result{spooled: why}
	}
}
