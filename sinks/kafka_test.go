package sinks

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

func startEmbedded(t *testing.T) *Embedded {
	t.Helper()
	e, err := StartEmbedded("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
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
	k, err := NewKafka(cfg, telemetry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = k.Close(ctx)
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
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), func(c *Config) { c.MaxAttempts = 2 })
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Cluster().ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
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
		return resp, nil, true
	})
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
	e, err := StartEmbedded(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	deadline := time.Now().Add(15 * time.Second)
	for k.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 15 s after the broker came up: %v", k.Ready(context.Background()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := k.Publish(context.Background(), testEvent(t)); err != nil {
		t.Fatal(err)
	}
}

func TestCloseIsSafeWithoutStartAndTwice(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	k, err := NewKafka(cfg, telemetry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"nohost"}
	cfg.TopicTemplate = "emma/{event}"
	cfg.DeadLetterTopic = ""
	cfg.Partitions = 0
	cfg.ReplicationFactor = 0
	cfg.BatchTimeout = 0
	cfg.SASL = SASLConfig{Mechanism: "GSSAPI", Password: "hunter2-secret"}
	cfg.TLS.CertFile = "cert.pem"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"nohost"`, "topic template", "dead-letter topic", "partitions", "replication factor", "batch timeout", "GSSAPI", "cert file and key file"} {
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
