package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/sinks"
)

// tail prints the messages arriving on the gateway's topics, one JSON object
// a line: topic, partition, offset, key, headers and the value.
func tail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	kcfg := sinks.DefaultConfig()
	var brokers, topics, events listValue
	embeddedAddr := "127.0.0.1:9092"
	fromBeginning := false
	fs := newFlagSet("tail")
	fs.SetOutput(stderr)
	fs.Var(&brokers, "kafka-brokers", "comma-separated Kafka brokers (default: the embedded broker's address)")
	fs.StringVar(&embeddedAddr, "embedded-kafka-addr", embeddedAddr, "address of a gateway's embedded broker")
	fs.StringVar(&kcfg.TopicTemplate, "topic-template", kcfg.TopicTemplate, "the gateway's topic template")
	fs.StringVar(&kcfg.UnrecognizedTopic, "unrecognized-topic", kcfg.UnrecognizedTopic, "the gateway's unrecognized topic")
	fs.StringVar(&kcfg.DeadLetterTopic, "deadletter-topic", kcfg.DeadLetterTopic, "the gateway's dead-letter topic")
	fs.Var(&topics, "topics", "comma-separated topics to read instead of all of the gateway's")
	fs.Var(&events, "events", "comma-separated event names to print (default: all)")
	fs.BoolVar(&fromBeginning, "from-beginning", false, "print what the topics already hold, not only what arrives")
	// tail reads EMMA_GATEWAY_* like serve, so one environment serves both;
	// only its own flags are TAIL_-specific.
	fs.env["topics"], fs.env["events"], fs.env["from-beginning"] = envPrefix+"TAIL_TOPICS", envPrefix+"TAIL_EVENTS", envPrefix+"TAIL_FROM_BEGINNING"
	if err := fs.parse(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if len(brokers) == 0 {
		brokers = listValue{embeddedAddr}
	}
	if len(topics) == 0 {
		topics = kcfg.Topics()
	}
	start := kafka.LastOffset
	if fromBeginning {
		start = kafka.FirstOffset
	}

	partitions, err := topicPartitions(ctx, brokers, topics)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tail: reading %d partitions of %d topics from %s; Ctrl-C to stop\n", len(partitions), len(topics), strings.Join(brokers, ","))

	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	var wg sync.WaitGroup
	for _, tp := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: tp.Topic, Partition: tp.ID, MaxWait: 200 * time.Millisecond})
			defer r.Close()
			if err := r.SetOffset(start); err != nil {
				return
			}
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						fmt.Fprintf(stderr, "tail: %s/%d: %v\n", tp.Topic, tp.ID, err)
					}
					return
				}
				line := printable(m)
				if len(events) > 0 && !slices.Contains(events, line.Event) {
					continue
				}
				mu.Lock()
				_ = enc.Encode(line)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return nil
}

// tailLine is what tail prints for one message.
type tailLine struct {
	Topic     string            `json:"topic"`
	Partition int               `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key,omitempty"`
	Event     string            `json:"event,omitempty"`
	Headers   map[string]string `json:"headers"`
	Value     json.RawMessage   `json:"value"`
}

func printable(m kafka.Message) tailLine {
	l := tailLine{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Headers: map[string]string{}}
	for _, h := range m.Headers {
		l.Headers[h.Key] = string(h.Value)
	}
	l.Event = strings.TrimPrefix(l.Headers[sinks.HeaderType], sinks.TypePrefix)
	if l.Event == "" {
		l.Event = l.Headers[sinks.HeaderDeadEventName]
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
func topicPartitions(ctx context.Context, brokers, topics []string) ([]kafka.Partition, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
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
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("%d of the topics do not exist; is the gateway running?", missing)
			}
			return nil, fmt.Errorf("tail: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
