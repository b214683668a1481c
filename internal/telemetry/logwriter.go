package telemetry

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// LogWriter buffers log lines and writes them out in batches: when the
// buffer fills, every flush interval, on [LogWriter.Flush] and on
// [LogWriter.Shutdown]. An unbuffered stderr costs a write system call per
// line, one per callback for the access log, which under load is a
// measurable share of a callback's CPU. Lines are never dropped or
// sampled: a line waits at most the interval (or, with [FlushingHandler],
// not at all when it is a warning or an error), and what a SIGKILL finds
// in the buffer is lost, which is why errors are flushed at once.
type LogWriter struct {
	every time.Duration

	mu  sync.Mutex
	buf *bufio.Writer

	startOnce, stopOnce sync.Once
	stop                chan struct{}
	wg                  sync.WaitGroup
}

// NewLogWriter returns a LogWriter over w holding up to size bytes and
// flushed every interval once started (size and interval at least 4 KiB
// and 10 ms; smaller values take those).
func NewLogWriter(w io.Writer, size int, every time.Duration) *LogWriter {
	return &LogWriter{every: max(every, 10*time.Millisecond), buf: bufio.NewWriterSize(w, max(size, 4096)), stop: make(chan struct{})}
}

// Write buffers p; it writes out only when the buffer is full.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Flush writes out what is buffered.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Flush()
}

// Start starts the periodic flush. It returns at once; safe twice.
func (l *LogWriter) Start() {
	l.startOnce.Do(func() {
		l.wg.Go(func() {
			t := time.NewTicker(l.every)
			defer t.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-t.C:
					_ = l.Flush()
				}
			}
		})
	})
}

// Shutdown stops the periodic flush and writes out what is buffered. Safe
// without Start and safe twice; later writes are still taken (and written
// out when the buffer fills or on Flush). ctx is not needed (the flush is
// one write) and is there for the lifecycle's signature.
func (l *LogWriter) Shutdown(_ context.Context) error {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.Flush()
}

// FlushingHandler is a slog.Handler that flushes its Flusher after every
// record at Level or above, so that a warning or an error reaches the
// output at once, whatever the buffering of the lines before it.
type FlushingHandler struct {
	slog.Handler
	Flusher interface{ Flush() error }
	Level   slog.Level
}

// Handle passes r on and flushes when r is at Level or above.
func (h FlushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= h.Level {
		if ferr := h.Flusher.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// WithAttrs keeps the flushing.
func (h FlushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return FlushingHandler{Handler: h.Handler.WithAttrs(attrs), Flusher: h.Flusher, Level: h.Level}
}

// WithGroup keeps the flushing.
func (h FlushingHandler) WithGroup(name string) slog.Handler {
	return FlushingHandler{Handler: h.Handler.WithGroup(name), Flusher: h.Flusher, Level: h.Level}
}
