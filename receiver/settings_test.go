package receiver

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testSettings logs to the test's output on failure only... and, through
// logs, to a buffer the test may inspect.
func testSettings(t *testing.T) telemetry.Settings {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("server log:\n" + buf.String())
		}
	})
	return telemetry.Settings{
		Logger:     slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: prometheus.NewRegistry(),
	}
}

// metricsMount serves set's registry on /metrics, as the wiring does.
func metricsMount(set telemetry.Settings) []Mount {
	return []Mount{{Path: "/metrics", Handler: promhttp.HandlerFor(set.Registerer.(*prometheus.Registry), promhttp.HandlerOpts{})}}
}
