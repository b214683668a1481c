package sinks

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

// Config configures the Kafka sink. Start from [DefaultConfig].
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string
	// ClientID names the gateway to the brokers. Default "emma-gateway".
	ClientID string
	// TopicTemplate names the topic of a recognized event; {event} is
	// replaced by the event name. Default "emma.{event}".
	TopicTemplate string
	// UnrecognizedTopic receives events whose name the gateway does not
	// know. Default "emma.unrecognized".
	UnrecognizedTopic string
	// DeadLetterTopic receives rejected callbacks, raw. Default
	// "emma.deadletter".
	DeadLetterTopic string
	// CreateTopics creates missing topics at start. Default true.
	CreateTopics bool
	// Partitions of each created topic. Default 3.
	Partitions int
	// ReplicationFactor of each created topic; -1 lets the brokers choose
	// their default.replication.factor. Default -1.
	ReplicationFactor int
	// MaxRequestBytes bounds the records of one produce request (and of
	// one coalesced round and one replay batch), so that a backlog goes in
	// several requests the brokers accept. There is no batch timer and no
	// batch count: a publish that finds no request in flight to its
	// partition's leader is sent at once, and what queues while one is in
	// flight goes in the next request, all partitions of that broker in
	// one. A message larger than this fails with MESSAGE_TOO_LARGE. At most
	// the brokers' message.max.bytes. Default 1 MiB (Kafka's
	// max.request.size).
	MaxRequestBytes int
	// WriteTimeout bounds one produce request. Default 10 s.
	WriteTimeout time.Duration
	// MaxAttempts is how many times a failing produce is tried. Default 3.
	MaxAttempts int
	// MetadataTTL bounds how long a stale partition leader is used after a
	// leader moves (kafka-go waits for it on NotLeaderForPartition). Default 5 s.
	MetadataTTL time.Duration
	// DialTimeout bounds a connection attempt to a broker. Default 5 s.
	DialTimeout time.Duration
	// WriteBackoff is the pause before a produce retry, doubled from Min
	// up to Max, with jitter. Default 10 ms to 500 ms.
	WriteBackoff Backoff
	// StartTimeout bounds how long Start waits for the brokers to create
	// the topics before it returns and keeps trying in the background (so
	// that a gateway starts while Kafka is still coming up). Default 5 s.
	StartTimeout time.Duration
	// CreateTopicsTimeout bounds one background attempt to create the
	// topics. Default 10 s.
	CreateTopicsTimeout time.Duration
	// CreateTopicsBackoff is the pause between those attempts, doubled
	// from Min up to Max, with jitter. Default 1 s to 30 s.
	CreateTopicsBackoff Backoff
	// StaleRetries bounds how many times a write refreshes the metadata
	// and writes again the messages a leadership error (or a dead leader)
	// refused, which kafka-go alone retries at the stale leader until
	// MetadataTTL. With StaleRetryBackoff's defaults, 12 tries span about
	// 8.5 s, longer than the publish timeout (5 s), so that a write keeps
	// trying while its callers wait: Apache Kafka takes several seconds to
	// fence a dead leader and elect another (6 tries, 2.5 s, answered
	// about 11% of a leader-kill test's callbacks 503 at about 4 s, each
	// bound by its own context, the caller's deadline). Default 12; 0 turns
	// it off.
	StaleRetries int
	// StaleRetryBackoff is the pause before each of those tries, doubled
	// from Min up to Max, with jitter. Default 50 ms to 1 s.
	StaleRetryBackoff Backoff
	// HealthTimeout bounds the metadata request of [Kafka.Health] and
	// [Kafka.Ready]. Default 2 s.
	HealthTimeout time.Duration
	// TLS configures TLS to the brokers.
	TLS TLSConfig
	// SASL configures SASL authentication to the brokers.
	SASL SASLConfig
	// Routes, when set, send each recognized event to the topics of its
	// routes instead of TopicTemplate's (see [Routes]).
	Routes *Routes
	// MaxAccountTopics bounds the topics named with {account}, by rules
	// that list no accounts, that this process writes and creates at run
	// time (SPEC section 4): the account id comes from the callback, so
	// without a bound a sender holding a token not bound to accounts could
	// make the gateway create a topic per made-up id. Topics are admitted
	// first come first served; a copy for a topic beyond the bound goes to
	// its event's TopicTemplate topic instead (created at start), with the
	// kafkaevents.HeaderIntendedTopic header naming the topic it was meant
	// for, and is counted. Rules that list their accounts are not bounded
	// (their topics are created at start). Topics such a rule could have
	// named that already exist when the sink starts count against the
	// bound (and are always written), so restarts do not add another
	// MaxAccountTopics each (that count needs CreateTopics). Applies also
	// without CreateTopics, where a broker with automatic topic creation
	// would make the topics. 0 admits none but those. Default 200.
	MaxAccountTopics int
	// Spool configures the local write-ahead spool that keeps events Kafka
	// cannot take in time. Off unless Spool.Dir is set.
	Spool SpoolConfig
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	// Enabled turns TLS on (implied by any other field).
	Enabled bool
	// CAFile is a PEM bundle of CAs to trust instead of the system's.
	CAFile string
	// CertFile and KeyFile are a client certificate for mutual TLS.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string
	// InsecureSkipVerify disables certificate checks. Never in production.
	InsecureSkipVerify bool
}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	Mechanism string
	// Username and Password are the credentials. Password is a secret: it
	// never appears in logs or errors.
	Username, Password string
}

// DefaultConfig returns the defaults documented on [Config]'s fields.
func DefaultConfig() Config {
	return Config{
		ClientID:            "emma-gateway",
		TopicTemplate:       kafkaevents.DefaultTopicTemplate,
		UnrecognizedTopic:   kafkaevents.DefaultUnrecognizedTopic,
		DeadLetterTopic:     kafkaevents.DefaultDeadLetterTopic,
		CreateTopics:        true,
		Partitions:          3,
		ReplicationFactor:   -1,
		MaxRequestBytes:     1 << 20,
		WriteTimeout:        10 * time.Second,
		MaxAttempts:         3,
		MetadataTTL:         5 * time.Second,
		DialTimeout:         5 * time.Second,
		WriteBackoff:        Backoff{Min: 10 * time.Millisecond, Max: 500 * time.Millisecond},
		StartTimeout:        5 * time.Second,
		CreateTopicsTimeout: 10 * time.Second,
		CreateTopicsBackoff: Backoff{Min: time.Second, Max: 30 * time.Second},
		HealthTimeout:       2 * time.Second,
		StaleRetries:        12,
		StaleRetryBackoff:   Backoff{Min: 50 * time.Millisecond, Max: time.Second},
		MaxAccountTopics:    200,
		Spool:               DefaultSpoolConfig(),
	}
}

// Backoff is a retry loop's pause: Min after the first failure, doubled
// after each further one up to Max.
type Backoff struct {
	Min, Max time.Duration
}

// validate reports a backoff that is not 0 < Min <= Max.
func (b Backoff) validate(name string) error {
	if b.Min <= 0 || b.Max < b.Min {
		return fmt.Errorf("%s backoff must have 0 < min <= max, not %s..%s", name, b.Min, b.Max)
	}
	return nil
}

// next returns the pause after d: doubled, at most Max.
func (b Backoff) next(d time.Duration) time.Duration {
	return min(max(2*d, b.Min), b.Max)
}

// jitter spreads a pause over [d/2, d], so that gateways that failed
// together do not retry in step.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Kafka's legal topic names.
var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka: no brokers"))
	}
	for _, b := range c.Brokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			errs = append(errs, fmt.Errorf("kafka: broker %q is not host:port", b))
		}
	}
	if !topicRE.MatchString(kafkaevents.Topic(c.TopicTemplate, "x")) {
		errs = append(errs, fmt.Errorf("kafka: topic template %q does not make legal topic names", c.TopicTemplate))
	}
	for name, t := range map[string]string{"unrecognized topic": c.UnrecognizedTopic, "dead-letter topic": c.DeadLetterTopic} {
		if !topicRE.MatchString(t) {
			errs = append(errs, fmt.Errorf("kafka: %s %q is not a legal topic name", name, t))
		}
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("kafka: partitions must be at least 1, not %d", c.Partitions))
	}
	if c.ReplicationFactor == 0 || c.ReplicationFactor < -1 {
		errs = append(errs, fmt.Errorf("kafka: replication factor must be -1 (broker default) or at least 1, not %d", c.ReplicationFactor))
	}
	if c.MaxRequestBytes < 1024 {
		errs = append(errs, fmt.Errorf("kafka: max request bytes must be at least 1024, not %d", c.MaxRequestBytes))
	}
	for name, d := range map[string]time.Duration{"write timeout": c.WriteTimeout, "metadata TTL": c.MetadataTTL, "dial timeout": c.DialTimeout,
		"start timeout": c.StartTimeout, "create-topics timeout": c.CreateTopicsTimeout, "health timeout": c.HealthTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("kafka: %s must be positive, not %s", name, d))
		}
	}
	if c.StaleRetries < 0 {
		errs = append(errs, fmt.Errorf("kafka: stale-metadata retries must not be negative, not %d", c.StaleRetries))
	}
	for name, b := range map[string]Backoff{"kafka: write": c.WriteBackoff, "kafka: create-topics": c.CreateTopicsBackoff, "kafka: stale-metadata retry": c.StaleRetryBackoff} {
		if err := b.validate(name); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxAccountTopics < 0 {
		errs = append(errs, fmt.Errorf("kafka: max account topics must not be negative, not %d", c.MaxAccountTopics))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("kafka: max attempts must be at least 1, not %d", c.MaxAttempts))
	}
	if _, err := c.SASL.mechanism(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Spool.Validate(); err != nil {
		errs = append(errs, err)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("kafka: TLS cert file and key file go together"))
	}
	return errors.Join(errs...)
}

// Topics returns every topic a gateway with this configuration writes that
// can be known in advance: one per known event type (fewer if the template
// has no {event}) or those of the routes, the unrecognized topic and the
// dead-letter topic. Route topics with {account} of rules that list no
// accounts are created on first use.
func (c Config) Topics() []string {
	var ts []string
	for _, t := range events.Types() {
		if c.Routes == nil {
			ts = append(ts, c.topic(t.Name))
			continue
		}
		// The routes of an account no rule names (account-bound rules add
		// their own static topics below). A per-account topic is created on
		// first use; the template topic is its fallback beyond
		// MaxAccountTopics, so it exists from the start.
		dests, _ := c.Routes.Route(t.Name, 0, c.topic(t.Name))
		for _, d := range dests {
			if d.PerAccount {
				ts = append(ts, c.topic(t.Name))
			} else {
				ts = append(ts, d.Topic)
			}
		}
	}
	if c.Routes != nil {
		ts = append(ts, c.Routes.StaticTopics()...)
	}
	ts = append(ts, c.UnrecognizedTopic, c.DeadLetterTopic)
	slices.Sort(ts)
	return slices.Compact(ts)
}

// topic returns the topic of a recognized event.
func (c Config) topic(event string) string {
	return kafkaevents.Topic(c.TopicTemplate, event)
}

func (s SASLConfig) mechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case "SCRAM-SHA-256":
		return scramMechanism(scram.SHA256, s.Username, s.Password)
	case "SCRAM-SHA-512":
		return scramMechanism(scram.SHA512, s.Username, s.Password)
	}
	return nil, fmt.Errorf("kafka: SASL mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
}

func scramMechanism(algo scram.Algorithm, user, pass string) (sasl.Mechanism, error) {
	m, err := scram.Mechanism(algo, user, pass)
	if err != nil {
		// The error could quote the credentials; say only what failed.
		return nil, errors.New("kafka: SCRAM credentials are not valid (SASLprep failed)")
	}
	return m, nil
}

func (t TLSConfig) config() (*tls.Config, error) {
	if !t.Enabled && t.CAFile == "" && t.CertFile == "" && t.ServerName == "" && !t.InsecureSkipVerify {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // operator's explicit choice, documented as never for production
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: TLS CA file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
