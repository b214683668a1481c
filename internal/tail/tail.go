// Package tail is "emma-gateway tail": it prints the messages arriving on
// the gateway's topics, decoded into typed events (kafkaevents.Decode),
// filtered by event, account or member.
package tail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/internal/retry"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// topicWait is how long tail waits for its topics to exist: it is often
// started before the gateway.
const topicWait = 30 * time.Second

// Run prints the messages arriving on the gateway's topics: one JSON object
// a line (topic, partition, offset, key, event, headers and the value), or
// with --format table one aligned row a message. Messages are decoded into
// typed events (kafkaevents.Decode), which the --events, --accounts and
// --members filters read. It runs until ctx is done; it fails when it can
// read nothing (no broker, no topic) or a partition cannot be read.
func Run(ctx context.Context, args []string, env cli.IO) error {
	return run(ctx, args, env, topicWait)
}

func run(ctx context.Context, args []string, env cli.IO, topicWait time.Duration) error {
	stdout, stderr := env.Stdout, env.Stderr
	kcfg := sinks.DefaultConfig()
	var brokers, topics, names, accounts, members cli.List
	format := "json"
	embeddedAddr := gateway.DefaultEmbeddedKafkaAddr
	fromBeginning := false
	fs := cli.NewFlagSet("tail", cli.EnvPrefix, stderr)
	gateway.ClientFlags(fs, &kcfg, &brokers, &embeddedAddr)
	fs.Var(&topics, "topics", "comma-separated topics to read instead of all of the gateway's")
	fs.Var(&names, "events", "comma-separated event names to print (default: all)")
	fs.Var(&accounts, "accounts", "comma-separated account ids to print (default: all)")
	fs.Var(&members, "members", "comma-separated member ids to print: events about one of them (default: all)")
	fs.StringVar(&format, "format", format, "json (one object a line) or table")
	fs.BoolVar(&fromBeginning, "from-beginning", false, "print what the topics already hold, not only what arrives")
	// tail reads EMMA_GATEWAY_* like serve, so one environment serves both;
	// only its own flags are TAIL_-specific.
	for _, n := range []string{"topics", "events", "from-beginning", "accounts", "members", "format"} {
		fs.SetEnv(n, cli.EnvPrefix+"TAIL_"+strings.ToUpper(strings.ReplaceAll(n, "-", "_")))
	}
	if err := fs.ParseNoArgs(args, env.Getenv); err != nil {
		return err
	}
	filter, err := newFilter(names, accounts, members)
	if err != nil {
		return cli.Usage(err)
	}
	var print func(Line)
	switch format {
	case "json":
		enc := json.NewEncoder(stdout)
		print = func(l Line) { _ = enc.Encode(l) }
	case "table":
		fmt.Fprintf(stdout, tableFormat, "RECEIVED", "EVENT", "ACCOUNT", "MEMBER", "KEY", "TOPIC/PARTITION@OFFSET", "EVENT ID / DETAIL")
		print = func(l Line) { fmt.Fprint(stdout, l.row()) }
	default:
		return cli.Usagef("--format %q: want json or table", format)
	}
	if len(brokers) == 0 {
		brokers = cli.List{embeddedAddr}
	}
	if len(topics) == 0 {
		topics = kcfg.Topics()
	}
	start := kafka.LastOffset
	if fromBeginning {
		start = kafka.FirstOffset
	}

	transport, dialer, err := kcfg.Connection()
	if err != nil {
		return cli.Usage(err)
	}
	partitions, err := topicPartitions(ctx, brokers, topics, transport, topicWait)
	if err != nil {
		return err
	}
	if len(partitions) == 0 {
		return fmt.Errorf("nothing to read: the topics %s have no partitions", strings.Join(topics, ","))
	}
	fmt.Fprintf(stderr, "tail: reading %d partitions of %d topics from %s; Ctrl-C to stop\n", len(partitions), len(topics), strings.Join(brokers, ","))

	// A partition that cannot be read stops tail with its error: printing
	// part of the stream and exiting 0 would pass for "no events".
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, tp := range partitions {
		g.Go(func() error {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: tp.Topic, Partition: tp.ID, MaxWait: 200 * time.Millisecond, Dialer: dialer})
			defer r.Close()
			if err := r.SetOffset(start); err != nil {
				return fmt.Errorf("%s/%d: %w", tp.Topic, tp.ID, err)
			}
			for {
				m, err := r.ReadMessage(gctx)
				if err != nil {
					if gctx.Err() != nil {
						return nil // stopped: by ctx, or by another reader's error
					}
					return fmt.Errorf("cannot read %s/%d from %s: %w", tp.Topic, tp.ID, strings.Join(brokers, ","), err)
				}
				line := printable(m)
				if !filter.match(line) {
					continue
				}
				mu.Lock()
				print(line)
				mu.Unlock()
			}
		})
	}
	return g.Wait()
}

// Line is what tail prints for one message, as JSON.
type Line struct {
	Topic     string            `json:"topic"`
	Partition int               `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key,omitempty"`
	Event     string            `json:"event,omitempty"`
	Headers   map[string]string `json:"headers"`
	Value     json.RawMessage   `json:"value"`

	// ev is the typed event; nil for a dead letter or a message that is not
	// a normalized event, whose reason is in err.
	ev  *events.Event
	err error
}

func printable(m kafka.Message) Line {
	l := Line{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Headers: map[string]string{}}
	for _, h := range m.Headers {
		l.Headers[h.Key] = string(h.Value)
	}
	l.ev, l.err = kafkaevents.Decode(m)
	switch {
	case l.ev != nil:
		l.Event = l.ev.Name
	default:
		l.Event = l.Headers[kafkaevents.HeaderDeadEventName]
	}
	if json.Valid(m.Value) {
		l.Value = m.Value
	} else {
		l.Value, _ = json.Marshal(string(m.Value)) // dead letters may hold anything
	}
	return l
}

// topicPartitions lists the partitions of topics, waiting (boundedly) for
// the topics to exist: tail is often started before the gateway.
func topicPartitions(ctx context.Context, brokers, topics []string, transport *kafka.Transport, wait time.Duration) ([]kafka.Partition, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second, Transport: transport}
	deadline := time.Now().Add(wait)
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		var parts []kafka.Partition
		missing := 0
		if err == nil {
			for _, t := range md.Topics {
				if t.Error != nil {
					missing++
					continue
				}
				parts = append(parts, t.Partitions...)
			}
		}
		if err == nil && missing == 0 {
			return parts, nil
		}
		// Waiting cures a broker or topic still coming up, not credentials.
		if time.Now().After(deadline) || errors.Is(err, kafka.SASLAuthenticationFailed) {
			switch {
			case err == nil:
				err = fmt.Errorf("%d of the topics do not exist; is the gateway running?", missing)
			case errors.Is(err, kafka.SASLAuthenticationFailed):
				err = fmt.Errorf("the brokers at %s refuse the credentials: %w", strings.Join(brokers, ","), err)
			default:
				err = fmt.Errorf("no broker answers at %s: %w", strings.Join(brokers, ","), err)
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retry.Jitter(time.Second)):
		}
	}
}

// filter keeps the messages tail prints. Dead letters carry no typed
// event: they pass the event filter by their emma_event_name header, and
// never pass an account or member filter.
type filter struct {
	events            []string
	accounts, members []events.ID
}

func newFilter(names, accounts, members []string) (filter, error) {
	f := filter{events: names}
	var errs []error
	parse := func(flag string, in []string) []events.ID {
		var ids []events.ID
		for _, s := range in {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("--%s: %q is not an id", flag, s))
				continue
			}
			ids = append(ids, events.ID(n))
		}
		return ids
	}
	f.accounts = parse("accounts", accounts)
	f.members = parse("members", members)
	return f, errors.Join(errs...)
}

func (f filter) match(l Line) bool {
	if len(f.events) > 0 && !slices.Contains(f.events, l.Event) {
		return false
	}
	if len(f.accounts) > 0 && (l.ev == nil || !slices.Contains(f.accounts, l.ev.AccountID())) {
		return false
	}
	if len(f.members) > 0 {
		id, ok := memberOf(l.ev)
		if !ok || !slices.Contains(f.members, id) {
			return false
		}
	}
	return true
}

// memberOf returns the member an event is about, when its type has a
// member_id and Emma set it.
func memberOf(ev *events.Event) (events.ID, bool) {
	if ev == nil {
		return 0, false
	}
	return ev.IDField("member_id")
}

// tableFormat lays out one row of --format table.
const tableFormat = "%-24s %-26s %-10s %-12s %-12s %-32s %s\n"

func (l Line) row() string {
	where := l.Topic + "/" + strconv.Itoa(l.Partition) + "@" + strconv.FormatInt(l.Offset, 10)
	if l.ev == nil {
		detail := l.Headers[kafkaevents.HeaderDeadReason] + ": " + l.Headers[kafkaevents.HeaderDeadDetail]
		if l.Headers[kafkaevents.HeaderDeadReason] == "" && l.err != nil {
			detail = l.err.Error()
		}
		return fmt.Sprintf(tableFormat, l.Headers[kafkaevents.HeaderDeadReceivedAt], orDash(l.Event), "-", "-", orDash(l.Key), where, detail)
	}
	member := "-"
	if id, ok := memberOf(l.ev); ok {
		member = id.String()
	}
	return fmt.Sprintf(tableFormat, l.ev.ReceivedAt.Format(time.RFC3339), l.ev.Name, l.ev.AccountID().String(), member, orDash(l.Key), where, l.ev.ID)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
