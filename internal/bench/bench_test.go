package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/emma-gateway/emma-gateway/internal/cli"
)

func noEnv(string) string { return "" }

// TestBenchSmokeLosesNothing runs bench in this process against the full
// gateway (embedded broker, spool, tracing) for a short while at low
// concurrency, POST and GET mixed and every event type in the mix, and
// asserts only correctness: no transport errors, only 200s, and every
// accepted event on Kafka. Timing is never asserted: CI machines vary.
func TestBenchSmokeLosesNothing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a gateway and loads it for two seconds")
	}
	cfg := defaultBenchConfig()
	cfg.connections = 4
	cfg.duration = 2 * time.Second
	cfg.warmup = 200 * time.Millisecond
	cfg.getRatio = 0.3
	cfg.baseline = true
	var stderr bytes.Buffer
	rep, err := runBench(context.Background(), cfg, cli.IO{Stderr: &stderr, Getenv: noEnv})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	g := rep.Gateway
	if len(g.Errors) > 0 || len(g.Status) != 1 || g.Status["200"] == 0 {
		t.Fatalf("answers %v, errors %v", g.Status, g.Errors)
	}
	v := g.Verification
	if v == nil || v.Accepted == 0 {
		t.Fatalf("nothing verified: %v", v)
	}
	want := verification{Accepted: v.Accepted, Found: v.Accepted, Topics: v.Topics}
	if diff := cmp.Diff(want, *v); diff != "" {
		t.Fatalf("verification (-want +got):\n%s", diff)
	}
	if rep.Baseline == nil || rep.Baseline.Requests == 0 || rep.Ratio <= 0 {
		t.Fatalf("no baseline measured (ratio %v)", rep.Ratio)
	}
	// Both renderings hold the figures.
	var out bytes.Buffer
	rep.print(&out)
	if !strings.Contains(out.String(), "0 missing") || !strings.Contains(out.String(), "baseline") {
		t.Errorf("table:\n%s", out.String())
	}
	b, err := json.Marshal(rep)
	if err != nil || !bytes.Contains(b, []byte(`"p99.9"`)) {
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

// TestBenchHonoursTheRoutesFile: the in-process gateway is configured as
// serve is, EMMA_GATEWAY_ROUTES_FILE included, so that a routed set-up can
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
	v := rep.Gateway.Verification
	if diff := cmp.Diff([]string{"bench.firehose", "emma.unrecognized"}, v.Topics); diff != "" {
		t.Errorf("topics read (-want +got):\n%s", diff)
	}
	if v.Accepted == 0 || v.Missing != 0 {
		t.Errorf("%d accepted, %d missing from the routed topic", v.Accepted, v.Missing)
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
