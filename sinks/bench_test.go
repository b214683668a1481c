package sinks

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// benchSink starts an embedded broker and a started Kafka sink on it,
// configured by mutate, and returns them with a message_open event.
func benchSink(b *testing.B, mutate func(*Config)) (*devkafka.Broker, *Kafka, *events.Event) {
	b.Helper()
	e, err := devkafka.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	cfg := DefaultConfig()
	cfg.Brokers, cfg.ReplicationFactor = e.Addrs(), 1
	if mutate != nil {
		mutate(&cfg)
	}
	k, err := NewKafka(cfg, telemetry.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = k.Shutdown(context.Background()) })
	if err := k.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	ev, err := events.NewDecoder(events.DecoderConfig{}).Decode([]byte(`{"event_name":"message_open","data":{"account_id":1,"member_id":6160010079,"mailing_id":3,"subject":"November news","timestamp":"@D:2026-01-01T00:00:00"}}`), events.DeliveryPOST, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return e, k, ev
}

// publishParallel publishes ev from 16 goroutines per CPU until b is done.
func publishParallel(b *testing.B, k *Kafka, ev *events.Event) {
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := k.Publish(context.Background(), ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPublishLone publishes one event at a time to the embedded
// broker: its ns/op is the latency a lone callback pays for durability,
// which must not include a batch timer.
func BenchmarkPublishLone(b *testing.B) {
	_, k, ev := benchSink(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Publish(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishDestinations measures the routing overhead: one event to
// one topic, and the same event fanned out to three.
func BenchmarkPublishDestinations(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			y := "routes:\n  - events: [\"*\"]\n    topics: [\"emma.{event}\"]\n"
			if n == 3 {
				y += "  - events: [\"*\"]\n    topics: [emma.events]\n    key: member_id\n  - events: [\"message_*\"]\n    topics: [analytics]\n"
			}
			routes, err := ParseRoutes([]byte(y))
			if err != nil {
				b.Fatal(err)
			}
			_, k, ev := benchSink(b, func(c *Config) { c.Routes = routes })
			publishParallel(b, k, ev)
		})
	}
}

// BenchmarkPublishKafkaFailing measures Publish while every produce fails:
// every event goes to the spool (after the first, which waits Spool.After).
// fsyncs/op shows the spool's group commit.
func BenchmarkPublishKafkaFailing(b *testing.B) {
	e, k, ev := benchSink(b, func(c *Config) {
		c.Partitions, c.MaxAttempts = 3, 1
		c.Spool.Dir = b.TempDir()
		c.Spool.After = 50 * time.Millisecond
	})
	failing := &atomic.Bool{}
	failing.Store(true)
	devkafka.FailProduce(e.Cluster(), failing, "")
	if err := k.Publish(context.Background(), ev); err != nil { // primes the spool
		b.Fatal(err)
	}
	start := k.Spool().Stats()
	publishParallel(b, k, ev)
	b.StopTimer()
	st := k.Spool().Stats()
	b.ReportMetric(float64(st.Fsyncs-start.Fsyncs)/float64(st.Appended-start.Appended), "fsyncs/op")
}
