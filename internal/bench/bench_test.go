package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
)

func noEnv(string) string { return "" }

// TestMain lets this test binary be the targets bench starts: bench runs
// them from its own executable, which here is the test binary, so the
// two commands it runs ("serve", "bench-target") are dispatched here to
// the same code the emma-gateway binary runs.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "serve" || os.Args[1] == TargetCommand) {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		env := cli.IO{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
		var err error
		if os.Args[1] == "serve" {
			err = gateway.Serve(ctx, os.Args[2:], env, "bench-test")
		} else {
			err = RunTarget(ctx, os.Args[2:], env)
		}
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBenchSmokeLosesNothing runs bench against the full gateway in its
// own process (embedded broker, spool, tokens, tracing), the no-op and the
// hand-written targets in theirs, two rounds each at low concurrency, POST
// and GET mixed and every event type in the mix, and asserts only
// correctness: no transport errors, only 200s, every accepted event on
// Kafka, and a CPU time read from each target's process. Timing is never
// asserted: CI machines vary.
func TestBenchSmokeLosesNothing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts three processes and loads each for two rounds of a second")
	}
	cfg := defaultBenchConfig()
	cfg.connections = 4
	cfg.duration = time.Second
	cfg.warmup = 200 * time.Millisecond
	cfg.getRatio = 0.3
	cfg.targets = []string{"gateway", "handwritten"}
	cfg.baseline = true
	cfg.rounds = 2
	var stderr bytes.Buffer
	rep, err := runBench(context.Background(), cfg, cli.IO{Stderr: &stderr, Getenv: noEnv})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var names []string
	for _, tr := range rep.Targets {
		names = append(names, tr.Target)
		if len(tr.Rounds) != 2 {
			t.Fatalf("%s measured %d rounds, want 2", tr.Target, len(tr.Rounds))
		}
		for _, r := range tr.Rounds {
			if len(r.Errors) > 0 || len(r.Status) != 1 || r.Status["200"] == 0 || r.Accepted != r.Status["200"] {
				t.Fatalf("%s round %d: answers %v, errors %v, accepted %d", tr.Target, r.Round, r.Status, r.Errors, r.Accepted)
			}
			// A process that answered callbacks used CPU; the clock
			// ticks are 10 ms, and a second of load takes many.
			if r.CPUSeconds <= 0 || r.CPUPerAcceptedUS <= 0 {
				t.Errorf("%s round %d: no CPU time read from %s (%s)", tr.Target, r.Round, tr.CPUSource, tr.CPUError)
			}
		}
		if tr.PID == 0 || tr.PID == os.Getpid() || tr.Memory == nil || tr.Memory.RSSBytes <= 0 {
			t.Errorf("%s: pid %d (bench is %d), memory %v: want a process of its own", tr.Target, tr.PID, os.Getpid(), tr.Memory)
		}
		if tr.Target == "noop" {
			if tr.Verification != nil {
				t.Errorf("noop writes nothing, yet was verified: %v", tr.Verification)
			}
			continue
		}
		v := tr.Verification
		if v == nil || v.Accepted == 0 {
			t.Fatalf("%s: nothing verified: %v", tr.Target, v)
		}
		// How long the check waited for the spool to drain is timing: not asserted.
		want := verification{Accepted: v.Accepted, Found: v.Accepted, Topics: v.Topics, SpoolDrainMS: v.SpoolDrainMS}
		if diff := cmp.Diff(want, *v); diff != "" {
			t.Fatalf("%s verification (-want +got):\n%s", tr.Target, diff)
		}
	}
	if diff := cmp.Diff([]string{"gateway", "handwritten", "noop"}, names); diff != "" {
		t.Fatalf("targets (-want +got):\n%s", diff)
	}
	// Both renderings hold the figures.
	var out bytes.Buffer
	rep.print(&out)
	for _, want := range []string{"gateway delivery: ", "0 missing", "CPU µs per accepted", "noop", "handwritten"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil || !bytes.Contains(b, []byte(`"p99.9"`)) || !bytes.Contains(b, []byte(`"cpu_us_per_accepted"`)) {
		t.Errorf("json: %s %v", b, err)
	}
}

// TestBenchFlagsReadTheirOwnEnvironment keeps bench's variables apart from
// serve's, which configure the in-process gateway.
func TestBenchFlagsReadTheirOwnEnvironment(t *testing.T) {
	t.Parallel()
	cfg := defaultBenchConfig()
	fs := benchFlags(&cfg, nil)
	env := map[string]string{"EMMA_GATEWAY_BENCH_CONNECTIONS": "7", "EMMA_GATEWAY_BENCH_RATE": "500", "EMMA_GATEWAY_CONNECTIONS": "99"}
	if err := fs.ParseNoArgs([]string{"--duration", "3s"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	type got struct {
		Connections int
		Rate        float64
		Duration    time.Duration
	}
	if diff := cmp.Diff(got{7, 500, 3 * time.Second}, got{cfg.connections, cfg.rate, cfg.duration}); diff != "" {
		t.Fatalf("flags and environment (-want +got):\n%s", diff)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	cfg.url, cfg.events = "http://127.0.0.1:1", "message_open=1,nope=2"
	err := cfg.validate()
	if err == nil || !strings.Contains(err.Error(), "--brokers") || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("want both problems reported, got %v", err)
	}
}

func TestEventMixDrawsEveryWeightedEvent(t *testing.T) {
	t.Parallel()
	m, err := parseEventMix("message_open=3,member_add=1,group_create=0")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := map[string]int{}
	for range 4000 {
		n[m.pick(r)]++
	}
	if n["group_create"] != 0 || n["message_open"] < 2700 || n["message_open"] > 3300 || n["member_add"] < 700 {
		t.Fatalf("draws %v", n)
	}
	def, err := parseEventMix("")
	if err != nil || len(def.names) != 19 {
		t.Fatalf("the default mix names %d event types (%v), want all 19", len(def.names), err)
	}
}

// TestHistogramQuantilesWithinOneBucket checks the histogram against exact
// quantiles of a spread of latencies from microseconds to seconds.
func TestHistogramQuantilesWithinOneBucket(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	var h histogram
	var vals []time.Duration
	for range 100000 {
		v := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		if r.IntN(100) == 0 {
			v += time.Second
		}
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want := vals[max(int(q*float64(len(vals)))-1, 0)]
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/64+1 {
			t.Errorf("q%v: got %v, want %v (within 1/64 above)", q, got, want)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Count() != uint64(len(vals)) {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	if bucketOf(math.MaxInt64) != histBuckets-1 {
		t.Errorf("the largest duration falls in bucket %d of %d", bucketOf(math.MaxInt64), histBuckets)
	}
	for i := range histBuckets - 1 {
		if bucketOf(upperOf(i)) != i || bucketOf(upperOf(i)+1) != i+1 {
			t.Fatalf("bucket %d: upper %d maps to %d", i, upperOf(i), bucketOf(upperOf(i)))
		}
	}
}

// TestBenchHonoursTheRoutesFile: the gateway bench starts is configured as
// serve is, EMMA_GATEWAY_ROUTES_FILE included (read from bench's getenv and
// handed to the process), so that a routed set-up can
// be measured; every accepted event is then found on the routed topic.
func TestBenchHonoursTheRoutesFile(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a gateway and loads it")
	}
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte("routes:\n  - events: [\"*\"]\n    topics: [bench.firehose]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := defaultBenchConfig()
	cfg.connections, cfg.requests, cfg.duration, cfg.warmup = 2, 50, 0, 0
	env := map[string]string{"EMMA_GATEWAY_ROUTES_FILE": routes}
	var stderr bytes.Buffer
	rep, err := runBench(context.Background(), cfg, cli.IO{Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	v := rep.Targets[0].Verification
	if diff := cmp.Diff([]string{"bench.firehose", "emma.unrecognized"}, v.Topics); diff != "" {
		t.Errorf("topics read (-want +got):\n%s", diff)
	}
	if v.Accepted == 0 || v.Missing != 0 {
		t.Errorf("%d accepted, %d missing from the routed topic", v.Accepted, v.Missing)
	}
}

// TestBenchGeneratesATokenForAGatewayOnItsOwnBroker: with a broker of its
// own the gateway refuses to start without a token, so bench generates
// one before the configuration is resolved and hands it to the process.
func TestBenchGeneratesATokenForAGatewayOnItsOwnBroker(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a gateway and loads it")
	}
	b, err := devkafka.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	cfg := defaultBenchConfig()
	cfg.connections, cfg.requests, cfg.duration, cfg.warmup = 2, 50, 0, 0
	env := map[string]string{"EMMA_GATEWAY_KAFKA_BROKERS": strings.Join(b.Addrs(), ","), "EMMA_GATEWAY_TOPIC_REPLICATION_FACTOR": "1"}
	var stderr bytes.Buffer
	rep, err := runBench(context.Background(), cfg, cli.IO{Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	g := rep.Targets[0]
	if g.Summary.Accepted == 0 || g.Summary.Non2xx != 0 || g.Verification.Missing != 0 || !slices.Equal(g.brokers, b.Addrs()) {
		t.Fatalf("summary %+v, verification %+v, brokers %v (want %v)", g.Summary, g.Verification, g.brokers, b.Addrs())
	}
}

// TestBenchRejectsABadURLUpFront: a URL that does not parse, or has no
// scheme, is one clear usage error before any load is sent (it used to
// panic, or count every request as an "other" error).
func TestBenchRejectsABadURLUpFront(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://[::1", "127.0.0.1:8080", "localhost:8080", "/webhooks/emma", "ftp://127.0.0.1:21"} {
		t.Run(u, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := Run(context.Background(), []string{"--url", u, "--verify=false", "--requests", "5", "--warmup", "0"},
				cli.IO{Stdout: &stdout, Stderr: &stderr, Getenv: noEnv}, "test")
			if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), "--url") {
				t.Fatalf("want a usage error naming --url, got %v", err)
			}
			if stdout.Len() > 0 {
				t.Errorf("a report was printed:\n%s", stdout.String())
			}
		})
	}
}
