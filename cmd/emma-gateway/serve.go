package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
	"github.com/emma-gateway/emma-gateway/receiver"
	"github.com/emma-gateway/emma-gateway/schemas"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// serveConfig is everything serve reads from flags and the environment.
type serveConfig struct {
	receiver          receiver.Config
	kafka             sinks.Config
	embeddedKafkaAddr string
	timezone          string
	location          *time.Location   // timezone, loaded
	now               func() time.Time // nil: time.Now; tests fix it
	logLevel          string
	logFormat         string
	shutdownTimeout   time.Duration
	routesFile        string
}

func serveFlags(cfg *serveConfig) *flagSet {
	fs := newFlagSet("serve")
	r, k := &cfg.receiver, &cfg.kafka
	fs.StringVar(&r.Addr, "addr", r.Addr, "listen address of the webhook server")
	fs.Var((*secretList)(&r.Tokens), "tokens", "comma-separated webhook tokens (several for rotation)")
	fs.BoolVar(&r.AllowUnauthenticated, "allow-unauthenticated", r.AllowUnauthenticated, "accept callbacks without a token when no tokens are configured")
	fs.Int64Var(&r.BodyLimit, "body-limit", r.BodyLimit, "largest POST body accepted, in bytes")
	fs.DurationVar(&r.PublishTimeout, "publish-timeout", r.PublishTimeout, "how long a callback waits for Kafka before it is answered 503")
	fs.DurationVar(&r.RetryAfter, "retry-after", r.RetryAfter, "Retry-After of 429 and 503 answers")
	fs.IntVar(&r.MaxInFlight, "max-in-flight", r.MaxInFlight, "most webhook requests served at once (0: no cap)")
	fs.Float64Var(&r.RatePerIP, "rate-per-ip", r.RatePerIP, "webhook requests per second allowed per client IP (0: no limit)")
	fs.IntVar(&r.RateBurst, "rate-burst", r.RateBurst, "burst of the per-IP rate limit")
	fs.DurationVar(&r.ReadHeaderTimeout, "read-header-timeout", r.ReadHeaderTimeout, "HTTP read header timeout")
	fs.DurationVar(&r.ReadTimeout, "read-timeout", r.ReadTimeout, "HTTP read timeout")
	fs.DurationVar(&r.WriteTimeout, "write-timeout", r.WriteTimeout, "HTTP write timeout")
	fs.DurationVar(&r.IdleTimeout, "idle-timeout", r.IdleTimeout, "HTTP keep-alive idle timeout")
	fs.IntVar(&r.MaxHeaderBytes, "max-header-bytes", r.MaxHeaderBytes, "largest request line and headers (bounds GET payloads), in bytes")
	fs.IntVar(&r.MaxQueryBytes, "max-query-bytes", r.MaxQueryBytes, "longest query string (and so GET payload) of a webhook, in bytes; longer is answered 414")
	fs.StringVar(&r.TokensFile, "tokens-file", r.TokensFile, "file of webhook tokens, one a line (# comments), reread on change and on SIGHUP")
	fs.DurationVar(&r.TokensReloadInterval, "tokens-reload-interval", r.TokensReloadInterval, "how often the tokens file is checked for changes")
	fs.Var((*listValue)(&r.AllowedCIDRs), "allowed-cidrs", "comma-separated networks allowed to deliver webhooks (empty: any)")
	fs.Var((*listValue)(&r.TrustedProxies), "trusted-proxies", "comma-separated networks of reverse proxies whose X-Forwarded-For is believed")
	fs.StringVar(&r.TLSCertFile, "tls-cert-file", r.TLSCertFile, "PEM certificate to serve HTTPS with (reread on change)")
	fs.StringVar(&r.TLSKeyFile, "tls-key-file", r.TLSKeyFile, "PEM key of --tls-cert-file")

	fs.Var((*listValue)(&k.Brokers), "kafka-brokers", "comma-separated Kafka bootstrap brokers; empty starts an embedded broker")
	fs.StringVar(&cfg.embeddedKafkaAddr, "embedded-kafka-addr", cfg.embeddedKafkaAddr, "listen address of the embedded broker")
	fs.StringVar(&k.ClientID, "kafka-client-id", k.ClientID, "Kafka client id")
	fs.StringVar(&k.TopicTemplate, "topic-template", k.TopicTemplate, "topic of each event; {event} is the event name")
	fs.StringVar(&cfg.routesFile, "routes-file", cfg.routesFile, "YAML routes file sending each event to one or more topics (default: the topic template)")
	fs.StringVar(&k.UnrecognizedTopic, "unrecognized-topic", k.UnrecognizedTopic, "topic of events with an unknown name")
	fs.StringVar(&k.DeadLetterTopic, "deadletter-topic", k.DeadLetterTopic, "topic of rejected callbacks")
	fs.BoolVar(&k.CreateTopics, "create-topics", k.CreateTopics, "create missing topics at start")
	fs.IntVar(&k.Partitions, "topic-partitions", k.Partitions, "partitions of created topics")
	fs.IntVar(&k.ReplicationFactor, "topic-replication-factor", k.ReplicationFactor, "replication factor of created topics (-1: broker default)")
	fs.DurationVar(&k.BatchTimeout, "kafka-batch-timeout", k.BatchTimeout, "longest wait for a produce batch to fill")
	fs.IntVar(&k.BatchSize, "kafka-batch-size", k.BatchSize, "most messages in a produce batch")
	fs.DurationVar(&k.WriteTimeout, "kafka-write-timeout", k.WriteTimeout, "timeout of one produce request")
	fs.DurationVar(&k.MetadataTTL, "kafka-metadata-ttl", k.MetadataTTL, "how long cluster metadata is trusted")
	fs.StringVar(&k.Spool.Dir, "spool-dir", k.Spool.Dir, "directory of the local write-ahead spool that keeps events Kafka cannot take in time (empty: no spool, such events are answered 503)")
	fs.Int64Var(&k.Spool.MaxBytes, "spool-max-bytes", k.Spool.MaxBytes, "largest spool on disk, in bytes; when full, events are answered 503")
	fs.Int64Var(&k.Spool.SegmentBytes, "spool-segment-bytes", k.Spool.SegmentBytes, "size of one spool segment file, in bytes")
	fs.DurationVar(&k.Spool.After, "spool-after", k.Spool.After, "how long a publish waits for Kafka before the event is spooled instead")
	fs.BoolVar(&k.TLS.Enabled, "kafka-tls", k.TLS.Enabled, "connect to Kafka with TLS")
	fs.StringVar(&k.TLS.CAFile, "kafka-tls-ca-file", "", "PEM CA bundle for the brokers' certificates")
	fs.StringVar(&k.TLS.CertFile, "kafka-tls-cert-file", "", "client certificate (PEM) for mutual TLS")
	fs.StringVar(&k.TLS.KeyFile, "kafka-tls-key-file", "", "client key (PEM) for mutual TLS")
	fs.StringVar(&k.TLS.ServerName, "kafka-tls-server-name", "", "name expected in the brokers' certificates")
	fs.BoolVar(&k.TLS.InsecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "do not verify the brokers' certificates (never in production)")
	fs.StringVar(&k.SASL.Mechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&k.SASL.Username, "kafka-sasl-username", "", "SASL user name")
	fs.Var((*secretValue)(&k.SASL.Password), "kafka-sasl-password", "SASL password (prefer the environment variable)")

	fs.StringVar(&cfg.timezone, "timezone", cfg.timezone, "IANA zone of Emma's zone-less timestamps")
	fs.StringVar(&cfg.logLevel, "log-level", cfg.logLevel, "debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", cfg.logFormat, "json or text")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", cfg.shutdownTimeout, "longest graceful shutdown")
	return fs
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		receiver:          receiver.DefaultConfig(),
		kafka:             sinks.DefaultConfig(),
		embeddedKafkaAddr: "127.0.0.1:9092",
		timezone:          "UTC",
		logLevel:          "info",
		logFormat:         "json",
		shutdownTimeout:   25 * time.Second,
	}
}

func serve(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := defaultServeConfig()
	fs := serveFlags(&cfg)
	fs.SetOutput(stderr)
	if err := fs.parseFlagsOnly(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if cfg.location, err = time.LoadLocation(cfg.timezone); err != nil {
		return fmt.Errorf("%w: timezone %q: %w", errUsage, cfg.timezone, err)
	}
	embedded := len(cfg.kafka.Brokers) == 0
	if embedded && len(cfg.receiver.Tokens) == 0 {
		// Development mode: a first run needs nothing but Go.
		cfg.receiver.AllowUnauthenticated = true
	}
	if embedded {
		cfg.kafka.Brokers = []string{cfg.embeddedKafkaAddr}
		cfg.kafka.ReplicationFactor = 1
	}
	var routesErr error
	if cfg.routesFile != "" {
		cfg.kafka.Routes, routesErr = sinks.LoadRoutes(cfg.routesFile)
	}
	var cross error
	if cfg.kafka.Spool.Dir != "" && cfg.kafka.Spool.After >= cfg.receiver.PublishTimeout {
		cross = fmt.Errorf("the spool deadline (%s) must be shorter than the publish timeout (%s), or events would time out before they are spooled", cfg.kafka.Spool.After, cfg.receiver.PublishTimeout)
	}
	if err := errors.Join(cfg.receiver.Validate(), cfg.kafka.Validate(), cross, routesErr); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if len(cfg.receiver.Tokens) == 0 && cfg.receiver.TokensFile == "" {
		log.Warn("!!! NO WEBHOOK TOKENS: anyone who can reach this gateway can publish events; set EMMA_GATEWAY_TOKENS !!!")
	}
	// Spans are always made, so that every Kafka message carries a
	// traceparent; exporting them is configured by OTEL_* variables.
	tp, err := tracerProvider(ctx, version)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	defer func() {
		// Flush the spans of the last requests, boundedly.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flushing spans", "error", err)
		}
	}()
	set := telemetry.Settings{Logger: log, TracerProvider: tp, Registerer: telemetry.NewRegistry()}
	return runGateway(ctx, cfg, embedded, set)
}

// gateway is a running gateway: the parts cmd wires together.
type gateway struct {
	cfg    serveConfig
	log    *slog.Logger
	broker *devkafka.Broker // nil with real brokers
	kafka  *sinks.Kafka
	server *receiver.Server
}

// startGateway builds each part, wires them and starts them. On error it
// undoes what it started.
func startGateway(ctx context.Context, cfg serveConfig, embedded bool, set telemetry.Settings) (_ *gateway, err error) {
	set = set.WithDefaults() // one registry for every part
	g := &gateway{cfg: cfg, log: set.Logger}
	defer func() {
		if err != nil {
			g.stop()
		}
	}()
	if embedded {
		if g.broker, err = devkafka.Start(cfg.embeddedKafkaAddr); err != nil {
			return nil, err
		}
		cfg.kafka.Brokers = g.broker.Addrs()
		g.log.Warn("no Kafka brokers configured: started an embedded in-memory Kafka broker (development only; its data is lost on exit)",
			"addr", strings.Join(g.broker.Addrs(), ","))
	}
	if g.kafka, err = sinks.NewKafka(cfg.kafka, set); err != nil {
		return nil, err
	}
	if err = g.kafka.Start(ctx); err != nil {
		return nil, err
	}
	g.server, err = receiver.New(cfg.receiver, receiver.Deps{
		Decoder: events.NewDecoder(events.DecoderConfig{Location: cfg.location}),
		Sink:    g.kafka,
		Ready:   g.ready,
		Now:     cfg.now,
		Mounts:  mounts(set),
	}, set)
	if err != nil {
		return nil, err
	}
	if err = g.server.Start(ctx); err != nil {
		return nil, err
	}
	g.log.Info("emma-gateway started", "version", version, "kafka_brokers", strings.Join(cfg.kafka.Brokers, ","), "topic_template", cfg.kafka.TopicTemplate)
	return g, nil
}

// stop shuts down in order: stop accepting and answer what is in flight,
// flush and close the Kafka writer, stop the embedded broker. Each step is
// bounded by the shutdown timeout. Safe on a half-started gateway.
func (g *gateway) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.shutdownTimeout)
	defer cancel()
	if g.server != nil {
		if err := g.server.Shutdown(ctx); err != nil {
			g.log.Error("webhook server shutdown", "error", err)
		}
	}
	if g.kafka != nil {
		if err := g.kafka.Shutdown(ctx); err != nil {
			g.log.Error("closing the Kafka writer", "error", err)
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
func (g *gateway) ready(ctx context.Context) receiver.Readiness {
	return receiver.Readiness(g.kafka.Health(ctx))
}

// runGateway serves until ctx is done, then shuts down gracefully.
func runGateway(ctx context.Context, cfg serveConfig, embedded bool, set telemetry.Settings) error {
	g, err := startGateway(ctx, cfg, embedded, set)
	if err != nil {
		return err
	}
	defer reloadTokensOnHangup(g.server)()
	<-ctx.Done()
	g.log.Info("shutting down: no new connections; answering requests in flight")
	g.stop()
	g.log.Info("stopped")
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}
