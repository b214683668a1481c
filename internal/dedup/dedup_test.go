package dedup

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func newWindow(t testing.TB, window time.Duration, max int) *Window {
	t.Helper()
	w, err := New(Config{Window: window, MaxEntries: max})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func begin(t *testing.T, w *Window, id string) Claim {
	t.Helper()
	c, err := w.Begin(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSequentialDuplicates(t *testing.T) {
	w := newWindow(t, time.Minute, 10)
	first := begin(t, w, "a")
	if first.Duplicate() {
		t.Fatal("the first copy is a duplicate")
	}
	first.Done(true)
	for i := range 3 {
		c := begin(t, w, "a")
		if !c.Duplicate() {
			t.Fatalf("copy %d after a durable first is not a duplicate", i+2)
		}
		c.Done(true) // does nothing
	}
	if other := begin(t, w, "b"); other.Duplicate() {
		t.Fatal("another id is a duplicate")
	}
	if s := w.Stats(); s.Duplicates != 3 || s.Remembered != 1 || s.InFlight != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFailedPublishIsNotRemembered(t *testing.T) {
	w := newWindow(t, time.Minute, 10)
	begin(t, w, "a").Done(false)
	c := begin(t, w, "a")
	if c.Duplicate() {
		t.Fatal("a copy after a failed first is a duplicate")
	}
	c.Done(true)
	c.Done(false) // a second Done does not undo the first
	if !begin(t, w, "a").Duplicate() {
		t.Fatal("not remembered once durable")
	}
}

func TestWindowZeroAndNilRememberNothing(t *testing.T) {
	off := newWindow(t, 0, 0)
	var none *Window
	for _, w := range []*Window{off, none} {
		for range 3 {
			c := begin(t, w, "a")
			if c.Duplicate() {
				t.Fatal("a disabled window found a duplicate")
			}
			c.Done(true)
		}
		if s := w.Stats(); s != (Stats{}) {
			t.Fatalf("stats %+v", s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if d := DefaultConfig(); d.Window != 10*time.Minute || d.MaxEntries != 100_000 {
		t.Fatalf("defaults %+v", d)
	}
	err := Config{Window: -time.Second, MaxEntries: 0}.Validate()
	if err == nil || !errorsContain(err, "negative") {
		t.Fatalf("negative window: %v", err)
	}
	if err := (Config{Window: time.Second}).Validate(); err == nil || !errorsContain(err, "max entries") {
		t.Fatalf("no max entries: %v", err)
	}
	if _, err := New(Config{Window: time.Second}); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}

func errorsContain(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

// TestExpiry uses synctest's clock: an id is a duplicate until its window,
// counted from when it became durable, has passed.
func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWindow(t, 10*time.Minute, 10)
		c := begin(t, w, "a")
		time.Sleep(time.Minute) // a slow publish: the window starts when it is durable
		c.Done(true)
		time.Sleep(10*time.Minute - time.Nanosecond)
		if !begin(t, w, "a").Duplicate() {
			t.Fatal("forgotten within the window")
		}
		time.Sleep(time.Nanosecond)
		c = begin(t, w, "a")
		if c.Duplicate() {
			t.Fatal("remembered after the window")
		}
		if s := w.Stats(); s.Expired != 1 || s.Remembered != 0 {
			t.Fatalf("stats %+v", s)
		}
		c.Done(true)
		if !begin(t, w, "a").Duplicate() {
			t.Fatal("the new copy is not remembered")
		}
	})
}

// TestConcurrentCopiesPublishOnce: many copies of one callback at once;
// one publishes, the others wait and are duplicates once it is durable.
func TestConcurrentCopiesPublishOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWindow(t, time.Minute, 10)
		var published, duplicates atomic.Int32
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				c, err := w.Begin(context.Background(), "a")
				if err != nil {
					t.Error(err)
					return
				}
				if c.Duplicate() {
					duplicates.Add(1)
					return
				}
				published.Add(1)
				time.Sleep(time.Second) // the publish
				c.Done(true)
			})
		}
		wg.Wait()
		if published.Load() != 1 || duplicates.Load() != 99 {
			t.Fatalf("%d published, %d duplicates", published.Load(), duplicates.Load())
		}
		if s := w.Stats(); s.Waits != 99 || s.InFlight != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestFailingFirstCopy: copies waiting for a first that fails are never
// duplicates of it; one of them publishes, and the rest wait for that one.
func TestFailingFirstCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWindow(t, time.Minute, 10)
		first := begin(t, w, "a")
		var durableYet atomic.Bool
		var published, duplicates atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				c, err := w.Begin(context.Background(), "a")
				if err != nil {
					t.Error(err)
					return
				}
				if c.Duplicate() {
					if !durableYet.Load() {
						t.Error("answered duplicate before any copy was durable")
					}
					duplicates.Add(1)
					return
				}
				if published.Add(1) == 1 {
					time.Sleep(time.Second)
					durableYet.Store(true)
					c.Done(true)
				} else {
					t.Error("a second copy claimed the id while the first taker was in flight")
					c.Done(false)
				}
			})
		}
		synctest.Wait() // all ten wait for the first
		if s := w.Stats(); s.Waits != 10 {
			t.Fatalf("%d waiting, want 10", s.Waits)
		}
		first.Done(false)
		wg.Wait()
		if published.Load() != 1 || duplicates.Load() != 9 {
			t.Fatalf("%d published after the failure, %d duplicates", published.Load(), duplicates.Load())
		}
	})
}

// TestWaitEndsWithContext: a copy cannot wait longer than its context, and
// then it is neither a duplicate nor a claim.
func TestWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWindow(t, time.Minute, 10)
		first := begin(t, w, "a")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		c, err := w.Begin(ctx, "a")
		if !errors.Is(err, context.DeadlineExceeded) || c.Duplicate() || time.Since(start) != 5*time.Second {
			t.Fatalf("Begin = %v, %v after %s", c, err, time.Since(start))
		}
		c.Done(true) // a zero claim: nothing happens
		first.Done(true)
		if !begin(t, w, "a").Duplicate() {
			t.Fatal("the first copy's success was lost")
		}
	})
}

// TestMemoryIsBounded: many distinct ids keep at most MaxEntries, forget
// the oldest first, and the heap stays flat.
func TestMemoryIsBounded(t *testing.T) {
	const max = 1000
	w := newWindow(t, time.Hour, max)
	add := func(from, to int) {
		for i := from; i < to; i++ {
			c := begin(t, w, "id-"+strconv.Itoa(i))
			if c.Duplicate() {
				t.Fatalf("id %d is a duplicate", i)
			}
			c.Done(true)
		}
	}
	add(0, 10*max)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	add(10*max, 200*max)
	after := heap()
	if s := w.Stats(); s.Remembered != max || s.Evicted != 199*max || len(w.entries) != max {
		t.Fatalf("stats %+v, %d map entries", s, len(w.entries))
	}
	// A window that kept every id would hold 190000 more (~20 MB).
	if after > before+1<<20 {
		t.Fatalf("heap grew from %d to %d bytes", before, after)
	}
	if !begin(t, w, "id-"+strconv.Itoa(200*max-1)).Duplicate() || !begin(t, w, "id-"+strconv.Itoa(199*max)).Duplicate() {
		t.Fatal("the newest ids were forgotten")
	}
	if c := begin(t, w, "id-"+strconv.Itoa(199*max-1)); c.Duplicate() {
		t.Fatal("an evicted id is still remembered")
	}
}

// BenchmarkBeginDone is the path of every new callback: claim, durable.
// With MaxEntries reached, each also evicts the oldest.
func BenchmarkBeginDone(b *testing.B) {
	const max = 100_000
	w := newWindow(b, time.Hour, max)
	ids := make([]string, 4*max)
	for i := range ids {
		ids[i] = strconv.FormatUint(uint64(i)*0x9E3779B97F4A7C15, 16) + "0123456789abcdef"
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c, _ := w.Begin(ctx, ids[i%len(ids)])
		c.Done(true)
	}
}

// BenchmarkBeginDuplicate is the path of a duplicate.
func BenchmarkBeginDuplicate(b *testing.B) {
	w := newWindow(b, time.Hour, 1000)
	ctx := context.Background()
	c, _ := w.Begin(ctx, "0123456789abcdef0123456789abcdef")
	c.Done(true)
	b.ReportAllocs()
	for b.Loop() {
		if c, _ := w.Begin(ctx, "0123456789abcdef0123456789abcdef"); !c.Duplicate() {
			b.Fatal("not a duplicate")
		}
	}
}

// BenchmarkBeginDoneParallel: new callbacks from all cores at once, the
// contention of one mutex.
func BenchmarkBeginDoneParallel(b *testing.B) {
	const max = 100_000
	w := newWindow(b, time.Hour, max)
	ids := make([]string, 4*max)
	for i := range ids {
		ids[i] = strconv.FormatUint(uint64(i)*0x9E3779B97F4A7C15, 16) + "0123456789abcdef"
	}
	var next atomic.Uint64
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, _ := w.Begin(ctx, ids[next.Add(1)%uint64(len(ids))])
			c.Done(true)
		}
	})
}
