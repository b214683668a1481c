package sinks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

func startEmbedded(t *testing.T) *devkafka.Broker {
	t.Helper()
	e, err := devkafka.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

func newSink(t *testing.T, brokers []string, mutate func(*Config)) *Kafka {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers = brokers
	cfg.ReplicationFactor = 1
	cfg.Partitions = 1
	if mutate != nil {
		mutate(&cfg)
	}
	tp := sdktrace.NewTracerProvider()
	k, err := NewKafka(cfg, telemetry.Settings{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer tp.Shutdown(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = k.Shutdown(ctx)
	})
	return k
}

func testEvent(t *testing.T) *events.Event {
	t.Helper()
	ev, err := events.NewDecoder(events.DecoderConfig{}).Decode([]byte(`{"event_name":"message_open","data":{"account_id":1,"member_id":6160010079,"mailing_id":3,"timestamp":"@D:2026-01-01T00:00:00"}}`), events.DeliveryPOST, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestPublishWaitsForAcksAndSetsKey(t *testing.T) {
	t.Parallel() // its own broker on a free port
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), nil)
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Every produce request must ask for acks from all in-sync replicas.
	acks := make(chan int16, 10)
	e.Cluster().ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		acks <- req.(*kmsg.ProduceRequest).Acks
		return nil, nil, false
	})
	if err := k.Publish(context.Background(), testEvent(t)); err != nil {
		t.Fatal(err)
	}
	if a := <-acks; a != -1 {
		t.Fatalf("produce asked for acks=%d, want -1 (all in-sync replicas)", a)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.Addrs(), Topic: "emma.message_open", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Key) != "6160010079" || !strings.Contains(string(m.Value), `"member_id":6160010079`) {
		t.Fatalf("message %s %s", m.Key, m.Value)
	}
}

func TestPublishFailureIsUnavailable(t *testing.T) {
	t.Parallel() // its own broker on a free port
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), func(c *Config) { c.MaxAttempts = 2 })
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	failing := &atomic.Bool{}
	failing.Store(true)
	devkafka.FailProduce(e.Cluster(), failing, "")
	err := k.Publish(context.Background(), testEvent(t))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish error = %v, want ErrUnavailable", err)
	}
	err = k.DeadLetter(context.Background(), &events.Rejection{ID: "x", Payload: []byte("raw"), Reason: events.ReasonMalformed})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("DeadLetter error = %v, want ErrUnavailable", err)
	}
}

func TestStartWithoutBrokerRetriesInBackground(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	k := newSink(t, []string{addr}, func(c *Config) { c.DialTimeout = 200 * time.Millisecond })
	start := time.Now()
	if err := k.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if d := time.Since(start); d > 7*time.Second {
		t.Fatalf("Start took %s", d)
	}
	if err := k.Ready(context.Background()); err == nil {
		t.Fatal("ready without a broker")
	}
	if err := k.Publish(context.Background(), testEvent(t)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish without a broker: %v", err)
	}
	// The broker comes up where the gateway expects it: topics get created.
	e, err := devkafka.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	mustPoll(t, "ready after the broker came up", func() bool { return k.Ready(context.Background()) == nil })
	if err := k.Publish(context.Background(), testEvent(t)); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownIsSafeWithoutStartAndTwice(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	k, err := NewKafka(cfg, telemetry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Start(ctx); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}

func TestStartTwiceIsRefused(t *testing.T) {
	t.Parallel() // its own broker on a free port
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), func(c *Config) { c.Spool.Dir = t.TempDir() })
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := k.Start(context.Background()); err == nil {
		t.Fatal("a second Start succeeded")
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"nohost"}
	cfg.TopicTemplate = "emma/{event}"
	cfg.DeadLetterTopic = ""
	cfg.Partitions = 0
	cfg.ReplicationFactor = 0
	cfg.MaxRequestBytes = 0
	cfg.SASL = SASLConfig{Mechanism: "GSSAPI", Password: "hunter2-secret"}
	cfg.TLS.CertFile = "cert.pem"
	cfg.StartTimeout, cfg.HealthTimeout = 0, -time.Second
	cfg.CreateTopicsBackoff = Backoff{Min: time.Minute, Max: time.Second}
	cfg.Spool.Dir, cfg.Spool.ReplayPoll = "/spool", 0
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"nohost"`, "topic template", "dead-letter topic", "partitions", "replication factor", "max request bytes", "GSSAPI", "cert file and key file",
		"start timeout", "health timeout", "create-topics backoff", "replay poll"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error quotes the SASL password")
	}
	cfg = DefaultConfig()
	cfg.Brokers = []string{"kafka-0.kafka:9092", "[::1]:9092"}
	for _, m := range []string{"", "plain", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		cfg.SASL = SASLConfig{Mechanism: m, Username: "u", Password: "p"}
		if err := cfg.Validate(); err != nil {
			t.Errorf("mechanism %q: %v", m, err)
		}
	}
}

func TestTopicsFollowTemplate(t *testing.T) {
	cfg := DefaultConfig()
	ts := cfg.Topics()
	if len(ts) != 21 || !contains(ts, "emma.message_open") || !contains(ts, "emma.member_add") || !contains(ts, "emma.unrecognized") || !contains(ts, "emma.deadletter") {
		t.Fatalf("topics %v", ts)
	}
	cfg.TopicTemplate = "emma.events"
	if ts := cfg.Topics(); len(ts) != 3 {
		t.Fatalf("a template without {event} is one topic (+2): %v", ts)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestFailedPublishIsSpooledAndReplayedInOrder(t *testing.T) {
	t.Parallel() // its own broker on a free port
	e := startEmbedded(t)
	dir := t.TempDir()
	k := newSink(t, e.Addrs(), func(c *Config) {
		c.Spool.Dir = dir
		c.Spool.After = 300 * time.Millisecond
		c.MaxAttempts = 1
	})
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	failing := &atomic.Bool{}
	failing.Store(true)
	devkafka.FailProduce(e.Cluster(), failing, "")
	dec := events.NewDecoder(events.DecoderConfig{})
	const n = 50
	var ids []string
	for i := range n {
		ev, err := dec.Decode([]byte(fmt.Sprintf(`{"event_name":"message_open","data":{"account_id":1,"member_id":42,"mailing_id":%d,"timestamp":"@D:2026-01-01T00:00:00"}}`, i+1)), events.DeliveryPOST, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Publish(context.Background(), ev); err != nil {
			t.Fatalf("publish %d with Kafka failing and a spool: %v", i, err)
		}
		ids = append(ids, ev.ID)
	}
	if st := k.Spool().Stats(); st.Records != n {
		t.Fatalf("spool holds %d records, want %d", st.Records, n)
	}
	failing.Store(false)
	mustPoll(t, "the spool to drain", func() bool { return !k.Spool().Pending() })
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.Addrs(), Topic: "emma.message_open", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One member: one partition, and replay keeps the order of the calls.
	for i := range n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		var ceID, tp string
		for _, h := range m.Headers {
			switch h.Key {
			case "ce_id":
				ceID = string(h.Value)
			case "traceparent":
				tp = string(h.Value)
			}
		}
		if ceID != ids[i] {
			t.Fatalf("message %d is %s, want %s (order lost)", i, ceID, ids[i])
		}
		if tp == "" {
			t.Fatal("the replayed message lost its traceparent")
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, p := range segs {
		if info, _ := os.Stat(p); info.Size() > 0 {
			t.Fatalf("replayed segment %s was not deleted", p)
		}
	}
	st := k.Spool().Stats()
	want := SpoolStats{Appended: n, Replayed: n, Fsyncs: st.Fsyncs}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Fatalf("stats after replay (-want +got):\n%s", diff)
	}
}

func TestSpoolFullMeansUnavailable(t *testing.T) {
	t.Parallel() // its own broker on a free port
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), func(c *Config) {
		c.Spool.Dir = t.TempDir()
		c.Spool.After = 100 * time.Millisecond
		c.Spool.MaxBytes, c.Spool.SegmentBytes = 1<<20, 64<<10
		c.MaxAttempts = 1
	})
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	failing := &atomic.Bool{}
	failing.Store(true)
	devkafka.FailProduce(e.Cluster(), failing, "")
	big := &events.Rejection{ID: "x", Payload: make([]byte, 300<<10), Reason: events.ReasonMalformed}
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = k.DeadLetter(context.Background(), big)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("publishing into a full spool: %v", err)
	}
}

// TestPublishBehindASpooledOneIsNotWrittenBeforeIt: at the onset of an
// outage, a publish queued behind one whose write failed must not reach
// Kafka ahead of it. Before the fix, the failed event's caller spooled it
// while the coalescer already sent the next write, so the later event of
// the same member landed first and the spooled one after it on replay.
func TestPublishBehindASpooledOneIsNotWrittenBeforeIt(t *testing.T) {
	t.Parallel() // its own broker on a free port
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), func(c *Config) {
		c.Spool.Dir = t.TempDir()
		c.Spool.After = 10 * time.Second // no deadline involved: the first write fails
		c.MaxAttempts = 1
	})
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	queued := func() bool {
		k.co.mu.Lock()
		defer k.co.mu.Unlock()
		return len(k.co.queue) > 0
	}
	var n atomic.Int32
	e.Cluster().ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		switch n.Add(1) {
		case 1: // A's write: fails once B waits behind it.
			e.Cluster().SleepControl(func() { pollUntil(t, "B to queue behind A's write", queued) })
			return notEnoughReplicas(req.(*kmsg.ProduceRequest)), nil, true
		case 2: // the next write waits until A is in the spool
			e.Cluster().SleepControl(func() {
				pollUntil(t, "A to be spooled", func() bool { return k.Spool().Stats().Appended >= 1 })
			})
		}
		return nil, nil, false
	})
	dec := events.NewDecoder(events.DecoderConfig{})
	event := func(mailing int) *events.Event {
		ev, err := dec.Decode(fmt.Appendf(nil, `{"event_name":"message_open","data":{"account_id":1,"member_id":42,"mailing_id":%d,"timestamp":"@D:2026-01-01T00:00:00"}}`, mailing), events.DeliveryPOST, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	a, b := event(1), event(2)
	errs := make(chan error, 2)
	go func() { errs <- k.Publish(context.Background(), a) }()
	mustPoll(t, "A's write to reach the broker", func() bool { return n.Load() >= 1 })
	go func() { errs <- k.Publish(context.Background(), b) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("publish with a spool: %v", err)
		}
	}
	mustPoll(t, "the spool to drain", func() bool { return !k.Spool().Pending() })

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.Addrs(), Topic: "emma.message_open", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var order []string // first occurrences: a write that failed may still land twice
	for len(order) < 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading back %v: %v", order, err)
		}
		name := map[string]string{a.ID: "A", b.ID: "B"}[(kafkaevents.Headers{H: &m.Headers}).Get("ce_id")]
		if !slices.Contains(order, name) {
			order = append(order, name)
		}
	}
	if diff := cmp.Diff([]string{"A", "B"}, order); diff != "" {
		t.Fatalf("one member's events out of order in Kafka (-want +got):\n%s", diff)
	}
}

// notEnoughReplicas answers every partition of req with NOT_ENOUGH_REPLICAS.
func notEnoughReplicas(req *kmsg.ProduceRequest) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.NotEnoughReplicas.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// pollUntil waits, at most 15 s, for cond, and reports whether it came. A
// timeout is an error of t; pollUntil may run outside the test goroutine.
func pollUntil(t *testing.T, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// mustPoll is pollUntil that ends the test on a timeout.
func mustPoll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !pollUntil(t, what, cond) {
		t.FailNow()
	}
}

// TestProducerSpanGetsPartitionAndOffset: the producer span, carried by the
// message through the coalescer to the Writer's completion, records where
// Kafka put the message, with and without a spool.
func TestProducerSpanGetsPartitionAndOffset(t *testing.T) {
	for _, spool := range []bool{false, true} {
		t.Run(fmt.Sprintf("spool=%v", spool), func(t *testing.T) {
			e := startEmbedded(t)
			rec := tracetest.NewSpanRecorder()
			cfg := DefaultConfig()
			cfg.Brokers, cfg.ReplicationFactor, cfg.Partitions = e.Addrs(), 1, 1
			if spool {
				cfg.Spool.Dir = t.TempDir()
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			k, err := NewKafka(cfg, telemetry.Settings{TracerProvider: tp})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = k.Shutdown(context.Background()) })
			if err := k.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := k.Publish(context.Background(), testEvent(t)); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, s := range rec.Ended() {
				attrs := map[string]string{}
				for _, a := range s.Attributes() {
					attrs[string(a.Key)] = a.Value.String()
				}
				got = append(got, s.Name()+" "+attrs["messaging.destination.partition.id"]+"@"+attrs["messaging.kafka.offset"])
			}
			if diff := cmp.Diff([]string{"send emma.message_open 0@0", "send emma.message_open 0@1"}, got); diff != "" {
				t.Errorf("producer spans (-want +got):\n%s", diff)
			}
		})
	}
}

// TestShutdownCancelsTheBackgroundTopicCreator: the topic creator retrying
// against a broker that accepts connections and never answers is cancelled
// by Shutdown, which returns within its context rather than after the
// attempt's own timeout.
func TestShutdownCancelsTheBackgroundTopicCreator(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close() // held open, never answered
		}
	}()
	k := newSink(t, []string{ln.Addr().String()}, func(c *Config) {
		c.Spool.Dir = t.TempDir()
		c.StartTimeout = 50 * time.Millisecond
		c.CreateTopicsBackoff = Backoff{Min: time.Millisecond, Max: time.Millisecond}
		c.CreateTopicsTimeout = time.Minute
	})
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Start gave up on its attempt; the background one follows within a
	// millisecond and hangs like it.
	mustPoll(t, "an attempt to connect", func() bool { return accepted.Load() >= 1 })
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := k.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("Shutdown took %s", d)
	}
}

// TestBackoffDoublesToItsCapWithJitter: a retry loop's pause starts at Min,
// doubles to Max, and each wait is spread over [d/2, d], never more.
func TestBackoffDoublesToItsCapWithJitter(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	var got []time.Duration
	for d := b.Min; len(got) < 6; d = b.next(d) {
		got = append(got, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pauses (-want +got):\n%s", diff)
	}
	seen := map[time.Duration]bool{}
	for range 1000 {
		j := jitter(time.Second)
		if j < 500*time.Millisecond || j > time.Second {
			t.Fatalf("jitter(1s) = %s, outside [0.5s, 1s]", j)
		}
		seen[j] = true
	}
	if len(seen) < 100 {
		t.Fatalf("jitter took only %d values in 1000 draws", len(seen))
	}
	if err := (Backoff{Min: time.Second, Max: time.Millisecond}).validate("x"); err == nil {
		t.Fatal("a backoff with max below min passed validation")
	}
}

func TestPublishPlacedSaysWhereKafkaPutTheEvent(t *testing.T) {
	t.Parallel() // its own broker on a free port
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), nil)
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		p, err := k.PublishPlaced(context.Background(), testEvent(t))
		if err != nil {
			t.Fatal(err)
		}
		if want := (Placement{Topic: "emma.message_open", Partition: 0, Offset: int64(i)}); p != want {
			t.Errorf("publish %d: placed %+v, want %+v", i, p, want)
		}
	}
	r := events.NewRejection([]byte("x"), events.DeliveryPOST, "", time.Now(), nil, &events.MalformedError{Reason: "not JSON"})
	p, err := k.DeadLetterPlaced(context.Background(), r)
	if want := (Placement{Topic: "emma.deadletter", Partition: 0, Offset: 0}); err != nil || p != want {
		t.Errorf("dead letter placed %+v, %v; want %+v", p, err, want)
	}
}

func TestPublishPlacedSaysSpooled(t *testing.T) {
	t.Parallel() // its own broker on a free port
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), func(c *Config) {
		c.Spool.Dir = t.TempDir()
		c.Spool.After = 100 * time.Millisecond
		c.MaxAttempts = 1
	})
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	failing := &atomic.Bool{}
	failing.Store(true)
	devkafka.FailProduce(e.Cluster(), failing, "")
	p, err := k.PublishPlaced(context.Background(), testEvent(t))
	if want := (Placement{Topic: "emma.message_open", Partition: -1, Offset: -1, Spooled: true}); err != nil || p != want {
		t.Errorf("placed %+v, %v with Kafka failing and a spool; want %+v", p, err, want)
	}
}
