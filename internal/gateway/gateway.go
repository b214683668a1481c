package gateway

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/console"
	"github.com/emma-gateway/emma-gateway/internal/dedup"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
	"github.com/emma-gateway/emma-gateway/receiver"
	"github.com/emma-gateway/emma-gateway/schemas"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// Gateway is a running gateway: the parts Start wired together.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	broker *devkafka.Broker // nil with real brokers
	kafka  *sinks.Kafka
	server *receiver.Server
}

// Start builds each part from a resolved configuration (see Load), wires
// them and starts them: the embedded broker when cfg.Embedded, the Kafka
// sink, then the webhook server. On error it undoes what it started.
func Start(ctx context.Context, cfg Config, set telemetry.Settings) (_ *Gateway, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set = set.WithDefaults() // one registry for every part
	g := &Gateway{cfg: cfg, log: set.Logger}
	defer func() {
		if err != nil {
			g.Stop()
		}
	}()
	if cfg.Embedded {
		if g.broker, err = devkafka.Start(cfg.EmbeddedKafkaAddr); err != nil {
			return nil, err
		}
		// The broker may listen on a port the system chose.
		g.cfg.Kafka.Brokers = g.broker.Addrs()
		g.log.Warn("no Kafka brokers configured: started an embedded in-memory Kafka broker (development only; its data is lost on exit)",
			"addr", strings.Join(g.broker.Addrs(), ","))
	}
	if g.kafka, err = sinks.NewKafka(g.cfg.Kafka, set); err != nil {
		return nil, err
	}
	if err = g.kafka.Start(ctx); err != nil {
		return nil, err
	}
	window, err := dedup.New(cfg.Dedup)
	if err != nil {
		return nil, err
	}
	ccfg := cfg.consoleConfig(console.NewRecorder(console.DefaultRecorderConfig()))
	ccfg.State = g.consoleState()
	// The server is built below; the console asks it only on a request.
	ccfg.IsWebhookToken = func(tok string) bool { return g.server.IsWebhookToken(tok) }
	con, err := console.New(ccfg)
	if err != nil {
		return nil, err
	}
	deps := receiver.Deps{
		Decoder: events.NewDecoder(events.DecoderConfig{Location: cfg.Location}),
		Sink:    placingKafka{g.kafka},
		Dedup:   window,
		Ready:   g.ready,
		Now:     cfg.Now,
		// The console answers 404 itself when it is off.
		Mounts: append(mounts(set), receiver.Mount{Path: console.Path, Handler: con}, receiver.Mount{Path: console.Path + "/*", Handler: con}),
	}
	if ccfg.Enabled() {
		// Off, the console costs the callbacks nothing.
		deps.Recorder = ccfg.Recorder
	}
	g.server, err = receiver.New(cfg.Receiver, deps, set)
	if err != nil {
		return nil, err
	}
	if err = g.server.Start(ctx); err != nil {
		return nil, err
	}
	g.log.Info("emma-gateway started", "version", cfg.Version, "kafka_brokers", strings.Join(g.cfg.Kafka.Brokers, ","), "topic_template", cfg.Kafka.TopicTemplate)
	return g, nil
}

// Config is the configuration the gateway runs with: Kafka.Brokers are
// the addresses the sink dials, the embedded broker's real ones included.
func (g *Gateway) Config() Config { return g.cfg }

// URL is the base URL of the webhook server, e.g. http://127.0.0.1:8080.
func (g *Gateway) URL() string {
	scheme := "http"
	if g.cfg.Receiver.TLSCertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + g.server.Addr().String()
}

// Server is the webhook server.
func (g *Gateway) Server() *receiver.Server { return g.server }

// Kafka is the Kafka sink.
func (g *Gateway) Kafka() *sinks.Kafka { return g.kafka }

// Broker is the embedded development broker; nil with real brokers.
func (g *Gateway) Broker() *devkafka.Broker { return g.broker }

// Stop shuts down in order: stop accepting and answer what is in flight,
// drain the Kafka producer, stop the embedded broker. Each step is
// bounded by the shutdown timeout. Safe on a half-started gateway.
func (g *Gateway) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	if g.server != nil {
		if err := g.server.Shutdown(ctx); err != nil {
			g.log.Error("webhook server shutdown", "error", err)
		}
	}
	if g.kafka != nil {
		if err := g.kafka.Shutdown(ctx); err != nil {
			g.log.Error("Kafka sink shutdown", "error", err)
		}
	}
	if g.broker != nil {
		if err := g.broker.Shutdown(ctx); err != nil {
			g.log.Error("embedded broker shutdown", "error", err)
		}
	}
}

// mounts are what the gateway serves beside the webhook: the Prometheus
// metrics of every part, and the published contract (GET /schemas/, the
// index, and /schemas/{name}.json).
func mounts(set telemetry.Settings) []receiver.Mount {
	m := []receiver.Mount{{Path: "/schemas/*", Handler: schemas.Handler()}}
	if g, ok := set.Registerer.(prometheus.Gatherer); ok {
		m = append(m, receiver.Mount{Path: "/metrics", Handler: promhttp.HandlerFor(g, promhttp.HandlerOpts{})})
	}
	return m
}

// ready asks the sink, whose policy it is (with a spool, an unreachable
// Kafka leaves the gateway able to accept events).
func (g *Gateway) ready(ctx context.Context) receiver.Readiness {
	return receiver.Readiness(g.kafka.Health(ctx))
}

// placingKafka is the sink as the receiver sees it: it also says where
// each event and dead letter went, for the console.
type placingKafka struct{ *sinks.Kafka }

func (k placingKafka) PublishPlaced(ctx context.Context, ev *events.Event) (receiver.Placement, error) {
	p, err := k.Kafka.PublishPlaced(ctx, ev)
	return receiver.Placement(p), err
}

func (k placingKafka) DeadLetterPlaced(ctx context.Context, r *events.Rejection) (receiver.Placement, error) {
	p, err := k.Kafka.DeadLetterPlaced(ctx, r)
	return receiver.Placement(p), err
}

var _ receiver.PlacingSink = placingKafka{}

// consoleStateEvery bounds how often the console's state asks the sink's
// health, which asks the brokers: an open console polls every second.
const consoleStateEvery = 2 * time.Second

// consoleState reads the spool's counters at each poll and the sink's
// health at most every consoleStateEvery.
func (g *Gateway) consoleState() console.StateFunc {
	var (
		mu         sync.Mutex
		at         time.Time // of last; zero until the first check ends
		last       sinks.Health
		refreshing bool
	)
	return func(ctx context.Context) console.State {
		mu.Lock()
		// One poll asks the brokers (up to HealthTimeout); the others,
		// meanwhile, show the last answer instead of queueing behind it.
		if !refreshing && time.Since(at) > consoleStateEvery {
			refreshing = true
			mu.Unlock()
			h := g.kafka.Health(ctx)
			mu.Lock()
			last, at, refreshing = h, time.Now(), false
		}
		h, known := last, !at.IsZero()
		mu.Unlock()
		st := console.State{Kafka: console.KafkaState{Known: known, Brokers: g.cfg.Kafka.Brokers, Embedded: g.cfg.Embedded, Ready: h.Checks["kafka"] == "ok"}}
		if !st.Kafka.Ready {
			st.Kafka.Detail = h.Checks["kafka"]
		}
		if sp := g.kafka.Spool(); sp != nil {
			ss := sp.Stats()
			st.Spool = console.SpoolState{Enabled: true, Records: ss.Records, Bytes: ss.Bytes, MaxBytes: g.cfg.Kafka.Spool.MaxBytes, Oldest: ss.Oldest}
		}
		return st
	}
}
