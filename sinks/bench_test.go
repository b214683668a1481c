package sinks

import (
	"context"
	"testing"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// BenchmarkPublishLone publishes one event at a time to the embedded
// broker: its ns/op is the latency a lone callback pays for durability,
// which must not include a batch timer.
func BenchmarkPublishLone(b *testing.B) {
	e, err := StartEmbedded("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.ReplicationFactor = e.Addrs(), 1
	k, err := NewKafka(cfg, telemetry.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close(context.Background())
	if err := k.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	ev, err := events.NewDecoder(events.DecoderConfig{}).Decode([]byte(`{"event_name":"message_open","data":{"account_id":1,"member_id":6160010079,"mailing_id":3,"subject":"November news","timestamp":"@D:2026-01-01T00:00:00"}}`), events.DeliveryPOST, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Publish(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
}
