package kafkait

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// hotMember is the member every load callback is about: one key, so one
// partition takes the whole load and its order can be checked.
const hotMember = 7000000001

// loadCallback is a message_open of hotMember whose mailing_id carries seq,
// so that each has its own event_id and the consumer can tell the order.
func loadCallback(seq int) []byte {
	return fmt.Appendf(nil, `{"event_name":"message_open","data":{"account_id":1743199,"member_id":%d,"mailing_id":%d,"subject":"load","timestamp":"@D:2026-11-20T10:01:02"}}`,
		hotMember, 5000000000+seq)
}

// hotPartition is the partition Murmur2 (the gateway's partitioner, and
// Java's and librdkafka's) gives hotMember's key among n.
func hotPartition(n int) int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: fmt.Append(nil, hotMember)}, ids...)
}

// tally counts what the gateway answered a load.
type tally struct {
	mu           sync.Mutex
	sent         int
	ok           map[string]int // event_id answered 200 -> seq
	unavailable  int            // 503
	noRetryAfter int            // 503 without Retry-After
	other        map[string]int // any other answer, or a transport error
	latency      []time.Duration
}

func newTally() *tally { return &tally{ok: map[string]int{}, other: map[string]int{}} }

func (l *tally) record(seq int, a answer, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	switch {
	case a.err != nil:
		l.other[a.err.Error()]++
	case a.status == 200:
		l.ok[a.eventID] = seq
		l.latency = append(l.latency, d)
	case a.status == 503:
		l.unavailable++
		if a.retryAfter == "" {
			l.noRetryAfter++
		}
	default:
		l.other[fmt.Sprint(a.status)]++
	}
}

// percentiles formats p50, p99 and the max of the latencies of 200s.
func (l *tally) percentiles() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.latency) == 0 {
		return "no 200s"
	}
	s := slices.Clone(l.latency)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		return s[min(len(s)-1, int(q*float64(len(s))))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v, p90 %v, p99 %v, max %v", at(0.50), at(0.90), at(0.99), s[len(s)-1].Round(time.Millisecond))
}

// openLoop sends loadCallback(first...) at rate a second until ctx ends or
// n were sent, whatever the answers, and waits for the answers. Latency
// counts from when a callback was due, so a stall shows as the delays it
// causes. At most 1024 are in flight; beyond, the due ones wait.
func openLoop(ctx context.Context, g *gateway, l *tally, first, n, rate int) {
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(due)):
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a := g.post(loadCallback(first + i))
			l.record(first+i, a, time.Since(due))
		}()
	}
	wg.Wait()
}

// closedLoop sends loadCallback(first...) one at a time, each after the
// last was answered, until ctx ends.
func closedLoop(ctx context.Context, g *gateway, l *tally, first int) int {
	seq := first
	for ctx.Err() == nil {
		t0 := time.Now()
		l.record(seq, g.post(loadCallback(seq)), time.Since(t0))
		seq++
	}
	return seq
}

// verify reads topic back and checks that every callback answered 200 is
// there; it logs the counts the issue asks for and returns the seqs of the
// hot partition in the order Kafka holds them (first copy of each).
func verify(t *testing.T, c *cluster, scenario, topic string, l *tally, spooled int) []int {
	t.Helper()
	msgs := c.consume(t, topic)
	held := map[string]bool{}
	var order []int
	dups := 0
	for _, m := range msgs {
		id := header(m, "ce_id")
		if held[id] {
			dups++
			continue
		}
		held[id] = true
		var v struct {
			MailingID int `json:"mailing_id"`
		}
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatalf("%s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
		}
		order = append(order, v.MailingID-5000000000)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var lost []int
	for id, seq := range l.ok {
		if !held[id] {
			lost = append(lost, seq)
		}
	}
	slices.Sort(lost)
	t.Logf("%s: sent %d, answered 200 %d, spooled %d, 503 %d, other %d, consumed %d (+%d duplicates), lost %d",
		scenario, l.sent, len(l.ok), spooled, l.unavailable, sumOf(l.other), len(held), dups, len(lost))
	if len(lost) > 0 {
		t.Errorf("%d callbacks answered 200 are not in Kafka, seqs %v", len(lost), lost[:min(len(lost), 20)])
	}
	if len(l.other) > 0 {
		t.Errorf("answers other than 200 and 503: %v", l.other)
	}
	if l.noRetryAfter > 0 {
		t.Errorf("%d answers 503 without Retry-After", l.noRetryAfter)
	}
	return order
}

func sumOf(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// leaderOf returns the broker (= node) id leading topic's partition p.
func leaderOf(t *testing.T, c *cluster, topic string, p int) int {
	t.Helper()
	for _, part := range c.partitions(t, topic) {
		if part.ID == p {
			return part.Leader.ID
		}
	}
	t.Fatalf("%s has no partition %d", topic, p)
	return 0
}

// waitSpoolEmpty waits until the gateway's spool holds no record.
func waitSpoolEmpty(t *testing.T, g *gateway, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for g.metric("emma_gateway_spool_records") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the spool still holds %v records after %v", g.metric("emma_gateway_spool_records"), timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func logHas(g *gateway, s string) bool { return strings.Contains(g.stderr.String(), s) }
