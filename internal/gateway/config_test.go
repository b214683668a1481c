package gateway

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/Chicago without the system zoneinfo

	"github.com/google/go-cmp/cmp"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadWithoutBrokersIsDevelopmentMode(t *testing.T) {
	t.Parallel()
	cfg, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Embedded || !cfg.Receiver.AllowUnauthenticated || cfg.Kafka.ReplicationFactor != 1 {
		t.Errorf("embedded %v, unauthenticated %v, replication %d", cfg.Embedded, cfg.Receiver.AllowUnauthenticated, cfg.Kafka.ReplicationFactor)
	}
	if diff := cmp.Diff([]string{DefaultEmbeddedKafkaAddr}, cfg.Kafka.Brokers); diff != "" {
		t.Errorf("brokers (-want +got):\n%s", diff)
	}
	if cfg.Location == nil || cfg.Location.String() != DefaultTimezone {
		t.Errorf("location %v, want %s", cfg.Location, DefaultTimezone)
	}
}

func TestLoadWithBrokersNeedsTokens(t *testing.T) {
	t.Parallel()
	cfg, err := Load([]string{"--topic-partitions", "3"}, env(map[string]string{
		"EMMA_GATEWAY_KAFKA_BROKERS": "k1:9092, k2:9092",
		"EMMA_GATEWAY_TOKENS":        "0123456789abcdef0123",
		"EMMA_GATEWAY_TIMEZONE":      "America/Chicago",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Embedded || cfg.Receiver.AllowUnauthenticated || cfg.Kafka.Partitions != 3 || cfg.Location.String() != "America/Chicago" {
		t.Errorf("embedded %v, unauthenticated %v, partitions %d, location %v", cfg.Embedded, cfg.Receiver.AllowUnauthenticated, cfg.Kafka.Partitions, cfg.Location)
	}
	if diff := cmp.Diff([]string{"k1:9092", "k2:9092"}, cfg.Kafka.Brokers); diff != "" {
		t.Errorf("brokers (-want +got):\n%s", diff)
	}
	if _, err := Load([]string{"--kafka-brokers", "k1:9092"}, env(nil)); err == nil {
		t.Error("real brokers and no token: accepted")
	}
}

// TestLoadReportsEveryProblemAtOnce: one run of the binary names all that
// is wrong, each a usage error, and never echoes a secret.
func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	_, err := Load([]string{"--timezone", "Mars/Olympus", "--log-level", "loud", "--spool-dir", t.TempDir(),
		"--spool-after", "10s", "--publish-timeout", "5s", "--routes-file", filepath.Join(t.TempDir(), "missing.yaml")},
		env(map[string]string{"EMMA_GATEWAY_KAFKA_SASL_PASSWORD": "pw-SECRET"}))
	if !errors.Is(err, cli.ErrUsage) {
		t.Fatalf("want a usage error, got %v", err)
	}
	for _, want := range []string{"Mars/Olympus", "loud", "spool deadline", "missing.yaml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error shows a secret: %v", err)
	}
	_, err = Load([]string{"extra"}, env(nil))
	if !errors.Is(err, cli.ErrUsage) {
		t.Errorf("positional argument: %v", err)
	}
}

func TestLoadReadsTheRoutesFile(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(f, []byte("routes:\n  - events: [\"*\"]\n    topics: [emma.events]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(nil, env(map[string]string{"EMMA_GATEWAY_ROUTES_FILE": f}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Routes == nil || !strings.Contains(strings.Join(cfg.Kafka.Topics(), ","), "emma.events") {
		t.Errorf("topics %v: the routes file was not applied", cfg.Kafka.Topics())
	}
}

func TestStartRefusesAnUnresolvedConfig(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig() // no Location: never went through Load
	cfg.ShutdownTimeout = time.Second
	if _, err := Start(context.Background(), cfg, telemetry.Settings{}); err == nil || !strings.Contains(err.Error(), "timezone") {
		t.Errorf("Start: %v", err)
	}
}

func TestTracerProviderConfigErrors(t *testing.T) {
	t.Parallel()
	for _, e := range []map[string]string{
		{"OTEL_TRACES_EXPORTER": "zipkin"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
	} {
		if _, err := TracerProvider(context.Background(), "test", env(e)); err == nil {
			t.Errorf("%v: no error", e)
		}
	}
}

func TestLoadAcceptsAndNamesTheRetiredBatchFlags(t *testing.T) {
	t.Parallel()
	cfg, err := Load([]string{"--kafka-batch-timeout", "1ms"}, env(map[string]string{"EMMA_GATEWAY_KAFKA_BATCH_SIZE": "100"}))
	if err != nil {
		t.Fatalf("a deployment written for the Writer's flags must still start: %v", err)
	}
	if diff := cmp.Diff([]string{"--kafka-batch-timeout", "--kafka-batch-size"}, cfg.Deprecated()); diff != "" {
		t.Errorf("deprecated (-want +got):\n%s", diff)
	}
	if cfg, _ := Load(nil, env(nil)); len(cfg.Deprecated()) != 0 {
		t.Errorf("nothing given, deprecated %v", cfg.Deprecated())
	}
}

// TestLoadReadsEmmasClockDedupAndTopicBound: by default Emma's @D: times
// are read in Central time and the dedup window is on (10 min, 100000
// ids); the window, its bound and the bound on per-account topics come
// from flags or the environment, and a bad value is a usage error.
func TestLoadReadsEmmasClockDedupAndTopicBound(t *testing.T) {
	t.Parallel()
	cfg, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timezone != "America/Chicago" || cfg.Location.String() != "America/Chicago" {
		t.Errorf("timezone %q, location %v; want America/Chicago", cfg.Timezone, cfg.Location)
	}
	if cfg.Dedup.Window != 10*time.Minute || cfg.Dedup.MaxEntries != 100_000 || cfg.Kafka.MaxAccountTopics != 200 {
		t.Errorf("dedup %+v, max account topics %d", cfg.Dedup, cfg.Kafka.MaxAccountTopics)
	}
	cfg, err = Load([]string{"--max-account-topics", "5"}, env(map[string]string{
		"EMMA_GATEWAY_DEDUP_WINDOW":      "0",
		"EMMA_GATEWAY_DEDUP_MAX_ENTRIES": "7",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dedup.Window != 0 || cfg.Dedup.MaxEntries != 7 || cfg.Kafka.MaxAccountTopics != 5 {
		t.Errorf("dedup %+v, max account topics %d", cfg.Dedup, cfg.Kafka.MaxAccountTopics)
	}
	_, err = Load([]string{"--dedup-window", "-1s", "--dedup-max-entries", "0", "--max-account-topics", "-1"}, env(nil))
	if !errors.Is(err, cli.ErrUsage) {
		t.Fatalf("bad values: %v, want a usage error", err)
	}
	for _, want := range []string{"dedup: window must not be negative", "max account topics must not be negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

func TestConsoleIsOpenOnlyInDevelopmentModeWithoutTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		open bool
	}{
		{"embedded broker, no tokens: development mode", nil, true},
		{"embedded broker with webhook tokens", map[string]string{"EMMA_GATEWAY_TOKENS": "tok-0123456789abcdef"}, false},
		{"embedded broker with a tokens file", map[string]string{"EMMA_GATEWAY_TOKENS_FILE": "/nonexistent/tokens"}, false},
		{"real brokers", map[string]string{"EMMA_GATEWAY_KAFKA_BROKERS": "127.0.0.1:1", "EMMA_GATEWAY_TOKENS": "tok-0123456789abcdef"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(nil, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.consoleConfig(nil).DevMode; got != tc.open {
				t.Errorf("console open without the admin token: %v, want %v", got, tc.open)
			}
		})
	}
}

// Without an exporter the spans record nothing but carry ids, and the
// sampled flag follows OTEL_TRACES_SAMPLER; with one the SDK makes them.
func TestTracerProviderWithoutExporter(t *testing.T) {
	t.Parallel()
	for e, sampled := range map[string]bool{"": true, "always_off": false, "parentbased_traceidratio": true, "traceidratio_bad": true} {
		tp, err := TracerProvider(context.Background(), "test", env(map[string]string{"OTEL_TRACES_SAMPLER": e, "OTEL_TRACES_SAMPLER_ARG": "1"}))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tp.(*telemetry.IDTracerProvider); !ok {
			t.Fatalf("%T without an exporter", tp)
		}
		_, s := tp.Tracer("t").Start(context.Background(), "s")
		if !s.SpanContext().IsValid() || s.IsRecording() || s.SpanContext().IsSampled() != sampled {
			t.Errorf("sampler %q: valid %v recording %v sampled %v", e, s.SpanContext().IsValid(), s.IsRecording(), s.SpanContext().IsSampled())
		}
	}
	tp, err := TracerProvider(context.Background(), "test", env(map[string]string{"OTEL_TRACES_EXPORTER": "console"}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(context.Background()) }()
	if _, s := tp.Tracer("t").Start(context.Background(), "s"); !s.IsRecording() {
		t.Error("with an exporter the span does not record")
	}
}
