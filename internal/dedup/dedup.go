package dedup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Config configures a [Window]. Start from [DefaultConfig].
type Config struct {
	// Window is how long an id is remembered after its event was made
	// durable. A duplicate within it is answered without a publish; the
	// window counts from the first durable copy, duplicates do not extend
	// it. 0 turns deduplication off. Default 10 minutes.
	Window time.Duration
	// MaxEntries bounds the durable ids remembered. When it is reached, the
	// oldest id is forgotten to make room, even within its window. An id
	// costs about 130 bytes (measured: 99 of bookkeeping and its 32
	// characters), so the default holds ~13 MiB and covers a 10-minute
	// window at a sustained 166 callbacks/s. Default 100000.
	MaxEntries int
}

// DefaultConfig returns the defaults documented on [Config]'s fields.
func DefaultConfig() Config {
	return Config{Window: 10 * time.Minute, MaxEntries: 100_000}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("dedup: window must not be negative, not %s", c.Window))
	}
	if c.Window > 0 && c.MaxEntries < 1 {
		errs = append(errs, fmt.Errorf("dedup: max entries must be at least 1 when the window is on, not %d", c.MaxEntries))
	}
	return errors.Join(errs...)
}

// Window is the set of recently durable event ids. It is safe for
// concurrent use. A nil *Window, like one with Config.Window 0, remembers
// nothing: every [Window.Begin] says publish.
type Window struct {
	window     time.Duration
	maxEntries int

	mu      sync.Mutex
	entries map[string]*entry // durable and in-flight ids
	// oldest and newest are the ends of the list of durable entries, in the
	// order they became durable, which with one window for all is also the
	// order they expire in: expiry and eviction both take from oldest.
	oldest, newest *entry
	durable        int
	stats          Stats
}

type state uint8

const (
	inFlight state = iota
	durable
	failed
)

type entry struct {
	id    string
	state state
	at    time.Time     // when it became durable
	next  *entry        // the next newer durable entry
	wait  chan struct{} // closed when an in-flight entry ends; made by the first waiter
}

// New returns a Window for cfg.
func New(cfg Config) (*Window, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Window{window: cfg.Window, maxEntries: cfg.MaxEntries, entries: map[string]*entry{}}, nil
}

// Claim is what [Window.Begin] answers for one callback.
type Claim struct {
	w   *Window
	e   *entry // nil: nothing to report to Done
	dup bool
}

// Duplicate reports that a callback with this id was made durable within
// the window: answer it as accepted (with the same event_id) and do not
// publish it. Otherwise publish it and report the result to [Claim.Done].
func (c Claim) Duplicate() bool { return c.dup }

// Done reports how the publish of a non-duplicate claim ended: durable
// makes the id remembered for the window; not durable forgets it, and the
// next copy (one waiting now, or a later retry) publishes itself. Every
// claim that is not a duplicate must be ended with Done, or copies waiting
// for it wait until their context ends. Done on a duplicate claim, and a
// second Done, do nothing.
func (c Claim) Done(isDurable bool) {
	e := c.e
	if e == nil {
		return
	}
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.state != inFlight {
		return
	}
	if isDurable {
		e.state, e.at = durable, time.Now()
		if w.newest == nil {
			w.oldest = e
		} else {
			w.newest.next = e
		}
		w.newest = e
		w.durable++
		for w.durable > w.maxEntries {
			w.dropOldest()
			w.stats.Evicted++
		}
	} else {
		e.state = failed
		delete(w.entries, e.id) // an in-flight entry is always the map's
	}
	if e.wait != nil {
		close(e.wait)
	}
}

// Begin tells whether the callback with event id id is a duplicate, or
// claims it for publishing. When a copy of the same callback is being
// published, Begin waits for its outcome: a duplicate if it was made
// durable; otherwise this copy claims the id and publishes. The wait ends
// with ctx: the error is then ctx's, and the caller should answer that it
// cannot accept the callback now (the first copy's outcome is unknown, so
// neither 200 nor a second publish is honest).
func (w *Window) Begin(ctx context.Context, id string) (Claim, error) {
	if w == nil || w.window <= 0 {
		return Claim{}, nil
	}
	w.mu.Lock()
	for {
		w.expire(time.Now())
		e, ok := w.entries[id]
		if !ok {
			e = &entry{id: id}
			w.entries[id] = e
			w.mu.Unlock()
			return Claim{w: w, e: e}, nil
		}
		if e.state == durable {
			w.stats.Duplicates++
			w.mu.Unlock()
			return Claim{dup: true}, nil
		}
		if e.wait == nil {
			e.wait = make(chan struct{})
		}
		ch := e.wait
		w.stats.Waits++
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Claim{}, fmt.Errorf("dedup: waiting for the copy of %s in flight: %w", id, context.Cause(ctx))
		}
		w.mu.Lock()
	}
}

// expire forgets the durable ids whose window has ended. Called with mu
// held; amortized O(1) per Begin.
func (w *Window) expire(now time.Time) {
	for w.oldest != nil && now.Sub(w.oldest.at) >= w.window {
		w.dropOldest()
		w.stats.Expired++
	}
}

func (w *Window) dropOldest() {
	e := w.oldest
	w.oldest = e.next
	if w.oldest == nil {
		w.newest = nil
	}
	e.next = nil
	w.durable--
	if w.entries[e.id] == e {
		delete(w.entries, e.id)
	}
}

// Stats are counters of a [Window], for metrics and the operator console.
type Stats struct {
	// Remembered is the number of durable ids in the window now.
	Remembered int
	// InFlight is the number of claims not yet Done.
	InFlight int
	// Duplicates counts the Begin calls answered Duplicate.
	Duplicates uint64
	// Waits counts the times a Begin waited for a copy in flight.
	Waits uint64
	// Expired counts the ids forgotten at the end of their window.
	Expired uint64
	// Evicted counts the ids forgotten early because MaxEntries was
	// reached: when it grows, the window is shorter than configured.
	Evicted uint64
}

// Stats returns the window's counters. The expiry it reports is as of the
// last Begin.
func (w *Window) Stats() Stats {
	if w == nil {
		return Stats{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.Remembered = w.durable
	s.InFlight = len(w.entries) - w.durable
	return s
}
