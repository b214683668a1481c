package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// lockedBuffer is what the LogWriter writes to, read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLogWriterFlushesPeriodicallyAndOnShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out lockedBuffer
		lw := NewLogWriter(&out, 64<<10, 200*time.Millisecond)
		lw.Start()
		_, _ = lw.Write([]byte("one\n"))
		if got := out.String(); got != "" {
			t.Fatalf("written before the interval: %q", got)
		}
		time.Sleep(250 * time.Millisecond)
		synctest.Wait()
		if got := out.String(); got != "one\n" {
			t.Fatalf("after the interval: %q, want the line", got)
		}
		_, _ = lw.Write([]byte("two\n"))
		if err := lw.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "one\ntwo\n" {
			t.Fatalf("after Shutdown: %q", got)
		}
		if err := lw.Shutdown(context.Background()); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
	})
}

func TestLogWriterShutdownWithoutStart(t *testing.T) {
	var out lockedBuffer
	lw := NewLogWriter(&out, 0, 0)
	_, _ = lw.Write([]byte("line\n"))
	if err := lw.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.String() != "line\n" {
		t.Fatalf("%q", out.String())
	}
}

func TestFlushingHandlerWritesWarningsAtOnce(t *testing.T) {
	var out lockedBuffer
	lw := NewLogWriter(&out, 64<<10, time.Hour)
	log := slog.New(FlushingHandler{Handler: slog.NewJSONHandler(lw, nil), Flusher: lw, Level: slog.LevelWarn}).With("component", "test")
	log.Info("request")
	if out.String() != "" {
		t.Fatalf("an info line was written at once: %q", out.String())
	}
	log.Error("publish failed")
	got := out.String()
	if !strings.Contains(got, `"msg":"request"`) || !strings.Contains(got, `"msg":"publish failed"`) || !strings.Contains(got, `"component":"test"`) {
		t.Fatalf("after an error, the buffer was not written out in order: %q", got)
	}
}
