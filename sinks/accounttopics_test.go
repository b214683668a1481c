package sinks

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

func openOf(t *testing.T, account int) *events.Event {
	t.Helper()
	ev, err := events.NewDecoder(events.DecoderConfig{}).Decode([]byte(fmt.Sprintf(
		`{"event_name":"message_open","data":{"account_id":%d,"member_id":6160010079,"mailing_id":3,"timestamp":"@D:2026-01-01T00:00:00"}}`, account)),
		events.DeliveryPOST, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAccountTopicFloodIsBounded: one sender tries 3,000 made-up account
// ids against a route naming a topic per account. The gateway creates
// MaxAccountTopics of them and no more; every event is still in Kafka (on
// the firehose, and on its own topic or, beyond the bound, on the event's
// template topic with a header naming the topic meant); accounts that got
// a topic within the bound keep it; a rule listing its accounts is not
// affected; the refusals are counted and logged a bounded number of times.
func TestAccountTopicFloodIsBounded(t *testing.T) {
	t.Parallel() // its own broker on a free port
	const (
		maxTopics = 50
		legit     = 10
		flood     = 3000
		listed    = 7 // an account a rule lists
	)
	e := startEmbedded(t)
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.ReplicationFactor, cfg.Partitions = e.Addrs(), 1, 1
	cfg.MaxAccountTopics = maxTopics
	cfg.Routes = mustParse(t, `
routes:
  - events: ["*"]
    topics: ["emma.events"]
  - events: ["*"]
    topics: ["acct.{account}"]
  - events: ["*"]
    accounts: [7]
    topics: ["listed.{account}"]
`)
	tp := sdktrace.NewTracerProvider()
	k, err := NewKafka(cfg, telemetry.Settings{TracerProvider: tp, Registerer: reg, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = k.Shutdown(ctx)
		_ = tp.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		next := make(chan int)
		for range 16 {
			wg.Go(func() {
				for a := range next {
					if err := k.Publish(ctx, openOf(t, a)); err != nil {
						t.Errorf("account %d: %v", a, err)
					}
				}
			})
		}
		for a := from; a < to; a++ {
			next <- a
		}
		close(next)
		wg.Wait()
	}
	// The legitimate accounts come first, one of them listed by a rule.
	publish(1, legit+1)
	// Then the flood: made-up ids, far beyond the bound.
	publish(1_000_000, 1_000_000+flood)
	// The legitimate ones again, and the listed one.
	publish(1, legit+1)
	if t.Failed() {
		t.FailNow()
	}

	md, err := k.client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var acct []string
	for _, tp := range md.Topics {
		if strings.HasPrefix(tp.Name, "acct.") {
			acct = append(acct, tp.Name)
		}
	}
	if len(acct) != maxTopics {
		t.Fatalf("%d acct.* topics created, want the bound %d", len(acct), maxTopics)
	}
	count := func(topic string) int64 {
		t.Helper()
		res, err := k.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
		if err != nil {
			t.Fatal(err)
		}
		p := res.Topics[topic]
		if len(p) != 1 || p[0].Error != nil {
			t.Fatalf("offsets of %s: %+v", topic, p)
		}
		return p[0].LastOffset
	}
	total := int64(2*legit + flood)
	if n := count("emma.events"); n != total {
		t.Fatalf("firehose holds %d events, want %d", n, total)
	}
	for a := 1; a <= legit; a++ {
		if n := count(fmt.Sprintf("acct.%d", a)); n != 2 {
			t.Fatalf("acct.%d holds %d events, want both of its own", a, n)
		}
	}
	if n := count("listed.7"); n != 2 {
		t.Fatalf("listed.7 holds %d events, want 2", n)
	}
	// Every copy refused its topic is on the template topic; the accounts
	// admitted have theirs.
	var inOwnTopics int64
	for _, name := range acct {
		inOwnTopics += count(name)
	}
	fallback := count("emma.message_open")
	if inOwnTopics+fallback != total || fallback != flood-(maxTopics-legit) {
		t.Fatalf("%d events in acct.* topics and %d on emma.message_open, want %d in all, %d on the fallback", inOwnTopics, fallback, total, flood-(maxTopics-legit))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gauges := map[string]float64{}
	for _, mf := range mfs {
		if m := mf.GetMetric(); strings.HasPrefix(mf.GetName(), "emma_gateway_account_topics") && len(m) == 1 {
			gauges[mf.GetName()] = m[0].GetCounter().GetValue() + m[0].GetGauge().GetValue()
		}
	}
	if gauges["emma_gateway_account_topics_refused_total"] != float64(fallback) || gauges["emma_gateway_account_topics"] != maxTopics {
		t.Fatalf("metrics %v, want %d refused and %d topics", gauges, fallback, maxTopics)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.Addrs(), Topic: "emma.message_open", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kafkaevents.Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	var intended string
	for _, h := range m.Headers {
		if h.Key == kafkaevents.HeaderIntendedTopic {
			intended = string(h.Value)
		}
	}
	if want := fmt.Sprintf("acct.%d", got.AccountID()); intended != want {
		t.Fatalf("fallback copy of account %d names %q, want %q", got.AccountID(), intended, want)
	}
	if n := strings.Count(logs.String(), "the bound on {account} topics"); n != 1 {
		t.Fatalf("%d warnings for %d refusals within a minute, want 1", n, fallback)
	}
}

// TestMaxAccountTopicsValidates: a negative bound is refused.
func TestMaxAccountTopicsValidates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	if cfg.MaxAccountTopics != 200 {
		t.Fatalf("default %d", cfg.MaxAccountTopics)
	}
	cfg.MaxAccountTopics = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max account topics") {
		t.Fatalf("Validate: %v", err)
	}
}

// TestAccountTopicBoundHoldsAcrossRestarts: a gateway started again on the
// same cluster counts the {account} topics already there, so restarts do
// not create another MaxAccountTopics each; the accounts that have a topic
// keep writing to it.
func TestAccountTopicBoundHoldsAcrossRestarts(t *testing.T) {
	t.Parallel() // its own broker on a free port
	const maxTopics = 5
	e := startEmbedded(t)
	routes := "routes:\n  - events: [\"*\"]\n    topics: [\"acct.{event}.{account}\"]\n  - events: [\"*\"]\n    topics: [\"unrelated.x\"]\n"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(accounts ...int) *Kafka {
		k := newSink(t, e.Addrs(), func(c *Config) { c.MaxAccountTopics, c.Routes = maxTopics, mustParse(t, routes) })
		if err := k.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for _, a := range accounts {
			if err := k.Publish(ctx, openOf(t, a)); err != nil {
				t.Fatal(err)
			}
		}
		return k
	}
	run(1, 2, 3, 4, 5, 6, 7)
	k := run(8, 9, 1)
	md, err := k.client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var acct []string
	for _, tp := range md.Topics {
		if strings.HasPrefix(tp.Name, "acct.") {
			acct = append(acct, tp.Name)
		}
	}
	if len(acct) != maxTopics {
		t.Fatalf("acct topics after a restart: %v, want %d", acct, maxTopics)
	}
	count := func(topic string) int64 {
		t.Helper()
		res, err := k.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
		if err != nil {
			t.Fatal(err)
		}
		p := res.Topics[topic]
		if len(p) != 1 || p[0].Error != nil {
			t.Fatalf("offsets of %s: %+v", topic, p)
		}
		return p[0].LastOffset
	}
	if n := count("acct.message_open.1"); n != 2 {
		t.Fatalf("account 1's topic after the restart holds %d events, want both", n)
	}
	// 6 and 7 beyond the bound in the first run, 8 and 9 in the second.
	if n := count("emma.message_open"); n != 4 {
		t.Fatalf("the fallback holds %d events, want 4", n)
	}
}

// TestAccountTopicBoundHoldsWithoutCreateTopics: with --create-topics=false
// the gateway creates no topic, but a broker with automatic topic creation
// would make one per account id written to: the bound applies all the same.
func TestAccountTopicBoundHoldsWithoutCreateTopics(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers, cfg.CreateTopics, cfg.MaxAccountTopics = []string{"127.0.0.1:1"}, false, 2
	cfg.Routes = mustParse(t, `
routes:
  - events: ["*"]
    topics: ["acct.{account}"]
`)
	k, err := NewKafka(cfg, telemetry.Settings{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if k.acct == nil {
		t.Fatal("no bound on per-account topics without CreateTopics")
	}
	var got []string
	for account := 1; account <= 5; account++ {
		dests, _ := cfg.Routes.Route("message_open", int64(account), "emma.message_open")
		for _, d := range k.acct.bound(dests, "emma.message_open") {
			got = append(got, d.Topic)
		}
	}
	want := []string{"acct.1", "acct.2", "emma.message_open", "emma.message_open", "emma.message_open"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("destinations %v, want %v", got, want)
	}
}
