package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// ErrUnavailable is matched by every error of [Kafka.Publish] and
// [Kafka.DeadLetter]: the event is not durable and the caller must not
// acknowledge it.
var ErrUnavailable = errors.New("kafka unavailable")

// Kafka publishes events to Kafka through one shared producer (one produce
// request per broker carrying every partition, see producer), waiting for
// acknowledgement from all in-sync replicas before returning.
type Kafka struct {
	cfg     Config
	log     *slog.Logger
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	publish *prometheus.HistogramVec
	// producerSpan are the producer spans' start options, built once (a
	// variadic call would allocate them each time).
	producerSpan []trace.SpanStartOption
	// observers holds publish's children by label set, resolved on first
	// use rather than by WithLabelValues per message.
	observers sync.Map // publishLabels -> prometheus.Observer
	// values holds encode's buffers (*[]byte).
	values sync.Pool
	// spanNames holds each topic's producer span name ("send " + topic).
	spanNames sync.Map // string -> string
	dropped   *prometheus.CounterVec
	created   sync.Map // topics named by routes with {account}, created
	prod      *producer
	// transport is the producer's and client's: dropping its connection
	// pool is the only way to make kafka-go fetch fresh metadata before its
	// TTL.
	transport *kafka.Transport
	// co is the single writer in front of the producer: it hands it what
	// queued in one call and decides, in that one goroutine, what is
	// spooled, so that the order of the calls survives an outage (see
	// coalescer).
	co     coalescer
	client *kafka.Client
	spool  *Spool // nil without a spool directory

	// ctx is the sink's lifetime: the replayer and the topic creator run
	// under it, and Shutdown cancels it, so that neither outlives the sink
	// nor makes Shutdown wait longer than its own context allows.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	started  atomic.Bool
	stopOnce sync.Once
	stopped  chan struct{} // closed when Shutdown's work is done
	stopErr  error

	mu          sync.Mutex
	topicsReady bool
	topicsErr   error

	// acct bounds the {account} topics created at run time; nil when
	// the gateway creates no topics or the routes name none.
	acct *accountTopics
}

// NewKafka returns a Kafka sink for cfg. It does not connect: call Start.
// With cfg.Spool.Dir set it opens the spool there (replaying, once
// started, what a previous run left).
func NewKafka(cfg Config, set telemetry.Settings) (*Kafka, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set = set.WithDefaults()
	transport, _, err := cfg.Connection()
	if err != nil {
		return nil, err
	}
	addr := kafka.TCP(cfg.Brokers...)
	k := &Kafka{
		cfg:    cfg,
		log:    set.Logger,
		tracer: set.TracerProvider.Tracer("github.com/emma-gateway/emma-gateway/sinks"),
		prop:   set.Propagator,
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "emma_gateway_publish_duration_seconds",
			Help:    "Time to make one message durable, by topic and result (kafka, spooled, error).",
			Buckets: telemetry.LatencyBuckets(),
		}, []string{"topic", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "emma_gateway_events_dropped_total",
			Help: "Events dropped on purpose by a drop route, by event name.",
		}, []string{"event"}),
		stopped:      make(chan struct{}),
		client:       &kafka.Client{Addr: addr, Transport: transport, Timeout: cfg.WriteTimeout},
		producerSpan: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)},
	}
	k.transport = transport
	if k.prod, err = newProducer(producerConfig{
		Transport:       transport,
		Addr:            addr,
		MaxRequestBytes: cfg.MaxRequestBytes,
		RequestTimeout:  cfg.WriteTimeout,
		MaxAttempts:     cfg.MaxAttempts,
		BackoffMin:      cfg.WriteBackoff.Min,
		BackoffMax:      cfg.WriteBackoff.Max,
	}); err != nil {
		return nil, err
	}
	k.co = coalescer{
		write: k.writeFresh,
		// Every attempt of the producer, each with its backoff: the
		// callers' own deadlines are shorter.
		timeout:  time.Duration(cfg.MaxAttempts) * (cfg.WriteTimeout + cfg.WriteBackoff.Max),
		maxBytes: cfg.MaxRequestBytes,
	}
	if !cfg.CreateTopics {
		k.topicsReady = true
	}
	if cfg.Spool.Dir != "" {
		if k.spool, err = OpenSpool(cfg.Spool, set.Logger); err != nil {
			return nil, err
		}
		k.co.spool, k.co.spoolAfter = k.spool, cfg.Spool.After
	}
	collectors := []prometheus.Collector{k.publish, k.dropped, &collector{k: k}}
	// Also without CreateTopics: a broker with auto.create.topics.enable
	// would otherwise create a topic for every made-up account id.
	if cfg.Routes.perAccount() {
		k.acct = newAccountTopics(cfg.MaxAccountTopics, set.Logger)
		collectors = append(collectors, k.acct.refused, k.acct.gauge)
	}
	var merrs []error
	for _, c := range collectors {
		if err := set.Registerer.Register(c); err != nil {
			merrs = append(merrs, err)
		}
	}
	if err := errors.Join(merrs...); err != nil {
		if k.spool != nil {
			_ = k.spool.Shutdown(context.Background()) // never started: closes a file
		}
		return nil, fmt.Errorf("kafka metrics: %w", err)
	}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	return k, nil
}

// Spool returns the sink's spool, nil when it has none.
func (k *Kafka) Spool() *Spool { return k.spool }

// Topics returns every topic the sink writes: one per known event type, the
// unrecognized topic and the dead-letter topic.
func (k *Kafka) Topics() []string { return k.cfg.Topics() }

// Start starts the spool and its replayer and creates the missing topics.
// It returns quickly: if the brokers do not answer within
// Config.StartTimeout it keeps trying in the background (and [Kafka.Ready]
// says so) rather than failing, so that a gateway can start while Kafka is
// still coming up.
func (k *Kafka) Start(ctx context.Context) error {
	if k.ctx.Err() != nil {
		return errors.New("kafka sink: shut down")
	}
	if k.started.Swap(true) {
		return errors.New("kafka sink: already started")
	}
	if k.spool != nil {
		if err := k.spool.Start(ctx); err != nil {
			return err
		}
		k.wg.Go(k.replay)
	}
	if !k.cfg.CreateTopics {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, k.cfg.StartTimeout)
	err := k.ensureTopics(sctx)
	cancel()
	if err == nil {
		return nil
	}
	k.log.Warn("kafka topics not created yet; retrying in the background", "error", err)
	k.wg.Go(k.createTopics)
	return nil
}

// createTopics retries ensureTopics, with backoff, until it succeeds or the
// sink shuts down.
func (k *Kafka) createTopics() {
	backoff := k.cfg.CreateTopicsBackoff.Min
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-time.After(jitter(backoff)):
		}
		ctx, cancel := context.WithTimeout(k.ctx, k.cfg.CreateTopicsTimeout)
		err := k.ensureTopics(ctx)
		cancel()
		switch {
		case err == nil:
			k.log.Info("kafka topics created")
			return
		case k.ctx.Err() != nil:
			return
		}
		k.log.Warn("kafka topics not created yet", "error", err)
		backoff = k.cfg.CreateTopicsBackoff.next(backoff)
	}
}

func (k *Kafka) ensureTopics(ctx context.Context) error {
	// kafka-go answers CreateTopics with BROKER_NOT_AVAILABLE whatever kept
	// it from the brokers (a refused connection, a TLS handshake, a wrong
	// SASL password); its Metadata returns the real cause, which is what an
	// operator needs in the log and in /readyz.
	if _, err := k.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.cfg.DeadLetterTopic}}); err != nil {
		k.mu.Lock()
		k.topicsReady, k.topicsErr = false, err
		k.mu.Unlock()
		return err
	}
	var cfgs []kafka.TopicConfig
	for _, t := range k.Topics() {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t, NumPartitions: k.cfg.Partitions, ReplicationFactor: k.cfg.ReplicationFactor})
	}
	res, err := k.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err == nil {
		var errs []error
		for topic, terr := range res.Errors {
			if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("create topic %s: %w", topic, terr))
			}
		}
		err = errors.Join(errs...)
	}
	if err == nil && k.acct != nil {
		err = k.acct.seed(ctx, k.client, k.cfg.Routes)
	}
	k.mu.Lock()
	k.topicsReady, k.topicsErr = err == nil, err
	k.mu.Unlock()
	return err
}

// Ready reports whether the brokers answer and the topics exist.
func (k *Kafka) Ready(ctx context.Context) error {
	k.mu.Lock()
	ready, terr := k.topicsReady, k.topicsErr
	k.mu.Unlock()
	if !ready {
		if terr == nil {
			terr = errors.New("not created yet")
		}
		return fmt.Errorf("kafka topics: %w", terr)
	}
	ctx, cancel := context.WithTimeout(ctx, k.cfg.HealthTimeout)
	defer cancel()
	md, err := k.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.cfg.DeadLetterTopic}})
	if err != nil {
		return fmt.Errorf("kafka brokers: %w", err)
	}
	if len(md.Brokers) == 0 {
		return errors.New("kafka brokers: metadata lists no broker")
	}
	return nil
}

// Health is the sink's answer to a readiness probe.
type Health struct {
	// Ready is whether the sink can make events durable now.
	Ready bool
	// Checks has a line per dependency ("kafka", and "spool" with one)
	// saying why.
	Checks map[string]string
}

// Health reports whether the sink can make events durable now: when Kafka
// answers and its topics exist, or, with a spool, when the spool has room
// (an unreachable Kafka then delays events, it does not refuse them).
func (k *Kafka) Health(ctx context.Context) Health {
	h := Health{Ready: true, Checks: map[string]string{"kafka": "ok"}}
	kerr := k.Ready(ctx)
	if kerr != nil {
		h.Checks["kafka"] = kerr.Error()
	}
	if k.spool == nil {
		h.Ready = kerr == nil
		return h
	}
	st := k.spool.Stats()
	if err := k.spool.Room(); err != nil {
		h.Checks["spool"] = fmt.Sprintf("%v: %d records, %d bytes", err, st.Records, st.Bytes)
		h.Ready = kerr == nil
		return h
	}
	h.Checks["spool"] = fmt.Sprintf("ok: %d records, %d bytes", st.Records, st.Bytes)
	return h
}

// Publish writes ev to every destination of its route and returns once all
// in-sync replicas have each copy (or, with a spool, once the copies Kafka
// did not take are spooled). An error means the event is not known to be
// durable everywhere: it wraps [ErrUnavailable]. Because kafka-go has no
// idempotent producer and a write already sent cannot be recalled, an
// error does not prove the event is absent from Kafka: delivery is
// at-least-once, deduplicated by event_id. An event a route drops on
// purpose returns nil and is counted.
func (k *Kafka) Publish(ctx context.Context, ev *events.Event) error {
	return k.publishWith(ctx, ev, nil, nil)
}

// PublishPlaced is [Kafka.Publish], also saying where the event's first
// copy went. An event a route drops has an empty Placement.
func (k *Kafka) PublishPlaced(ctx context.Context, ev *events.Event) (Placement, error) {
	p := Placement{Partition: -1, Offset: -1}
	err := k.publishWith(ctx, ev, nil, &p)
	return p, err
}

// Redrive publishes ev as [Kafka.Publish] does, each copy with the header
// emma_redriven_from = from, the dead letter ev was decoded from
// ("{topic}/{partition}/{offset}"): a consumer can tell a redriven event
// from a fresh one, and the event_id stays the event's.
func (k *Kafka) Redrive(ctx context.Context, ev *events.Event, from string) error {
	return k.publishWith(ctx, ev, &kafka.Header{Key: kafkaevents.HeaderRedrivenFrom, Value: []byte(from)}, nil)
}

// publishWith is Publish, adding extra (when not nil) to every copy, and
// filling place (when not nil).
func (k *Kafka) publishWith(ctx context.Context, ev *events.Event, extra *kafka.Header, place *Placement) error {
	value, err := k.encode(ev)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", ev.Name, err)
	}
	if !ev.Recognized() || k.cfg.Routes == nil {
		topic := k.cfg.UnrecognizedTopic
		if ev.Recognized() {
			topic = k.cfg.topic(ev.Name)
		}
		m := binaryMessage(topic, ev, KeyDefault, value)
		if extra != nil {
			m.Headers = append(m.Headers, *extra)
		}
		return k.write(ctx, place, m)
	}
	topic := k.cfg.topic(ev.Name)
	dests, dropped := k.cfg.Routes.Route(ev.Name, int64(ev.AccountID()), topic)
	if dropped {
		k.dropped.WithLabelValues(ev.Name).Inc()
		return nil
	}
	if k.acct != nil {
		dests = k.acct.bound(dests, topic)
	}
	msgs := make([]kafka.Message, 0, len(dests))
	for _, d := range dests {
		var m kafka.Message
		if d.ContentMode == ContentStructured {
			if m, err = structuredMessage(d.Topic, ev, routeKey(ev, d.Key), value); err != nil {
				return err
			}
		} else {
			m = binaryMessage(d.Topic, ev, d.Key, value)
		}
		if len(d.IntendedTopics) > 0 {
			m.Headers = append(m.Headers, kafka.Header{Key: kafkaevents.HeaderIntendedTopic, Value: []byte(strings.Join(d.IntendedTopics, ","))})
		}
		msgs = append(msgs, m)
	}
	if extra != nil {
		for i := range msgs {
			msgs[i].Headers = append(msgs[i].Headers, *extra)
		}
	}
	if err := k.ensureRouteTopics(ctx, msgs); err != nil && k.spool == nil {
		return err
	} // with a spool, the copies are spooled and the replay creates the topics
	return k.write(ctx, place, msgs...)
}

// encode returns ev's normalized JSON in a slice of its exact size,
// appended into a pooled buffer and copied out once. The copy is what the
// messages keep: the value outlives Publish (a round a caller's deadline
// left behind may still send it, the spool and the retries keep it), so
// the pooled buffer cannot be the value itself.
func (k *Kafka) encode(ev *events.Event) ([]byte, error) {
	bp, _ := k.values.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b, err := ev.AppendJSON((*bp)[:0])
	var value []byte
	if err == nil {
		value = make([]byte, len(b))
		copy(value, b)
	}
	if cap(b) <= maxPooledValue {
		*bp = b
		k.values.Put(bp)
	}
	return value, err
}

// maxPooledValue bounds the buffers encode keeps: an unusually large event
// does not pin its buffer for good.
const maxPooledValue = 64 << 10

// DeadLetter writes a rejected callback, raw, to the dead-letter topic with
// the reason in its headers.
func (k *Kafka) DeadLetter(ctx context.Context, r *events.Rejection) error {
	return k.deadLetter(ctx, r, nil)
}

// DeadLetterPlaced is [Kafka.DeadLetter], also saying where the letter
// went.
func (k *Kafka) DeadLetterPlaced(ctx context.Context, r *events.Rejection) (Placement, error) {
	p := Placement{Partition: -1, Offset: -1}
	err := k.deadLetter(ctx, r, &p)
	return p, err
}

func (k *Kafka) deadLetter(ctx context.Context, r *events.Rejection, place *Placement) error {
	msg := kafka.Message{
		Topic:   k.cfg.DeadLetterTopic,
		Key:     []byte(r.ID),
		Value:   r.Payload,
		Headers: deadLetterHeaders(r),
	}
	return k.write(ctx, place, msg)
}

// ensureRouteTopics creates, once, the topics a route names with {account}
// (the others were created at start).
func (k *Kafka) ensureRouteTopics(ctx context.Context, msgs []kafka.Message) error {
	if !k.cfg.CreateTopics || k.cfg.Routes == nil {
		return nil
	}
	var missing []kafka.TopicConfig
	for _, m := range msgs {
		if _, ok := k.created.Load(m.Topic); !ok {
			missing = append(missing, kafka.TopicConfig{Topic: m.Topic, NumPartitions: k.cfg.Partitions, ReplicationFactor: k.cfg.ReplicationFactor})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	res, err := k.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: missing})
	if err != nil {
		// Kafka is unreachable: the write will fail and spool the copies,
		// whose replay creates nothing; say so rather than loop.
		return fmt.Errorf("%w: create topics: %w", ErrUnavailable, err)
	}
	for _, t := range missing {
		if terr := res.Errors[t.Topic]; terr == nil || errors.Is(terr, kafka.TopicAlreadyExists) {
			k.created.Store(t.Topic, true)
		} else {
			return fmt.Errorf("%w: create topic %s: %w", ErrUnavailable, t.Topic, terr)
		}
	}
	return nil
}

// write makes msgs durable: one producer span per message, one produce
// call for all, and, with a spool, the copies Kafka did not take spooled.
func (k *Kafka) write(ctx context.Context, place *Placement, msgs ...kafka.Message) error {
	var one [1]trace.Span
	spans := one[:]
	if len(msgs) > 1 {
		spans = make([]trace.Span, len(msgs))
	}
	defer func() {
		for _, span := range spans {
			span.End()
		}
	}()
	for i := range msgs {
		var sctx context.Context
		sctx, spans[i] = k.tracer.Start(ctx, k.spanName(msgs[i].Topic), k.producerSpan...)
		if spans[i].IsRecording() { // else the attributes are built for nothing
			spans[i].SetAttributes(
				semconv.MessagingSystemKafka,
				semconv.MessagingOperationTypeSend,
				semconv.MessagingOperationName("send"),
				semconv.MessagingDestinationName(msgs[i].Topic),
				semconv.MessagingKafkaMessageKey(string(msgs[i].Key)),
				semconv.MessagingMessageBodySize(len(msgs[i].Value)),
			)
		}
		// The message carries its producer span, so a consumer's span is
		// its child, also when the message is replayed from the spool.
		k.prop.Inject(sctx, kafkaevents.Headers{H: &msgs[i].Headers})
		// produceInto records on it the partition and offset Kafka gave
		// the message.
		msgs[i].WriterData = &sent{span: spans[i]}
	}
	start := time.Now()
	// With a spool, the coalescer spools what Kafka does not take within
	// SpoolConfig.After, and, while the spool holds records, queues new
	// ones behind them so that replay keeps their order.
	var errs []error
	for i, r := range k.co.produce(ctx, msgs) {
		result := "kafka"
		switch {
		case r.err != nil:
			result = "error"
			errs = append(errs, k.failed(spans[i], msgs[i].Topic, r.err))
		case r.spooled != "":
			result = "spooled"
			spans[i].AddEvent("spooled", trace.WithAttributes(attribute.String("emma.spool.reason", r.spooled)))
		}
		if i == 0 && place != nil {
			*place = Placement{Topic: msgs[0].Topic, Partition: -1, Offset: -1, Spooled: r.spooled != ""}
			if s := msgs[0].WriterData.(*sent); r.err == nil && r.spooled == "" && s.known {
				place.Partition, place.Offset = s.partition, s.offset
			}
		}
		k.observer(msgs[i].Topic, result).Observe(time.Since(start).Seconds())
	}
	return errors.Join(errs...)
}

// spanName is the producer span's name for topic, built once a topic.
func (k *Kafka) spanName(topic string) string {
	if n, ok := k.spanNames.Load(topic); ok {
		return n.(string)
	}
	n, _ := k.spanNames.LoadOrStore(topic, "send "+topic)
	return n.(string)
}

// publishLabels is one label set of the publish histogram.
type publishLabels struct{ topic, result string }

func (k *Kafka) observer(topic, result string) prometheus.Observer {
	key := publishLabels{topic, result}
	o, ok := k.observers.Load(key)
	if !ok {
		o, _ = k.observers.LoadOrStore(key, k.publish.WithLabelValues(topic, result))
	}
	return o.(prometheus.Observer)
}

// sent is a live message's WriterData: its producer span, and where Kafka
// put it once the producer has written it.
type sent struct {
	span      trace.Span
	partition int32
	offset    int64
	known     bool
}

// Placement is where the sink put an event's first copy (the first
// destination of its route) or a dead letter: for the operator console.
type Placement struct {
	Topic string
	// Partition and Offset are -1 when unknown (spooled, or failed).
	Partition int32
	Offset    int64
	// Spooled is true when the copy is in the local spool, not yet in
	// Kafka.
	Spooled bool
}

// writeFresh writes msgs through the producer, and, on
// NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION
// answers that outlast the producer's own attempts, writes the messages that
// failed so again, a few times with a longer backoff, each time after
// dropping the transport's connection pool, whose successor starts with
// fresh metadata. Apache Kafka answers so in the first moments of a topic
// just created (the controller has agreed, the leader does not know yet)
// and after every leader change, for longer than MaxAttempts' backoffs
// span; kfake never does. A leader that died is the same case seen from
// the socket (connection refused or reset). Each live message's producer
// span gets the partition and offset Kafka gave it. The error, when not
// nil, is a kafka.WriteErrors with one entry per message.
func (k *Kafka) writeFresh(ctx context.Context, msgs []kafka.Message) error {
	errs := make([]error, len(msgs))
	k.produceInto(ctx, msgs, nil, errs)
	backoff := k.cfg.StaleRetryBackoff.Min
	for attempt := 0; attempt < k.cfg.StaleRetries && ctx.Err() == nil; attempt++ {
		var retry []int
		for i, e := range errs {
			if staleMetadata(e) {
				retry = append(retry, i)
			}
		}
		if len(retry) == 0 {
			break
		}
		k.transport.CloseIdleConnections()
		select {
		case <-time.After(jitter(backoff)):
		case <-ctx.Done():
		}
		backoff = k.cfg.StaleRetryBackoff.next(backoff)
		again := make([]kafka.Message, len(retry))
		for j, i := range retry {
			again[j] = msgs[i]
		}
		k.produceInto(ctx, again, retry, errs)
	}
	for _, e := range errs {
		if e != nil {
			return kafka.WriteErrors(errs)
		}
	}
	return nil
}

// produceInto produces msgs and records each one's error in errs, at
// at[j] for msgs[j] (at j when at is nil), and each live message's
// partition and offset on its producer span.
func (k *Kafka) produceInto(ctx context.Context, msgs []kafka.Message, at []int, errs []error) {
	for j, r := range k.prod.Produce(ctx, msgs) {
		i := j
		if at != nil {
			i = at[j]
		}
		errs[i] = r.Err
		if r.Err != nil {
			continue
		}
		// A live publish carries its producer span; a replayed record has
		// none (its span ended when it was spooled).
		if s, ok := msgs[j].WriterData.(*sent); ok {
			if s.span.IsRecording() { // else the attributes are built for nothing
				s.span.SetAttributes(
					semconv.MessagingDestinationPartitionID(strconv.Itoa(r.Partition)),
					semconv.MessagingKafkaOffset(int(r.Offset)))
			}
			s.partition, s.offset, s.known = int32(r.Partition), r.Offset, true
		}
	}
}

// staleMetadata reports whether err says the client wrote to a broker that
// does not lead the partition (yet), or to one that is gone, which fresh
// metadata cures once Kafka has elected another leader.
func staleMetadata(err error) bool {
	return errors.Is(err, kafka.NotLeaderForPartition) || errors.Is(err, kafka.LeaderNotAvailable) ||
		errors.Is(err, kafka.UnknownTopicOrPartition) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (k *Kafka) failed(span trace.Span, topic string, err error) error {
	span.SetStatus(codes.Error, "publish failed")
	span.SetAttributes(attribute.String(string(semconv.ErrorTypeKey), errorType(err)))
	return fmt.Errorf("%w: publish to %s: %w", ErrUnavailable, topic, err)
}

// replay sends sealed spool segments to Kafka, oldest first, and deletes a
// segment once all its records are acknowledged. It backs off while Kafka
// fails and stops with Shutdown.
func (k *Kafka) replay() {
	ctx := k.ctx
	pos := map[uint64]int{} // records of a segment already acknowledged
	backoff := k.cfg.Spool.ReplayBackoff.Min
	tick := time.NewTicker(k.cfg.Spool.ReplayPoll)
	defer tick.Stop()
	for {
		if k.spool.Pending() {
			err := k.replayOnce(ctx, pos)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				wait := jitter(backoff)
				k.log.Warn("spool replay paused; Kafka does not take the records yet", "error", err, "retry_in", wait)
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return
				}
				backoff = k.cfg.Spool.ReplayBackoff.next(backoff)
				continue
			}
			backoff = k.cfg.Spool.ReplayBackoff.Min
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-k.spool.notify:
		case <-tick.C:
		}
	}
}

// replayOnce replays every sealed segment, sealing the active one first
// when the others are done.
func (k *Kafka) replayOnce(ctx context.Context, pos map[uint64]int) error {
	segs, err := k.spool.sealed()
	if err != nil {
		return err
	}
	for _, seq := range segs {
		recs, corrupt, err := readSegment(k.spool.path(seq))
		if err != nil {
			return err
		}
		if corrupt > 0 && pos[seq] == 0 {
			k.spool.corrupt.Add(int64(corrupt))
			k.log.Error("spool: skipped corrupted records (a torn write or a damaged disk)", "segment", filepath.Base(k.spool.path(seq)), "stretches", corrupt)
		}
		for i := pos[seq]; i < len(recs); {
			// One produce call: the producer keeps a partition's records
			// in order within it, and holds back those behind one that
			// failed.
			end, size := i, 0
			for end < len(recs) && end-i < k.cfg.Spool.ReplayBatch {
				if size += messageSize(recs[end].msg); end > i && size > k.cfg.MaxRequestBytes {
					break
				}
				end++
			}
			batch := make([]kafka.Message, 0, end-i)
			for _, r := range recs[i:end] {
				batch = append(batch, r.msg)
			}
			wctx, cancel := context.WithTimeout(ctx, k.cfg.WriteTimeout)
			err := k.ensureRouteTopics(wctx, batch)
			if err == nil {
				err = k.writeFresh(wctx, batch)
			}
			cancel()
			if err != nil {
				return fmt.Errorf("replay %s: %w", filepath.Base(k.spool.path(seq)), err)
			}
			k.spool.replayed.Add(int64(end - i))
			i = end
			pos[seq] = i
		}
		if err := k.spool.remove(seq); err != nil {
			return err
		}
		delete(pos, seq)
	}
	return nil
}

// errorType is a low-cardinality name for a publish error.
func errorType(err error) string {
	var ke kafka.Error
	switch {
	case errors.As(err, &ke):
		return ke.Title()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

// Shutdown stops the replayer and the topic creator, lets the write in
// flight end, drains the producer, and closes the spool, all bounded by
// ctx: a write to an unreachable broker can take its whole timeout, and a
// shutdown must not. What is not flushed by then was
// acknowledged to no one or is in the spool already. Safe without Start
// and safe twice (the second call waits for the first's work, bounded by
// its own ctx).
func (k *Kafka) Shutdown(ctx context.Context) error {
	k.stopOnce.Do(func() {
		k.cancel()
		go func() {
			defer close(k.stopped)
			k.wg.Wait() // the replayer and the topic creator, cancelled
			k.co.close()
			k.co.wg.Wait() // a shared write in flight ends first
			err := k.prod.Shutdown(ctx)
			if k.spool != nil {
				// The spool is closed last: a round may spool until then.
				err = errors.Join(err, k.spool.Shutdown(context.WithoutCancel(ctx)))
			}
			k.stopErr = err
		}()
	})
	select {
	case <-k.stopped:
		return k.stopErr
	case <-ctx.Done():
		return fmt.Errorf("kafka sink shutdown: %w", ctx.Err())
	}
}
