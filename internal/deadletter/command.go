package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
	"github.com/emma-gateway/emma-gateway/sinks"
)

const usage = `usage: emma-gateway deadletter list [--event NAME] [--reason malformed|invalid] [--since TIME|DURATION] [--json]
       emma-gateway deadletter replay [--dry-run] [--from-beginning] [--json]`

// WouldPass is replay --dry-run's finding that some letters would now
// pass: exit code 3 (SPEC section 6), the letters already printed.
type WouldPass struct{ N int }

func (w WouldPass) Error() string { return fmt.Sprintf("%d letters would now pass", w.N) }

// ExitCode is 3.
func (WouldPass) ExitCode() int { return 3 }

// Run is "emma-gateway deadletter list|replay" with the arguments after
// "deadletter"; version is the binary's, for the tracing resource.
func Run(ctx context.Context, args []string, env cli.IO, version string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return cli.Usagef("%s", usage)
	}
	sub, args := args[0], args[1:]
	kcfg := sinks.DefaultConfig()
	var brokers cli.List
	embeddedAddr := gateway.DefaultEmbeddedKafkaAddr
	var jsonLines, dryRun, fromBeginning bool
	var event, reason, since, routesFile string
	group, timezone := DefaultGroup, gateway.DefaultTimezone
	fs := cli.NewFlagSet("deadletter "+sub, cli.EnvPrefix, env.Stderr)
	gateway.ClientFlags(fs, &kcfg, &brokers, &embeddedAddr)
	fs.BoolVar(&jsonLines, "json", false, "print JSON lines instead of a table")
	own := []string{"json"}
	if sub == "list" {
		fs.StringVar(&event, "event", "", "only letters of this event_name")
		fs.StringVar(&reason, "reason", "", "only letters rejected for this reason: malformed or invalid")
		fs.StringVar(&since, "since", "", "only letters received since this RFC 3339 time, or this long ago (e.g. 2h)")
		own = append(own, "event", "reason", "since")
	} else {
		fs.BoolVar(&dryRun, "dry-run", false, "publish and commit nothing; exit 3 when some letters would now pass")
		fs.BoolVar(&fromBeginning, "from-beginning", false, "reconsider every letter, also those a previous replay handled")
		fs.StringVar(&group, "group", group, "consumer group whose committed offsets remember the letters handled")
		// serve's flags and variables: replay publishes as the gateway does.
		fs.StringVar(&routesFile, "routes-file", "", "the gateway's routes file, so that events go where a fresh callback's would")
		fs.StringVar(&timezone, "timezone", timezone, "the gateway's --timezone: IANA zone of Emma's zone-less timestamps")
		fs.IntVar(&kcfg.Partitions, "topic-partitions", kcfg.Partitions, "partitions of the topics a route names with {account}, created on first use")
		fs.IntVar(&kcfg.ReplicationFactor, "topic-replication-factor", kcfg.ReplicationFactor, "replication factor of those topics (-1: broker default)")
		own = append(own, "dry-run", "from-beginning", "group")
	}
	for _, n := range own {
		fs.SetEnv(n, cli.EnvPrefix+"DEADLETTER_"+envSuffix(n))
	}
	if err := fs.ParseNoArgs(args, env.Getenv); err != nil {
		return err
	}
	if len(brokers) == 0 {
		brokers = cli.List{embeddedAddr}
	}
	kcfg.Brokers = brokers
	transport, dialer, err := kcfg.Connection()
	if err != nil {
		return cli.Usage(err)
	}
	src := Source{Brokers: brokers, Topic: kcfg.DeadLetterTopic, Transport: transport, Dialer: dialer}
	p := NewPrinter(env.Stdout, jsonLines)

	if sub == "list" {
		f := Filter{Event: event, Reason: reason}
		switch reason {
		case "", events.ReasonMalformed, events.ReasonInvalid, Unknown:
		default:
			return cli.Usagef("--reason %q: want malformed or invalid", reason)
		}
		if since != "" {
			if f.Since, err = parseSince(since, time.Now()); err != nil {
				return cli.Usagef("--since: %w", err)
			}
		}
		n := 0
		err := List(ctx, src, f, func(l Letter) error { n++; return p.Print(l, "") })
		fmt.Fprintf(env.Stderr, "deadletter list: %d letters\n", n)
		return err
	}

	loc, err := time.LoadLocation(timezone)
	if err != nil {
		return cli.Usagef("timezone %q: %w", timezone, err)
	}
	if routesFile != "" {
		if kcfg.Routes, err = sinks.LoadRoutes(routesFile); err != nil {
			return cli.Usage(err)
		}
	}
	cfg := ReplayConfig{
		Decoder: events.NewDecoder(events.DecoderConfig{Location: loc}), Group: group, FromBeginning: fromBeginning, DryRun: dryRun,
		Handled: func(o Outcome) {
			l, note := o.Letter, "published"
			switch {
			case o.Err != nil:
				// Today's reasons, not those the letter was written with.
				note, l.Detail, l.Errors = "still fails", o.Err.Error(), nil
				var ve *events.ValidationError
				if errors.As(o.Err, &ve) {
					l.Errors = ve.Errors
				}
			case dryRun:
				note = "would pass"
			}
			_ = p.Print(l, note)
		},
	}
	if !dryRun {
		k, stop, err := publisher(ctx, kcfg, env, version)
		if err != nil {
			return err
		}
		defer stop()
		cfg.Publisher = k
	}
	rep, err := Replay(ctx, src, cfg)
	fmt.Fprintf(env.Stderr, "deadletter replay: %d letters read, %d pass today, %d published, %d still fail\n", rep.Letters, rep.Passed, rep.Published, rep.Failing)
	switch {
	case err != nil:
		return err
	case dryRun && rep.Passed > 0:
		return WouldPass{rep.Passed}
	}
	return nil
}

// publisher is the sink replay publishes through, the gateway's own, with
// spans made (each redriven message gets a new traceparent; OTEL_*
// variables say where they go). stop flushes both.
func publisher(ctx context.Context, kcfg sinks.Config, env cli.IO, version string) (*sinks.Kafka, func(), error) {
	tp, err := gateway.TracerProvider(ctx, version, env.Getenv)
	if err != nil {
		return nil, nil, cli.Usage(err)
	}
	shutdownTP := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}
	k, err := sinks.NewKafka(kcfg, telemetry.Settings{TracerProvider: tp})
	if err != nil {
		shutdownTP()
		return nil, nil, cli.Usage(err)
	}
	if err := k.Start(ctx); err != nil {
		shutdownTP()
		return nil, nil, err
	}
	return k, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = k.Shutdown(sctx)
		shutdownTP()
	}, nil
}

func envSuffix(flag string) string {
	b := []byte(flag)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// parseSince reads --since: an RFC 3339 time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 2h", s)
	}
	return now.Add(-d), nil
}
