package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
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

// Kafka publishes events to Kafka through one shared kafka-go Writer, waiting
// for acknowledgement from all in-sync replicas before returning.
type Kafka struct {
	cfg     Config
	log     *slog.Logger
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	publish *prometheus.HistogramVec
	// inflight maps the traceparent of a message being written to its
	// producer span, so that the writer's completion callback can record
	// the partition and offset Kafka gave it.
	inflight sync.Map
	writer   *kafka.Writer
	client   *kafka.Client
	spool    *Spool // nil without a spool directory

	wg        sync.WaitGroup
	stop      chan struct{}
	closeOnce sync.Once
	closeErr  error

	mu          sync.Mutex
	topicsReady bool
	topicsErr   error
}

// NewKafka returns a Kafka sink for cfg. It does not connect: call Start.
// With cfg.Spool.Dir set it opens the spool there (replaying, once
// started, what a previous run left).
func NewKafka(cfg Config, set telemetry.Settings) (*Kafka, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set = set.WithDefaults()
	tlsCfg, err := cfg.TLS.config()
	if err != nil {
		return nil, err
	}
	mech, _ := cfg.SASL.mechanism() // checked by Validate
	transport := &kafka.Transport{
		Dial:        (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext,
		ClientID:    cfg.ClientID,
		TLS:         tlsCfg,
		SASL:        mech,
		MetadataTTL: cfg.MetadataTTL,
	}
	addr := kafka.TCP(cfg.Brokers...)
	var k *Kafka
	k = &Kafka{
		cfg:     cfg,
		log:     set.Logger,
		tracer:  set.TracerProvider.Tracer("github.com/emma-gateway/emma-gateway/sinks"),
		prop:    set.Propagator,
		publish: set.Metrics.PublishDuration,
		stop:    make(chan struct{}),
		client:  &kafka.Client{Addr: addr, Transport: transport, Timeout: cfg.WriteTimeout},
		writer: &kafka.Writer{
			Addr: addr,
			// Murmur2 is the partitioner of Java's and librdkafka's
			// consistent clients: a key lands on the same partition whoever
			// produces it. kafka-go's Hash is FNV-1a and would not agree.
			Balancer: &kafka.Murmur2Balancer{},
			// A literal Writer defaults to no acks at all; durability needs
			// every in-sync replica.
			RequiredAcks:           kafka.RequireAll,
			BatchTimeout:           cfg.BatchTimeout,
			BatchSize:              cfg.BatchSize,
			WriteTimeout:           cfg.WriteTimeout,
			ReadTimeout:            cfg.WriteTimeout,
			MaxAttempts:            cfg.MaxAttempts,
			WriteBackoffMin:        10 * time.Millisecond,
			WriteBackoffMax:        500 * time.Millisecond,
			AllowAutoTopicCreation: false,
			Transport:              transport,
			Completion: func(msgs []kafka.Message, err error) {
				if err != nil {
					return
				}
				for _, m := range msgs {
					if span, ok := k.inflight.Load((kafkaevents.Headers{H: &m.Headers}).Get("traceparent")); ok {
						span.(trace.Span).SetAttributes(
							semconv.MessagingDestinationPartitionID(strconv.Itoa(m.Partition)),
							semconv.MessagingKafkaOffset(int(m.Offset)))
					}
				}
			},
			ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
				set.Logger.Warn("kafka writer", "detail", fmt.Sprintf(msg, args...))
			}),
		},
	}
	if !cfg.CreateTopics {
		k.topicsReady = true
	}
	if cfg.Spool.Dir != "" {
		if k.spool, err = OpenSpool(cfg.Spool, set.Logger); err != nil {
			return nil, err
		}
	}
	if err := set.Metrics.Registry.Register(&collector{k: k}); err != nil {
		if k.spool != nil {
			k.spool.Close()
		}
		return nil, fmt.Errorf("kafka metrics: %w", err)
	}
	return k, nil
}

// Spool returns the sink's spool, nil when it has none.
func (k *Kafka) Spool() *Spool { return k.spool }

// Topics returns every topic the sink writes: one per known event type, the
// unrecognized topic and the dead-letter topic.
func (k *Kafka) Topics() []string { return k.cfg.Topics() }

// Start creates the missing topics. It returns quickly: if the brokers do
// not answer within a few seconds it keeps trying in the background (and
// [Kafka.Ready] says so) rather than failing, so that a gateway can start
// while Kafka is still coming up.
func (k *Kafka) Start(ctx context.Context) error {
	if k.spool != nil {
		k.wg.Add(1)
		go k.replay()
	}
	if !k.cfg.CreateTopics {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := k.ensureTopics(ctx)
	cancel()
	if err == nil {
		return nil
	}
	k.log.Warn("kafka topics not created yet; retrying in the background", "error", err)
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		backoff := time.Second
		for {
			select {
			case <-k.stop:
				return
			case <-time.After(backoff):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := k.ensureTopics(ctx)
			cancel()
			if err == nil {
				k.log.Info("kafka topics created")
				return
			}
			k.log.Warn("kafka topics not created yet", "error", err)
			backoff = min(2*backoff, 30*time.Second)
		}
	}()
	return nil
}

func (k *Kafka) ensureTopics(ctx context.Context) error {
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
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
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

// Publish writes ev to its topic and returns once all in-sync replicas have
// it. An error means the event is not known to be durable: it wraps
// [ErrUnavailable]. Because kafka-go has no idempotent producer and a write
// already sent cannot be recalled, an error does not prove the event is
// absent from Kafka: delivery is at-least-once, deduplicated by event_id.
func (k *Kafka) Publish(ctx context.Context, ev *events.Event) error {
	value, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", ev.Name, err)
	}
	topic := k.cfg.UnrecognizedTopic
	if ev.Recognized() {
		topic = k.cfg.topic(ev.Name)
	}
	msg := kafka.Message{Topic: topic, Value: value, Headers: cloudEventHeaders(ev)}
	if key := ev.Key(); key != "" {
		msg.Key = []byte(key)
	}
	return k.write(ctx, msg)
}

// DeadLetter writes a rejected callback, raw, to the dead-letter topic with
// the reason in its headers.
func (k *Kafka) DeadLetter(ctx context.Context, r *events.Rejection) error {
	msg := kafka.Message{
		Topic:   k.cfg.DeadLetterTopic,
		Key:     []byte(r.ID),
		Value:   r.Payload,
		Headers: deadLetterHeaders(r),
	}
	return k.write(ctx, msg)
}

func (k *Kafka) write(ctx context.Context, msg kafka.Message) error {
	ctx, span := k.tracer.Start(ctx, "send "+msg.Topic,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(msg.Topic),
			semconv.MessagingKafkaMessageKey(string(msg.Key)),
			semconv.MessagingMessageBodySize(len(msg.Value)),
		))
	defer span.End()
	// The message carries the producer span, so a consumer's span is its
	// child, also when the message is replayed from the spool.
	k.prop.Inject(ctx, kafkaevents.Headers{H: &msg.Headers})
	if tp := (kafkaevents.Headers{H: &msg.Headers}).Get("traceparent"); tp != "" {
		k.inflight.Store(tp, span)
		defer k.inflight.Delete(tp)
	}
	start := time.Now()
	observe := func(result string) {
		k.publish.WithLabelValues(msg.Topic, result).Observe(time.Since(start).Seconds())
	}

	if k.spool == nil {
		if err := k.writer.WriteMessages(ctx, msg); err != nil {
			observe("error")
			return k.failed(span, msg.Topic, err)
		}
		observe("kafka")
		return nil
	}
	// With a spool: while it holds records, new ones queue behind them so
	// that replay keeps their order. Otherwise Kafka gets SpoolConfig.After
	// to acknowledge, and the message is spooled if it does not. A write
	// that timed out may still land, so the spooled copy can duplicate it:
	// at-least-once, deduplicated by event_id.
	reason := "spool pending"
	if !k.spool.Pending() {
		wctx, cancel := context.WithTimeout(ctx, k.cfg.Spool.After)
		err := k.writer.WriteMessages(wctx, msg)
		cancel()
		if err == nil {
			observe("kafka")
			return nil
		}
		reason = errorType(err)
	}
	if err := k.spool.Append(ctx, msg); err != nil {
		observe("error")
		return k.failed(span, msg.Topic, err)
	}
	observe("spooled")
	span.AddEvent("spooled", trace.WithAttributes(attribute.String("emma.spool.reason", reason)))
	return nil
}

func (k *Kafka) failed(span trace.Span, topic string, err error) error {
	span.SetStatus(codes.Error, "publish failed")
	span.SetAttributes(attribute.String(string(semconv.ErrorTypeKey), errorType(err)))
	return fmt.Errorf("%w: publish to %s: %w", ErrUnavailable, topic, err)
}

// replay sends sealed spool segments to Kafka, oldest first, and deletes a
// segment once all its records are acknowledged. It backs off while Kafka
// fails and stops with Close.
func (k *Kafka) replay() {
	defer k.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-k.stop
		cancel()
	}()
	pos := map[uint64]int{} // records of a segment already acknowledged
	backoff := 100 * time.Millisecond
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if k.spool.Pending() {
			err := k.replayOnce(ctx, pos)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				k.log.Warn("spool replay paused; Kafka does not take the records yet", "error", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
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
			end := min(i+k.cfg.Spool.ReplayBatch, len(recs))
			batch := make([]kafka.Message, 0, end-i)
			for _, r := range recs[i:end] {
				batch = append(batch, r.msg)
			}
			wctx, cancel := context.WithTimeout(ctx, k.cfg.WriteTimeout)
			err := k.writer.WriteMessages(wctx, batch...)
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

// Close flushes and closes the writer. It is bounded by ctx because kafka-go's
// Close can hang on a write to an unreachable broker. Safe to call twice and
// without Start.
func (k *Kafka) Close(ctx context.Context) error {
	k.closeOnce.Do(func() {
		close(k.stop)
		k.wg.Wait() // the replayer and the topic creator
		done := make(chan error, 1)
		go func() { done <- k.writer.Close() }()
		select {
		case k.closeErr = <-done:
		case <-ctx.Done():
			k.closeErr = fmt.Errorf("kafka writer close: %w", ctx.Err())
		}
		if k.spool != nil {
			// Whatever the writer could not flush was acknowledged to no
			// one or is in the spool already; the spool is closed last.
			k.spool.Close()
		}
	})
	return k.closeErr
}
