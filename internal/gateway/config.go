package gateway

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/console"
	"github.com/emma-gateway/emma-gateway/internal/dedup"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
	"github.com/emma-gateway/emma-gateway/receiver"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// EnvPrefix prefixes the environment variable of every flag of serve:
// --kafka-brokers is EMMA_GATEWAY_KAFKA_BROKERS.
const EnvPrefix = cli.EnvPrefix

// DefaultTimezone is the zone Emma's zone-less "@D:" timestamps are read
// in when --timezone is not given: Emma's own clock, US Central time
// (SPEC section 2).
const DefaultTimezone = events.EmmaTimezone

// DefaultEmbeddedKafkaAddr is where the embedded development broker
// listens by default, the address any Kafka client tries first.
const DefaultEmbeddedKafkaAddr = "127.0.0.1:9092"

// Config is serve's whole configuration, resolved: after Load, Embedded
// says whether the gateway runs its own broker, Kafka.Brokers holds the
// addresses the sink dials and Location the loaded timezone.
type Config struct {
	Receiver receiver.Config
	Kafka    sinks.Config
	// Dedup is the window of durable event ids behind duplicate answers
	// (SPEC section 3); Window 0 turns it off.
	Dedup dedup.Config

	// EmbeddedKafkaAddr is the listen address of the development broker.
	EmbeddedKafkaAddr string
	// Embedded is set by Load when no brokers are configured: Start then
	// runs an in-memory broker on EmbeddedKafkaAddr (development mode).
	Embedded bool
	// RoutesFile is the YAML routes file, loaded into Kafka.Routes.
	RoutesFile string
	// Timezone names the IANA zone of Emma's timestamps, loaded into
	// Location.
	Timezone string
	Location *time.Location
	// Now is the receive clock; nil is time.Now (tests fix it).
	Now func() time.Time

	LogLevel  string
	LogFormat string
	// ShutdownTimeout bounds each step of the graceful shutdown.
	ShutdownTimeout time.Duration
	// AdminToken opens the operator console (GET /console) outside
	// embedded mode, as the Basic auth password or a Bearer token; empty,
	// the console answers 404 there (SPEC section 7).
	AdminToken string
	// Version is the binary's version, logged at start and set as the
	// tracing resource's service.version.
	Version string

	// deprecated are the retired flags (or their variables) that were
	// given: accepted, so that a deployment written for an older release
	// still starts, ignored, and named in a warning at start.
	deprecated []string
}

// Deprecated returns the retired flags that were given; they are ignored.
func (c Config) Deprecated() []string { return c.deprecated }

// retiredFlag is a flag of an older release that is accepted and ignored.
type retiredFlag struct {
	name  string
	given *[]string
}

func (f retiredFlag) String() string { return "" }

func (f retiredFlag) Set(string) error {
	*f.given = append(*f.given, "--"+f.name)
	return nil
}

// DefaultConfig is serve's configuration when no flag or variable is set,
// before resolution.
func DefaultConfig() Config {
	return Config{
		Receiver:          receiver.DefaultConfig(),
		Kafka:             sinks.DefaultConfig(),
		Dedup:             dedup.DefaultConfig(),
		EmbeddedKafkaAddr: DefaultEmbeddedKafkaAddr,
		Timezone:          DefaultTimezone,
		LogLevel:          "info",
		LogFormat:         "json",
		ShutdownTimeout:   25 * time.Second,
		Version:           "dev",
	}
}

// Flags defines serve's flags on a new flag set, each with its default
// from cfg, writing into cfg. Its usage text goes to output.
func Flags(cfg *Config, output io.Writer) *cli.FlagSet {
	fs := cli.NewFlagSet("serve", EnvPrefix, output)
	r, k := &cfg.Receiver, &cfg.Kafka
	fs.StringVar(&r.Addr, "addr", r.Addr, "listen address of the webhook server")
	fs.Var((*cli.SecretList)(&r.Tokens), "tokens", "comma-separated webhook tokens (several for rotation)")
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
	fs.Var((*cli.List)(&r.AllowedCIDRs), "allowed-cidrs", "comma-separated networks allowed to deliver webhooks (empty: any)")
	fs.Var((*cli.List)(&r.TrustedProxies), "trusted-proxies", "comma-separated networks of reverse proxies whose X-Forwarded-For is believed")
	fs.StringVar(&r.TLSCertFile, "tls-cert-file", r.TLSCertFile, "PEM certificate to serve HTTPS with (reread on change)")
	fs.StringVar(&r.TLSKeyFile, "tls-key-file", r.TLSKeyFile, "PEM key of --tls-cert-file")

	fs.Var((*cli.List)(&k.Brokers), "kafka-brokers", "comma-separated Kafka bootstrap brokers; empty starts an embedded broker")
	fs.StringVar(&cfg.EmbeddedKafkaAddr, "embedded-kafka-addr", cfg.EmbeddedKafkaAddr, "listen address of the embedded broker")
	fs.StringVar(&k.ClientID, "kafka-client-id", k.ClientID, "Kafka client id")
	fs.StringVar(&k.TopicTemplate, "topic-template", k.TopicTemplate, "topic of each event; {event} is the event name")
	fs.StringVar(&cfg.RoutesFile, "routes-file", cfg.RoutesFile, "YAML routes file sending each event to one or more topics (default: the topic template)")
	fs.StringVar(&k.UnrecognizedTopic, "unrecognized-topic", k.UnrecognizedTopic, "topic of events with an unknown name")
	fs.StringVar(&k.DeadLetterTopic, "deadletter-topic", k.DeadLetterTopic, "topic of rejected callbacks")
	fs.BoolVar(&k.CreateTopics, "create-topics", k.CreateTopics, "create missing topics at start")
	fs.IntVar(&k.Partitions, "topic-partitions", k.Partitions, "partitions of created topics")
	fs.IntVar(&k.ReplicationFactor, "topic-replication-factor", k.ReplicationFactor, "replication factor of created topics (-1: broker default)")
	fs.IntVar(&k.MaxRequestBytes, "kafka-max-request-bytes", k.MaxRequestBytes, "largest produce request, in bytes (at most the brokers' message.max.bytes)")
	// Retired with kafka-go's Writer: the producer sends what queued while
	// its previous request was in flight, with no timer and no count.
	for _, name := range []string{"kafka-batch-timeout", "kafka-batch-size"} {
		fs.Var(retiredFlag{name, &cfg.deprecated}, name, "deprecated and ignored: the producer batches by itself, bounded by --kafka-max-request-bytes")
	}
	fs.DurationVar(&k.WriteTimeout, "kafka-write-timeout", k.WriteTimeout, "timeout of one produce request")
	fs.DurationVar(&k.MetadataTTL, "kafka-metadata-ttl", k.MetadataTTL, "how long cluster metadata is trusted")
	fs.StringVar(&k.Spool.Dir, "spool-dir", k.Spool.Dir, "directory of the local write-ahead spool that keeps events Kafka cannot take in time (empty: no spool, such events are answered 503)")
	fs.Int64Var(&k.Spool.MaxBytes, "spool-max-bytes", k.Spool.MaxBytes, "largest spool on disk, in bytes; when full, events are answered 503")
	fs.Int64Var(&k.Spool.SegmentBytes, "spool-segment-bytes", k.Spool.SegmentBytes, "size of one spool segment file, in bytes")
	fs.DurationVar(&k.Spool.After, "spool-after", k.Spool.After, "how long a publish waits for Kafka before the event is spooled instead")
	securityFlags(fs, k)

	fs.Var((*cli.Secret)(&cfg.AdminToken), "admin-token", "opens the operator console (GET /console) as the Basic auth password or a Bearer token; at least 16 characters, not a webhook token (empty: the console answers 404 outside development mode)")
	fs.IntVar(&k.MaxAccountTopics, "max-account-topics", k.MaxAccountTopics, "most {account} topics (of routes that list no accounts) created at run time; copies beyond go to their event's template topic")
	fs.DurationVar(&cfg.Dedup.Window, "dedup-window", cfg.Dedup.Window, "how long a callback made durable is remembered, so that a copy is answered 200 as a duplicate and not published again (0: off)")
	fs.IntVar(&cfg.Dedup.MaxEntries, "dedup-max-entries", cfg.Dedup.MaxEntries, "most event ids the dedup window remembers (oldest forgotten first)")
	fs.StringVar(&cfg.Timezone, "timezone", cfg.Timezone, "IANA zone of Emma's zone-less @D: timestamps (Emma's clock is US Central time)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "json or text")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "longest graceful shutdown")
	return fs
}

// Load resolves serve's configuration from its arguments and environment
// (getenv, e.g. os.Getenv): flags, then the EMMA_GATEWAY_* variables of
// the flags not given, the timezone, the routes file, embedded mode, and
// Validate. Every problem is reported at once, as a usage error
// (cli.ErrUsage).
func Load(args []string, getenv func(string) string) (Config, error) {
	return load(args, getenv, io.Discard)
}

// load is Load with -h's output going to output.
func load(args []string, getenv func(string) string, output io.Writer) (Config, error) {
	cfg := DefaultConfig()
	if err := Flags(&cfg, output).ParseNoArgs(args, getenv); err != nil {
		return cfg, err
	}
	return cfg, cli.Usage(cfg.resolve())
}

// resolve turns what was given into what runs: it loads the timezone and
// the routes file, and chooses embedded (development) mode when no
// brokers are configured: the development broker's address, replication
// factor 1, and callbacks accepted without a token when none is set, so
// that a first run needs nothing but Go.
func (c *Config) resolve() error {
	var errs []error
	if loc, err := time.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("timezone %q: %w", c.Timezone, err))
	} else {
		c.Location = loc
	}
	if c.RoutesFile != "" {
		r, err := sinks.LoadRoutes(c.RoutesFile)
		if err != nil {
			errs = append(errs, err)
		}
		c.Kafka.Routes = r
	}
	if len(c.Kafka.Brokers) == 0 {
		c.Embedded = true
		c.Kafka.Brokers = []string{c.EmbeddedKafkaAddr}
		c.Kafka.ReplicationFactor = 1
		if len(c.Receiver.Tokens) == 0 {
			c.Receiver.AllowUnauthenticated = true
		}
	}
	if len(errs) > 0 {
		// The zone or the routes could not be read: Validate would only
		// repeat that less precisely.
		return errors.Join(append(errs, c.validateParts())...)
	}
	return c.Validate()
}

// Validate reports every problem of a resolved configuration at once: each
// component's own checks and those that span components.
func (c Config) Validate() error {
	errs := []error{c.validateParts()}
	if c.Location == nil {
		errs = append(errs, fmt.Errorf("timezone %q is not loaded", c.Timezone))
	}
	return errors.Join(errs...)
}

func (c Config) validateParts() error {
	errs := []error{c.Receiver.Validate(), c.Kafka.Validate(), c.Dedup.Validate()}
	if c.Kafka.Spool.Dir != "" && c.Kafka.Spool.After >= c.Receiver.PublishTimeout {
		errs = append(errs, fmt.Errorf("the spool deadline (%s) must be shorter than the publish timeout (%s), or events would time out before they are spooled", c.Kafka.Spool.After, c.Receiver.PublishTimeout))
	}
	if _, err := NewLogger(io.Discard, c.LogLevel, c.LogFormat); err != nil {
		errs = append(errs, err)
	}
	// The admin token's checks (length, not a webhook token) are the
	// console's; the recorder is only there to satisfy them.
	errs = append(errs, c.consoleConfig(console.NewRecorder(console.RecorderConfig{Recent: 1, DeadLetters: 1})).Validate())
	return errors.Join(errs...)
}

// consoleConfig is the console's configuration: open in development mode
// (the embedded broker and no webhook tokens: the webhook is open too);
// otherwise behind the admin token, never a webhook token. An embedded
// gateway given tokens guards its console like a production one.
func (c Config) consoleConfig(rec *console.Recorder) console.Config {
	cc := console.DefaultConfig()
	dev := c.Embedded && len(c.Receiver.Tokens) == 0 && c.Receiver.TokensFile == ""
	cc.DevMode, cc.AdminToken, cc.WebhookTokens, cc.Recorder = dev, c.AdminToken, c.Receiver.Tokens, rec
	return cc
}

// NewLogger is the gateway's structured logger: level debug, info, warn
// or error; format json or text.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want json or text", format)
	}
	// A buffered writer (telemetry.LogWriter) gets warnings and errors
	// written out at once, with what was buffered before them.
	if f, ok := w.(interface{ Flush() error }); ok {
		h = telemetry.FlushingHandler{Handler: h, Flusher: f, Level: slog.LevelWarn}
	}
	return slog.New(h), nil
}
