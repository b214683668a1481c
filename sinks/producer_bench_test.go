package sinks

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// BenchmarkProduce compares the produce paths on an in-process kfake
// broker, one 240-byte message with the gateway's nine headers a publish:
// kafka-go's Writer behind the coalescer (what the sink used before the
// producer, kept for comparison), the producer alone (one request per
// broker for every partition), and the sink as wired (Kafka.write: the
// producer span, the trace header, the coalescer, the producer, the
// publish metrics). Publishers run exactly as many goroutines as named;
// topics have 3 partitions each.
//
// Metrics: msgs/req is what kfake received per produce request; cpu-ns/op
// is the process's user+system CPU (getrusage) per publish, the broker's
// included (it shares the process), which holds on a noisy machine where
// ns/op does not.
func BenchmarkProduce(b *testing.B) {
	for _, path := range []string{"writer", "producer", "sink"} {
		for _, topics := range []int{1, 19} {
			for _, pubs := range []int{1, 16, 64} {
				b.Run(fmt.Sprintf("%s/topics=%d/publishers=%d", path, topics, pubs), func(b *testing.B) {
					benchProduce(b, path, topics, pubs)
				})
			}
		}
	}
}

func benchProduce(b *testing.B, path string, ntopics, pubs int) {
	topics := producerTopics(ntopics)
	c, p := producerCluster(b, 1, 3, topics, nil)
	produce := func(ctx context.Context, msgs []kafka.Message) error {
		for _, r := range p.Produce(ctx, msgs) {
			if r.Err != nil {
				return r.Err
			}
		}
		return nil
	}
	switch path {
	case "sink":
		cfg := DefaultConfig()
		cfg.Brokers, cfg.CreateTopics = c.ListenAddrs(), false
		k, err := NewKafka(cfg, telemetry.Settings{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = k.Shutdown(context.Background()) })
		if err := k.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		produce = func(ctx context.Context, msgs []kafka.Message) error { return k.write(ctx, nil, msgs...) }
	case "writer":
		// As NewKafka configures it.
		w := &kafka.Writer{
			Addr: kafka.TCP(c.ListenAddrs()...), Balancer: &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: time.Microsecond, BatchSize: 100,
			WriteTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, MaxAttempts: 3,
			WriteBackoffMin: 10 * time.Millisecond, WriteBackoffMax: 500 * time.Millisecond,
			Transport: &kafka.Transport{ClientID: "bench"},
		}
		b.Cleanup(func() { _ = w.Close() })
		co := &coalescer{write: func(ctx context.Context, msgs []kafka.Message) error { return w.WriteMessages(ctx, msgs...) }, timeout: 30 * time.Second}
		produce = func(ctx context.Context, msgs []kafka.Message) error {
			for _, r := range co.produce(ctx, msgs) {
				if r.err != nil {
					return r.err
				}
			}
			return nil
		}
	}
	var requests, records atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		requests.Add(1)
		for _, t := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range t.Partitions {
				// A v2 batch's record count is at bytes 57..60.
				if len(p.Records) >= 61 {
					records.Add(int64(uint32(p.Records[57])<<24 | uint32(p.Records[58])<<16 | uint32(p.Records[59])<<8 | uint32(p.Records[60])))
				}
			}
		}
		return nil, nil, false
	})
	value := make([]byte, 240)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	message := func(i int) kafka.Message {
		return kafka.Message{
			Topic: topics[i%len(topics)],
			Key:   strconv.AppendInt(nil, 6160010079+int64(i)*7919, 10),
			Value: value,
			Headers: []kafka.Header{
				{Key: "ce_specversion", Value: []byte("1.0")},
				{Key: "ce_id", Value: []byte("8b3f9d2c4e5a6b7c8d9e0f1a2b3c4d5e")},
				{Key: "ce_source", Value: []byte("emma/accounts/1")},
				{Key: "ce_type", Value: []byte("com.myemma.message_open")},
				{Key: "ce_time", Value: []byte("2026-01-01T06:00:00Z")},
				{Key: "ce_subject", Value: []byte("members/6160010079")},
				{Key: "content-type", Value: []byte("application/json")},
				{Key: "ce_dataschema", Value: []byte("https://example.com/schemas/message_open.json")},
				{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			},
		}
	}
	for i := range 3 * ntopics { // metadata, connections, every partition's first batch
		if err := produce(context.Background(), []kafka.Message{message(i)}); err != nil {
			b.Fatal(err)
		}
	}
	requests.Store(0)
	records.Store(0)
	var next atomic.Int64
	var wg sync.WaitGroup
	var r0, r1 syscall.Rusage
	b.ReportAllocs()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	b.ResetTimer()
	for range pubs {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				if err := produce(context.Background(), []kafka.Message{message(i)}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := time.Duration(r1.Utime.Nano() - r0.Utime.Nano() + r1.Stime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if n := requests.Load(); n > 0 {
		b.ReportMetric(float64(records.Load())/float64(n), "msgs/req")
	}
}
