package sinks

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	meta "github.com/segmentio/kafka-go/protocol/metadata"
	produceapi "github.com/segmentio/kafka-go/protocol/produce"
)

// producer writes kafka-go Messages with one produce request per broker that
// carries every partition's records at once, where kafka-go's Writer sends
// one request per partition batch. With the 19 topics of 3 partitions the
// gateway writes, the Writer's batches rarely hold two messages however many
// callbacks are in flight, so requests, syscalls and broker work multiply
// with the topics; here they grow with the load instead.
//
// Batching is natural, without a timer: a record whose leader has no request
// in flight is sent at once, alone; the records that queue for that broker
// while a request is in flight all go in the next one, bounded by
// MaxRequestBytes. One request is in flight per broker, each with acks from
// every in-sync replica.
//
// Partitions are chosen by kafka-go's Murmur2Balancer over the partition
// count of the Transport's cached metadata, as the Writer chooses them, so a
// key lands on the partition the Writer (and Java's and librdkafka's
// consistent clients) would pick. Leaders come from the same cache the
// Transport routes produce requests by: a request grouped by other metadata
// would be refused as "mismatching leaders". kafka-go refreshes that cache
// only on a timer; when a broker answers NOT_LEADER_OR_FOLLOWER,
// UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE, or a connection fails,
// the producer drops the Transport's connection pool
// (Transport.CloseIdleConnections, the only public way to discard the cache;
// requests in flight finish first), so the next request starts from fresh
// metadata.
//
// Retries run in the caller's goroutine, within its context and
// MaxAttempts, with jittered exponential backoff, for the records whose
// error is retriable; the others are returned at once. A context that ends
// does not recall a request already sent: its records may still land
// (at-least-once, deduplicated by event_id downstream), and a caller that
// then spools them must count the spooled copy as a possible duplicate, not
// as a second event.
type producer struct {
	cfg producerConfig
	bal kafka.Murmur2Balancer

	// parts is 0..n-1 for the largest partition count seen: the list
	// kafka-go's Balancer interface wants, built once rather than per
	// message.
	parts atomic.Pointer[[]int]

	requests  atomic.Int64 // produce requests sent
	records   atomic.Int64 // records they carried
	bytes     atomic.Int64 // about the bytes of those records
	failures  atomic.Int64 // records a request answered with an error
	retries   atomic.Int64 // records sent again
	refreshes atomic.Int64 // forced metadata refreshes

	wg          sync.WaitGroup // one flusher per busy broker
	mu          sync.Mutex
	brokers     map[int32]*brokerQueue
	closed      bool
	lastRefresh time.Time
}

// producerConfig configures a producer. Zero fields take the documented
// defaults.
type producerConfig struct {
	// Transport carries every request and caches the cluster metadata.
	// Required; it may be shared with a kafka.Client, which then sees its
	// connections dropped on a forced refresh (and reconnects).
	Transport *kafka.Transport
	// Addr is the bootstrap brokers. Required.
	Addr net.Addr
	// MaxRequestBytes bounds the records of one produce request, so that a
	// large backlog goes in several requests the broker accepts. A record
	// larger than this fails with MESSAGE_TOO_LARGE. Default 1 MiB, Kafka's
	// max.request.size; it must not exceed the brokers' message.max.bytes
	// for a single partition's share.
	MaxRequestBytes int
	// RequestTimeout bounds one produce request and is the time the leader
	// may wait for the in-sync replicas. Default 10 s.
	RequestTimeout time.Duration
	// MaxAttempts bounds how many times a record is sent; the caller's
	// context bounds it too. Default 10.
	MaxAttempts int
	// BackoffMin and BackoffMax bound the jittered, doubling wait between
	// attempts. Default 10 ms and 500 ms.
	BackoffMin, BackoffMax time.Duration
	// RefreshInterval is the least time between two forced metadata
	// refreshes, so that a broker answering NOT_LEADER to everything does
	// not make the producer reconnect for every request. Default 100 ms.
	RefreshInterval time.Duration
}

// produceResult is where one message landed, or why it did not.
type produceResult struct {
	Partition int
	Offset    int64
	Err       error
}

// errProducerClosed is returned for messages produced after close.
var errProducerClosed = errors.New("kafka producer closed")

// errNoPartitionResponse is a record whose partition the produce response
// does not mention: whether it landed is unknown, so it is retried.
var errNoPartitionResponse = errors.New("produce response without the partition")

// errHeldBack is a record not sent because an earlier record of its call
// and partition failed: it is retried with that one, so that they land in
// order.
var errHeldBack = errors.New("held back behind a failed record of its partition")

// newProducer returns a producer for cfg, or every problem with cfg.
func newProducer(cfg producerConfig) (*producer, error) {
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = 1 << 20
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = 10 * time.Millisecond
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 500 * time.Millisecond
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = 100 * time.Millisecond
	}
	var errs []error
	if cfg.Transport == nil {
		errs = append(errs, errors.New("producer: Transport is required"))
	}
	if cfg.Addr == nil {
		errs = append(errs, errors.New("producer: Addr is required"))
	}
	if cfg.MaxRequestBytes < 1024 {
		errs = append(errs, fmt.Errorf("producer: MaxRequestBytes %d is below 1024", cfg.MaxRequestBytes))
	}
	if cfg.RequestTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("producer: RequestTimeout %s is below 1ms", cfg.RequestTimeout))
	}
	if cfg.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("producer: MaxAttempts %d is below 1", cfg.MaxAttempts))
	}
	if cfg.BackoffMin < 0 || cfg.BackoffMax < cfg.BackoffMin {
		errs = append(errs, fmt.Errorf("producer: backoff %s..%s is not a range", cfg.BackoffMin, cfg.BackoffMax))
	}
	if cfg.RefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("producer: RefreshInterval %s is negative", cfg.RefreshInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Murmur2Balancer is what kafka-go's Writer uses too: a nil key goes to
	// a random partition there and here.
	return &producer{cfg: cfg, brokers: map[int32]*brokerQueue{}}, nil
}

// brokerQueue is the records waiting for one broker's next request.
type brokerQueue struct {
	id      int32
	pending []pendingRecord
	busy    bool // a flusher runs for this broker
}

// pendingRecord is one message of a call, placed on a partition.
type pendingRecord struct {
	call      *produceAttempt
	i         int // index into call.msgs
	partition int32
	size      int
}

// produceAttempt is one attempt of one Produce: the messages it sends and,
// once every one is answered, their results.
type produceAttempt struct {
	msgs      []kafka.Message
	res       []produceResult // by index into msgs; each set by one flusher
	left      atomic.Int32    // records not yet answered
	done      chan struct{}   // closed when left reaches 0
	abandoned bool            // under producer.mu: the caller gave up
}

func (c *produceAttempt) answer(i int, r produceResult) {
	c.res[i] = r
	if c.left.Add(-1) == 0 {
		close(c.done)
	}
}

// Produce writes msgs and returns each one's partition and offset, or its
// error. It returns when every message is acknowledged by all in-sync
// replicas or has failed for good, or when ctx ends (then the messages not
// yet acknowledged have ctx's error, and may still land). msgs is only
// read, and must not change until Produce returns.
func (p *producer) Produce(ctx context.Context, msgs []kafka.Message) []produceResult {
	res := make([]produceResult, len(msgs))
	todo := make([]int, len(msgs))
	for i := range todo {
		todo[i] = i
	}
	backoff := p.cfg.BackoffMin
	for attempt := 1; len(todo) > 0; attempt++ {
		call := &produceAttempt{msgs: msgs, res: make([]produceResult, len(msgs)), done: make(chan struct{})}
		p.enqueue(ctx, call, todo)
		select {
		case <-call.done:
		case <-ctx.Done():
			p.mu.Lock()
			call.abandoned = true
			p.mu.Unlock()
			for _, i := range todo {
				res[i] = produceResult{Err: ctx.Err()}
			}
			return res
		}
		next := todo[:0]
		refresh := false
		var last error
		for _, i := range todo {
			r := call.res[i]
			res[i] = r
			if r.Err == nil || !retriable(r.Err) || attempt >= p.cfg.MaxAttempts {
				continue
			}
			next = append(next, i)
			refresh = refresh || needsRefresh(r.Err)
			last = r.Err
		}
		todo = next
		if len(todo) == 0 {
			break
		}
		p.retries.Add(int64(len(todo)))
		if refresh {
			p.refresh()
		}
		// Full jitter over the upper half: callers that failed together
		// do not all come back in the same instant.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			for _, i := range todo {
				res[i] = produceResult{Err: fmt.Errorf("%w (last attempt: %w)", ctx.Err(), last)}
			}
			return res
		}
		backoff = min(2*backoff, p.cfg.BackoffMax)
	}
	return res
}

// enqueue places call's messages todo on their partitions and leaders and
// queues them, starting a flusher for each broker that has none. Messages
// that cannot be placed are answered at once.
func (p *producer) enqueue(ctx context.Context, call *produceAttempt, todo []int) {
	call.left.Store(int32(len(todo)))
	md, err := p.metadata(ctx)
	recs := make([]pendingRecord, 0, len(todo))
	leaders := make([]int32, 0, len(todo))
	for _, i := range todo {
		m := &call.msgs[i]
		if err != nil {
			// No partition was chosen: -1, not partition 0.
			call.answer(i, produceResult{Partition: -1, Offset: -1, Err: err})
			continue
		}
		size := recordSize(m)
		if size > p.cfg.MaxRequestBytes {
			call.answer(i, produceResult{Err: fmt.Errorf("%w: record of %d bytes, max request %d", kafka.MessageSizeTooLarge, size, p.cfg.MaxRequestBytes)})
			continue
		}
		partition, leader, perr := p.place(md, m)
		if perr != nil {
			call.answer(i, produceResult{Partition: -1, Err: perr})
			continue
		}
		recs = append(recs, pendingRecord{call: call, i: i, partition: partition, size: size})
		leaders = append(leaders, leader)
	}
	if len(recs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, r := range recs {
			call.answer(r.i, produceResult{Partition: -1, Err: errProducerClosed})
		}
		return
	}
	for j, r := range recs {
		q := p.brokers[leaders[j]]
		if q == nil {
			q = &brokerQueue{id: leaders[j]}
			p.brokers[leaders[j]] = q
		}
		q.pending = append(q.pending, r)
		if !q.busy {
			q.busy = true
			p.wg.Add(1)
			go p.flush(q)
		}
	}
}

// metadata returns the Transport's cached metadata: all topics, sorted by
// name, their partitions by index, the brokers by id (kafka-go sorts its
// cache so), which is what it routes produce requests by.
func (p *producer) metadata(ctx context.Context) (*meta.Response, error) {
	r, err := p.cfg.Transport.RoundTrip(ctx, p.cfg.Addr, &meta.Request{})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata: %w", err)
	}
	return r.(*meta.Response), nil
}

// place returns m's partition, chosen as kafka-go's Writer chooses it, and
// that partition's leader.
func (p *producer) place(md *meta.Response, m *kafka.Message) (int32, int32, error) {
	ti := sort.Search(len(md.Topics), func(i int) bool { return md.Topics[i].Name >= m.Topic })
	if ti == len(md.Topics) || md.Topics[ti].Name != m.Topic {
		return 0, 0, fmt.Errorf("%w: %s", kafka.UnknownTopicOrPartition, m.Topic)
	}
	t := &md.Topics[ti]
	if t.ErrorCode != 0 {
		return 0, 0, fmt.Errorf("%w: %s", kafka.Error(t.ErrorCode), m.Topic)
	}
	if len(t.Partitions) == 0 {
		return 0, 0, fmt.Errorf("%w: %s has no partitions", kafka.UnknownTopicOrPartition, m.Topic)
	}
	partition := int32(p.bal.Balance(*m, p.partitionList(len(t.Partitions))...))
	pi := int(partition)
	if pi >= len(t.Partitions) || t.Partitions[pi].PartitionIndex != partition {
		pi = sort.Search(len(t.Partitions), func(i int) bool { return t.Partitions[i].PartitionIndex >= partition })
		if pi == len(t.Partitions) || t.Partitions[pi].PartitionIndex != partition {
			return 0, 0, fmt.Errorf("%w: %s/%d", kafka.UnknownTopicOrPartition, m.Topic, partition)
		}
	}
	leader := t.Partitions[pi].LeaderID
	bi := sort.Search(len(md.Brokers), func(i int) bool { return md.Brokers[i].NodeID >= leader })
	if leader < 0 || bi == len(md.Brokers) || md.Brokers[bi].NodeID != leader {
		return 0, 0, fmt.Errorf("%w: %s/%d", kafka.LeaderNotAvailable, m.Topic, partition)
	}
	return partition, leader, nil
}

// partitionList returns 0..n-1.
func (p *producer) partitionList(n int) []int {
	if l := p.parts.Load(); l != nil && len(*l) >= n {
		return (*l)[:n]
	}
	l := make([]int, max(n, 64))
	for i := range l {
		l[i] = i
	}
	p.parts.Store(&l)
	return l[:n]
}

// recordSize is about what a record costs in a request: its bytes and the
// framing of a v2 record (varints, attributes, deltas).
func recordSize(m *kafka.Message) int {
	n := len(m.Key) + len(m.Value) + 24
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// partitionBatchOverhead is a v2 record batch's header and the partition's
// framing in a request.
const partitionBatchOverhead = 61 + 8

// flush sends q's records, one request at a time, until none wait.
func (p *producer) flush(q *brokerQueue) {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		batch := p.take(q)
		if len(batch) == 0 {
			q.busy = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if failed := p.send(batch); len(failed) > 0 {
			p.mu.Lock()
			p.failBehind(q, failed)
			p.mu.Unlock()
		}
	}
}

// callPartition is one call's records on one partition.
type callPartition struct {
	call *produceAttempt
	tp   topicPartition
}

// failBehind answers with the same error the records still queued behind
// a failed record of the same call and partition, which happens when
// MaxRequestBytes split them over several requests. Sent on their own they
// could land before the failed ones are retried; failed with them, the
// caller retries them together, in their order (and sends them alone if
// the failed ones are not retried). p.mu is held.
func (p *producer) failBehind(q *brokerQueue, failed map[callPartition]error) {
	kept := q.pending[:0]
	for _, r := range q.pending {
		if err, ok := failed[callPartition{r.call, topicPartition{r.call.msgs[r.i].Topic, r.partition}}]; ok && !r.call.abandoned {
			r.call.answer(r.i, produceResult{Partition: int(r.partition), Offset: -1, Err: fmt.Errorf("%w: %s/%d: %v", errHeldBack, r.call.msgs[r.i].Topic, r.partition, err)})
			continue
		}
		kept = append(kept, r)
	}
	clear(q.pending[len(kept):])
	q.pending = kept
}

// take removes from q the records of the next request: the oldest ones,
// within MaxRequestBytes, skipping those of abandoned calls. p.mu is held.
func (p *producer) take(q *brokerQueue) []pendingRecord {
	var batch []pendingRecord
	size := 0
	seen := map[topicPartition]struct{}{} // partitions already framed
	n := 0
	for ; n < len(q.pending); n++ {
		r := q.pending[n]
		if r.call.abandoned {
			continue
		}
		cost := r.size
		tp := topicPartition{r.call.msgs[r.i].Topic, r.partition}
		if _, ok := seen[tp]; !ok {
			cost += partitionBatchOverhead
		}
		if len(batch) > 0 && size+cost > p.cfg.MaxRequestBytes {
			break
		}
		seen[tp] = struct{}{}
		size += cost
		batch = append(batch, r)
	}
	if n == len(q.pending) {
		q.pending = nil
	} else {
		q.pending = slices.Clone(q.pending[n:])
	}
	return batch
}

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// partitionRun is the records of one partition in a request.
type partitionRun struct {
	topic      string
	partition  int32
	start, end int // into the sorted batch
}

// send writes batch in one produce request and answers every record. It
// returns the calls' partitions that failed.
func (p *producer) send(batch []pendingRecord) map[callPartition]error {
	// Stable: a partition's records keep the order they queued in.
	slices.SortStableFunc(batch, func(a, b pendingRecord) int {
		if c := cmp.Compare(a.call.msgs[a.i].Topic, b.call.msgs[b.i].Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.partition, b.partition)
	})
	var runs []partitionRun
	req := &produceapi.Request{Acks: int16(kafka.RequireAll), Timeout: int32(p.cfg.RequestTimeout.Milliseconds())}
	for s := 0; s < len(batch); {
		topic, partition := batch[s].call.msgs[batch[s].i].Topic, batch[s].partition
		e := s + 1
		for e < len(batch) && batch[e].partition == partition && batch[e].call.msgs[batch[e].i].Topic == topic {
			e++
		}
		runs = append(runs, partitionRun{topic: topic, partition: partition, start: s, end: e})
		s = e
	}
	readers := make([]batchRecords, len(runs)) // the request points into it
	for k, run := range runs {
		readers[k] = batchRecords{recs: batch[run.start:run.end]}
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != run.topic {
			req.Topics = append(req.Topics, produceapi.RequestTopic{Topic: run.topic})
		}
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, produceapi.RequestPartition{
			Partition: run.partition,
			RecordSet: protocol.RecordSet{Records: &readers[k]},
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.RequestTimeout)
	r, err := p.cfg.Transport.RoundTrip(ctx, p.cfg.Addr, req)
	cancel()
	p.requests.Add(1)
	p.records.Add(int64(len(batch)))
	var size int64
	for _, rec := range batch {
		size += int64(rec.size)
	}
	p.bytes.Add(size)
	var failed map[callPartition]error
	fail := func(rec pendingRecord, topic string, err error) {
		p.failures.Add(1)
		if failed == nil {
			failed = map[callPartition]error{}
		}
		failed[callPartition{rec.call, topicPartition{topic, rec.partition}}] = err
	}
	if err != nil {
		err = fmt.Errorf("produce request: %w", err)
		for _, rec := range batch {
			rec.call.answer(rec.i, produceResult{Partition: int(rec.partition), Offset: -1, Err: err})
			fail(rec, rec.call.msgs[rec.i].Topic, err)
		}
		return failed
	}
	resp, ok := r.(*produceapi.Response)
	if !ok {
		err := fmt.Errorf("produce request: unexpected %T answer", r)
		for _, rec := range batch {
			rec.call.answer(rec.i, produceResult{Partition: int(rec.partition), Offset: -1, Err: err})
			fail(rec, rec.call.msgs[rec.i].Topic, err)
		}
		return failed
	}
	answered := make([]bool, len(runs))
	k := 0 // responses come in request order: look there first
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if k >= len(runs) || runs[k].topic != rt.Topic || runs[k].partition != rp.Partition {
				k = slices.IndexFunc(runs, func(r partitionRun) bool { return r.topic == rt.Topic && r.partition == rp.Partition })
				if k < 0 {
					k = len(runs)
					continue
				}
			}
			if answered[k] {
				k++
				continue
			}
			answered[k] = true
			run := runs[k]
			var perr error
			if rp.ErrorCode != 0 {
				perr = kafka.Error(rp.ErrorCode)
				if rp.ErrorMessage != "" {
					perr = fmt.Errorf("%w: %s", perr, rp.ErrorMessage)
				}
			}
			for j, rec := range batch[run.start:run.end] {
				res := produceResult{Partition: int(run.partition), Offset: rp.BaseOffset + int64(j), Err: perr}
				if perr != nil {
					res.Offset = -1
					for _, re := range rp.RecordErrors {
						if int(re.BatchIndex) == j && re.BatchIndexErrorMessage != "" {
							res.Err = fmt.Errorf("%w (record: %s)", perr, re.BatchIndexErrorMessage)
						}
					}
				}
				if perr != nil {
					fail(rec, run.topic, perr)
				}
				rec.call.answer(rec.i, res)
			}
			k++
		}
	}
	for k, run := range runs {
		if answered[k] {
			continue
		}
		err := fmt.Errorf("%w: %s/%d", errNoPartitionResponse, run.topic, run.partition)
		for _, rec := range batch[run.start:run.end] {
			rec.call.answer(rec.i, produceResult{Partition: int(run.partition), Offset: -1, Err: err})
			fail(rec, run.topic, err)
		}
	}
	return failed
}

// batchRecords reads a partition's records for the request encoder,
// reusing one record and two readers as kafka-go's Writer does, so that
// encoding allocates nothing per record.
type batchRecords struct {
	recs   []pendingRecord
	next   int
	record protocol.Record
	key    bytesValue
	value  bytesValue
}

// ReadRecord returns the next record, or io.EOF.
func (b *batchRecords) ReadRecord() (*protocol.Record, error) {
	if b.next >= len(b.recs) {
		return nil, io.EOF
	}
	r := b.recs[b.next]
	b.next++
	m := &r.call.msgs[r.i]
	b.record = protocol.Record{Time: m.Time, Headers: m.Headers}
	if m.Key != nil {
		b.key.Reset(m.Key)
		b.record.Key = &b.key
	}
	if m.Value != nil {
		b.value.Reset(m.Value)
		b.record.Value = &b.value
	}
	return &b.record, nil
}

// bytesValue is a protocol.Bytes over a message's own bytes.
type bytesValue struct{ bytes.Reader }

// Close does nothing: the bytes are the caller's.
func (*bytesValue) Close() error { return nil }

// refresh drops the Transport's connection pool, and so its cached
// metadata, at most once per RefreshInterval.
func (p *producer) refresh() {
	p.mu.Lock()
	if time.Since(p.lastRefresh) < p.cfg.RefreshInterval {
		p.mu.Unlock()
		return
	}
	p.lastRefresh = time.Now()
	p.mu.Unlock()
	p.refreshes.Add(1)
	p.cfg.Transport.CloseIdleConnections()
}

// Shutdown stops new produces and waits, bounded by ctx, for the records
// already queued to be sent and answered. Safe twice.
func (p *producer) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka producer shutdown: %w", ctx.Err())
	}
}

// producerStats counts what a producer sent since it was made.
type producerStats struct {
	Requests, Records, Bytes, Failures, Retries, Refreshes int64
}

func (p *producer) stats() producerStats {
	return producerStats{Requests: p.requests.Load(), Records: p.records.Load(), Bytes: p.bytes.Load(),
		Failures: p.failures.Load(), Retries: p.retries.Load(), Refreshes: p.refreshes.Load()}
}

// retriable reports whether another attempt may succeed where err failed.
func retriable(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary() || ke == kafka.BrokerNotAvailable
	}
	if errors.Is(err, errProducerClosed) {
		return false
	}
	// Whatever else failed a request (a connection, a routing decision on
	// stale metadata, the request's own timeout) says nothing about the
	// records themselves.
	var pe *produceapi.Error
	return errors.As(err, &pe) || errors.Is(err, errNoPartitionResponse) || errors.Is(err, errHeldBack) || connectionError(err) ||
		errors.Is(err, context.DeadlineExceeded)
}

// needsRefresh reports whether err says the cached metadata is wrong.
func needsRefresh(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.NotLeaderForPartition, kafka.UnknownTopicOrPartition, kafka.LeaderNotAvailable, kafka.BrokerNotAvailable:
			return true
		}
		return false
	}
	var pe *produceapi.Error
	return errors.As(err, &pe) || connectionError(err)
}

func connectionError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
