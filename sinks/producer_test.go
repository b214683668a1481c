package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// producerCluster starts a kfake cluster of n brokers on loopback with the
// topics seeded (parts partitions each) and a producer on it.
func producerCluster(t testing.TB, brokers, parts int, topics []string, mutate func(*producerConfig)) (*kfake.Cluster, *producer) {
	t.Helper()
	listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.ListenFn(listen), kfake.SeedTopics(int32(parts), topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tr := &kafka.Transport{ClientID: "producer-test"}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := producerConfig{Transport: tr, Addr: kafka.TCP(c.ListenAddrs()...)}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := newProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return c, p
}

func producerTopics(n int) []string {
	ts := make([]string, n)
	for i := range ts {
		ts[i] = fmt.Sprintf("emma.t%02d", i)
	}
	return ts
}

// producerMessages returns n messages spread over topics, each with a distinct
// key, value and header.
func producerMessages(topics []string, n int, tag string) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Topic:   topics[i%len(topics)],
			Key:     fmt.Appendf(nil, "%s-key-%d", tag, i),
			Value:   fmt.Appendf(nil, `{"n":%d,"tag":%q}`, i, tag),
			Headers: []kafka.Header{{Key: "ce_id", Value: fmt.Appendf(nil, "%s-%d", tag, i)}, {Key: "empty", Value: []byte{}}},
		}
	}
	return msgs
}

// murmur2Partition is the partition kafka-go's Writer picks for key.
func murmur2Partition(key []byte, partitions int) int {
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: key}, ps...)
}

// readProduced consumes topics from the start until want records arrived or 10 s
// passed, and returns them by key (a record read twice would be a
// duplicate: every key here is distinct).
func readProduced(t *testing.T, c *kfake.Cluster, topics []string, want int) map[string][]*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string][]*kgo.Record{}
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for n < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)] = append(got[string(r.Key)], r)
			n++
		})
	}
	if n < want {
		t.Fatalf("read %d records back, want %d", n, want)
	}
	return got
}

// checkProduced asserts that every message is in Kafka once, whole, on its
// murmur2 partition at the offset its result gave.
func checkProduced(t *testing.T, got map[string][]*kgo.Record, msgs []kafka.Message, res []produceResult, parts int) {
	t.Helper()
	for i, m := range msgs {
		rs := got[string(m.Key)]
		if len(rs) != 1 {
			t.Errorf("key %s read %d times, want once", m.Key, len(rs))
			continue
		}
		r := rs[0]
		if r.Topic != m.Topic || !bytes.Equal(r.Value, m.Value) {
			t.Errorf("key %s: read %s %q, want %s %q", m.Key, r.Topic, r.Value, m.Topic, m.Value)
		}
		if want := murmur2Partition(m.Key, parts); int(r.Partition) != want {
			t.Errorf("key %s on partition %d, murmur2 says %d", m.Key, r.Partition, want)
		}
		if res != nil && (res[i].Partition != int(r.Partition) || res[i].Offset != r.Offset) {
			t.Errorf("key %s: result %d@%d, Kafka holds it at %d@%d", m.Key, res[i].Partition, res[i].Offset, r.Partition, r.Offset)
		}
		if len(r.Headers) != len(m.Headers) {
			t.Errorf("key %s: %d headers, want %d", m.Key, len(r.Headers), len(m.Headers))
			continue
		}
		for j, h := range m.Headers {
			if r.Headers[j].Key != h.Key || !bytes.Equal(r.Headers[j].Value, h.Value) {
				t.Errorf("key %s header %d: %s=%q, want %s=%q", m.Key, j, r.Headers[j].Key, r.Headers[j].Value, h.Key, h.Value)
			}
		}
	}
}

func mustProduce(t *testing.T, res []produceResult) {
	t.Helper()
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("message %d: %v", i, r.Err)
		}
	}
}

// countProduceRequests records, for every produce request kfake serves, how many
// topics and partitions it carried.
func countProduceRequests(c *kfake.Cluster) func() (requests, maxTopics, maxPartitions int) {
	var mu sync.Mutex
	var reqs, mt, mp int
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		n := 0
		for _, t := range pr.Topics {
			n += len(t.Partitions)
		}
		mu.Lock()
		reqs++
		mt, mp = max(mt, len(pr.Topics)), max(mp, n)
		mu.Unlock()
		return nil, nil, false
	})
	return func() (int, int, int) {
		mu.Lock()
		defer mu.Unlock()
		return reqs, mt, mp
	}
}

func TestProducerSendsEveryTopicAndPartitionInOneRequest(t *testing.T) {
	topics := producerTopics(19)
	c, p := producerCluster(t, 1, 3, topics, nil)
	counts := countProduceRequests(c)
	msgs := producerMessages(topics, 19*20, "one")
	res := p.Produce(context.Background(), msgs)
	mustProduce(t, res)
	reqs, mt, mp := counts()
	if reqs != 1 || mt != 19 || mp != 57 {
		t.Errorf("%d produce requests, the largest with %d topics and %d partitions; want 1 request of 19 topics and 57 partitions", reqs, mt, mp)
	}
	checkProduced(t, readProduced(t, c, topics, len(msgs)), msgs, res, 3)
}

func TestProducerBatchesWhatQueuesWhileARequestIsInFlight(t *testing.T) {
	topics := producerTopics(19)
	c, p := producerCluster(t, 1, 3, topics, nil)
	// Hold the first request so that the others queue behind it.
	var first atomic.Bool
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if first.CompareAndSwap(false, true) {
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	var wg sync.WaitGroup
	all := make([][]kafka.Message, 64)
	results := make([][]produceResult, 64)
	for g := range all {
		all[g] = producerMessages(topics, 3, fmt.Sprint("g", g))
		wg.Go(func() { results[g] = p.Produce(context.Background(), all[g]) })
		if g == 0 {
			// The first call's request is in flight before the others queue.
			deadline := time.Now().Add(5 * time.Second)
			for !first.Load() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.waiting() < 63*3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	var msgs []kafka.Message
	var res []produceResult
	for g := range all {
		mustProduce(t, results[g])
		msgs, res = append(msgs, all[g]...), append(res, results[g]...)
	}
	if st := p.stats(); st.Requests != 2 || st.Records != 64*3 {
		t.Errorf("%d requests carried %d records; want 2 requests (the held one, then everything that queued) and %d records", st.Requests, st.Records, 64*3)
	}
	checkProduced(t, readProduced(t, c, topics, len(msgs)), msgs, res, 3)
}

// waiting counts the records queued behind requests in flight.
func (p *producer) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, q := range p.brokers {
		n += len(q.pending)
	}
	return n
}

func TestProducerPartitionsLikeTheWritersMurmur2Balancer(t *testing.T) {
	topics := []string{"emma.writer", "emma.producer"}
	c, p := producerCluster(t, 1, 7, topics, nil)
	w := &kafka.Writer{
		Addr: kafka.TCP(c.ListenAddrs()...), Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
	}
	defer w.Close()
	const n = 300
	keys := make([][]byte, n)
	var wmsgs, pmsgs []kafka.Message
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "%d", 6160010079+i*7919)
		wmsgs = append(wmsgs, kafka.Message{Topic: "emma.writer", Key: keys[i], Value: []byte("w")})
		pmsgs = append(pmsgs, kafka.Message{Topic: "emma.producer", Key: keys[i], Value: []byte("p")})
	}
	if err := w.WriteMessages(context.Background(), wmsgs...); err != nil {
		t.Fatal(err)
	}
	mustProduce(t, p.Produce(context.Background(), pmsgs))
	got := readProduced(t, c, topics, 2*n)
	used := map[int32]bool{}
	for _, k := range keys {
		rs := got[string(k)]
		if len(rs) != 2 {
			t.Fatalf("key %s read %d times, want twice", k, len(rs))
		}
		if rs[0].Partition != rs[1].Partition {
			t.Errorf("key %s: %s partition %d, %s partition %d", k, rs[0].Topic, rs[0].Partition, rs[1].Topic, rs[1].Partition)
		}
		used[rs[0].Partition] = true
	}
	if len(used) != 7 {
		t.Errorf("%d keys used %d of 7 partitions", n, len(used))
	}
}

func TestProducerFollowsLeadersThatMoveMidRun(t *testing.T) {
	topics := producerTopics(6)
	c, p := producerCluster(t, 3, 3, topics, func(c *producerConfig) {
		c.RefreshInterval = 5 * time.Millisecond
	})
	const callers, calls, per = 8, 100, 4
	// While the callers run, every partition keeps moving to another
	// broker: requests in flight meet NOT_LEADER, and the Transport's
	// cached metadata is wrong again and again.
	stop := make(chan struct{})
	var moves atomic.Int64
	var mover sync.WaitGroup
	mover.Go(func() {
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			topic, part := topics[i%len(topics)], int32(i%3)
			if err := c.MoveTopicPartition(topic, part, (c.LeaderFor(topic, part)+1)%3); err != nil {
				t.Error(err)
				return
			}
			moves.Add(1)
		}
	})
	var wg sync.WaitGroup
	batches := make([][]kafka.Message, callers*calls)
	out := make([][]produceResult, callers*calls)
	for g := range callers {
		wg.Go(func() {
			for j := range calls {
				k := g*calls + j
				batches[k] = producerMessages(topics, per, fmt.Sprintf("g%dc%d", g, j))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out[k] = p.Produce(ctx, batches[k])
				cancel()
			}
		})
	}
	wg.Wait()
	close(stop)
	mover.Wait()
	var msgs []kafka.Message
	var res []produceResult
	for k := range batches {
		mustProduce(t, out[k])
		msgs, res = append(msgs, batches[k]...), append(res, out[k]...)
	}
	if st := p.stats(); st.Refreshes == 0 {
		t.Errorf("leaders moved %d times and the producer never refreshed its metadata", moves.Load())
	}
	t.Logf("%d leader moves, %+v", moves.Load(), p.stats())
	checkProduced(t, readProduced(t, c, topics, len(msgs)), msgs, res, 3)
}

func TestProducerMapsAPartitionErrorToItsCallersOnly(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      *kerr.Error
		want     error
		attempts int
	}{
		{"retriable, until MaxAttempts", kerr.NotEnoughReplicas, kafka.NotEnoughReplicas, 3},
		{"not retriable, at once", kerr.InvalidRecord, kafka.InvalidRecord, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topics := append(producerTopics(4), "emma.bad")
			c, p := producerCluster(t, 1, 3, topics, func(c *producerConfig) {
				c.MaxAttempts, c.BackoffMin, c.BackoffMax = 3, time.Millisecond, 5*time.Millisecond
			})
			// Partition 1 of emma.bad fails; kfake writes everything else of
			// the same request, as a real broker does.
			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "emma.bad", Partitions: []int32{1}, Err: tc.err, Count: -1})
			var bad, good []kafka.Message
			for i := 0; len(bad) < 5; i++ {
				m := kafka.Message{Topic: "emma.bad", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}
				if murmur2Partition(m.Key, 3) == 1 {
					bad = append(bad, m)
				} else {
					good = append(good, m)
				}
			}
			good = append(good, producerMessages(topics[:4], 40, "good")...)
			var wg sync.WaitGroup
			var badRes, goodRes, mixedRes []produceResult
			mixed := []kafka.Message{good[0], bad[0], good[1]}
			wg.Go(func() { badRes = p.Produce(context.Background(), bad[1:]) })
			wg.Go(func() { goodRes = p.Produce(context.Background(), good[2:]) })
			wg.Go(func() { mixedRes = p.Produce(context.Background(), mixed) })
			wg.Wait()
			for i, r := range badRes {
				if !errors.Is(r.Err, tc.want) || retriable(r.Err) != (tc.attempts > 1) {
					t.Errorf("bad message %d: %v, want %v", i, r.Err, tc.want)
				}
			}
			mustProduce(t, goodRes)
			if mixedRes[0].Err != nil || mixedRes[2].Err != nil || !errors.Is(mixedRes[1].Err, tc.want) {
				t.Errorf("mixed call: %v, %v, %v; want nil, %v, nil", mixedRes[0].Err, mixedRes[1].Err, mixedRes[2].Err, tc.want)
			}
			// Each failing attempt of both callers of the bad partition
			// may share a request; at most attempts requests each.
			if hits := h.Hits(); hits < tc.attempts || hits > 2*tc.attempts {
				t.Errorf("the failing partition was tried in %d requests, want %d to %d", hits, tc.attempts, 2*tc.attempts)
			}
			h.Remove()
			checkProduced(t, readProduced(t, c, topics, len(good)), good, nil, 3)
		})
	}
}

func TestProducerCallerDeadlineEndsTheWaitNotTheWrite(t *testing.T) {
	topics := producerTopics(1)
	c, p := producerCluster(t, 1, 3, topics, nil)
	mustProduce(t, p.Produce(context.Background(), producerMessages(topics, 1, "warm"))) // metadata and connections
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	msgs := producerMessages(topics, 3, "late")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := p.Produce(ctx, msgs)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Produce returned %s after its 100ms deadline", took)
	}
	for i, r := range res {
		if !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("message %d: %v, want the deadline", i, r.Err)
		}
	}
	// The request was sent: once the broker answers, the records are there
	// although their caller was told they failed (at-least-once).
	close(release)
	got := readProduced(t, c, topics, 4)
	for _, m := range msgs {
		if len(got[string(m.Key)]) != 1 {
			t.Errorf("key %s read %d times, want once", m.Key, len(got[string(m.Key)]))
		}
	}
}

func TestProducerSplitsABacklogAtMaxRequestBytes(t *testing.T) {
	topics := producerTopics(3)
	c, p := producerCluster(t, 1, 3, topics, func(c *producerConfig) { c.MaxRequestBytes = 4096 })
	var biggest atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		n := 0
		for _, t := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range t.Partitions {
				n += len(p.Records)
			}
		}
		if int64(n) > biggest.Load() {
			biggest.Store(int64(n))
		}
		return nil, nil, false
	})
	msgs := producerMessages(topics, 200, "big")
	for i := range msgs {
		msgs[i].Value = append(msgs[i].Value, bytes.Repeat([]byte{'x'}, 150)...)
	}
	tooBig := kafka.Message{Topic: topics[0], Key: []byte("huge"), Value: make([]byte, 5000)}
	res := p.Produce(context.Background(), append(msgs, tooBig))
	mustProduce(t, res[:len(msgs)])
	if !errors.Is(res[len(msgs)].Err, kafka.MessageSizeTooLarge) {
		t.Errorf("a 5000-byte record under a 4096-byte limit: %v, want MESSAGE_TOO_LARGE", res[len(msgs)].Err)
	}
	if st := p.stats(); st.Requests < 200*180/4096 {
		t.Errorf("%d requests for about %d bytes under a 4096-byte limit", st.Requests, 200*180)
	}
	if b := biggest.Load(); b > 4096 {
		t.Errorf("a request carried %d bytes of record batches, over the 4096 limit", b)
	}
	checkProduced(t, readProduced(t, c, topics, len(msgs)), msgs, res[:len(msgs)], 3)
}

func TestProducerRejectsABadConfig(t *testing.T) {
	_, err := newProducer(producerConfig{MaxRequestBytes: 10, MaxAttempts: -1, BackoffMin: time.Second, BackoffMax: time.Millisecond})
	if err == nil {
		t.Fatal("a config without transport or address, with a 10-byte limit and -1 attempts, was accepted")
	}
	for _, want := range []string{"Transport", "Addr", "MaxRequestBytes", "MaxAttempts", "backoff"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestProducerKeepsAPartitionsOrderWhenARequestOfASplitBacklogFails(t *testing.T) {
	topics := []string{"emma.ordered"}
	c, p := producerCluster(t, 1, 1, topics, func(c *producerConfig) {
		c.MaxRequestBytes, c.BackoffMin, c.BackoffMax = 4096, time.Millisecond, 5*time.Millisecond
	})
	// The first request fails; the backlog's later requests must not land
	// before its retry.
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "emma.ordered", Err: kerr.NotEnoughReplicas, Count: 1})
	msgs := producerMessages(topics, 60, "ordered")
	for i := range msgs {
		msgs[i].Value = append(msgs[i].Value, bytes.Repeat([]byte{'x'}, 150)...)
	}
	res := p.Produce(context.Background(), msgs)
	mustProduce(t, res)
	if h.Hits() != 1 {
		t.Fatalf("the fault answered %d requests, want 1", h.Hits())
	}
	if st := p.stats(); st.Requests < 4 {
		t.Errorf("%d requests: the backlog was not split", st.Requests)
	}
	for i := 1; i < len(res); i++ {
		if res[i].Offset <= res[i-1].Offset {
			t.Errorf("message %d at offset %d, message %d at %d: out of order", i-1, res[i-1].Offset, i, res[i].Offset)
		}
	}
	checkProduced(t, readProduced(t, c, topics, len(msgs)), msgs, res, 1)
}
