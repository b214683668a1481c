package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// Source is where the dead letters are: the brokers, reached as
// sinks.Config.Connection says (TLS, SASL), and the topic.
type Source struct {
	Brokers   []string
	Topic     string
	Transport *kafka.Transport
	Dialer    *kafka.Dialer
	// ReadTimeout bounds the wait for each letter below the end offset
	// observed at start (a broker that stops answering must not hang the
	// command). Default 10 s.
	ReadTimeout time.Duration
}

// span is the part of a partition a command reads: [from, to).
type span struct {
	partition int
	first     int64 // the partition's first offset
	from, to  int64
}

func (s Source) client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(s.Brokers...), Transport: s.Transport, Timeout: 10 * time.Second}
}

// spans returns every partition of the topic with its first offset and its
// end offset now, so that a command reads what the topic held when it
// started and then stops, however many letters keep arriving.
func (s Source) spans(ctx context.Context) ([]span, error) {
	c := s.client()
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.Topic}})
	if err != nil {
		return nil, fmt.Errorf("dead-letter topic %s: %w", s.Topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		var terr error = errors.New("not in the metadata")
		if len(md.Topics) == 1 {
			terr = md.Topics[0].Error
		}
		return nil, fmt.Errorf("dead-letter topic %s: %w", s.Topic, terr)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{s.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("dead-letter topic %s: offsets: %w", s.Topic, err)
	}
	var out []span
	for _, po := range res.Topics[s.Topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("dead-letter topic %s partition %d: offsets: %w", s.Topic, po.Partition, po.Error)
		}
		out = append(out, span{partition: po.Partition, first: po.FirstOffset, from: po.FirstOffset, to: po.LastOffset})
	}
	slices.SortFunc(out, func(a, b span) int { return a.partition - b.partition })
	return out, nil
}

// read calls fn with each message of sp in offset order, and stops at
// sp.to or at fn's first error.
func (s Source) read(ctx context.Context, sp span, fn func(kafka.Message) error) error {
	if sp.from >= sp.to {
		return nil
	}
	timeout := s.ReadTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.Brokers, Topic: s.Topic, Partition: sp.partition, Dialer: s.Dialer, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(sp.from); err != nil {
		return err
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		m, err := r.ReadMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read %s/%d at offset %d (of %d): %w", s.Topic, sp.partition, sp.from, sp.to, err)
		}
		if m.Offset >= sp.to {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		// Offsets may skip (compaction, transaction markers): the end is
		// reached by offset, not by count.
		if sp.from = m.Offset + 1; sp.from >= sp.to {
			return nil
		}
	}
}

// List calls fn with every letter f selects, partition by partition in
// offset order, among those the topic held when List started.
func List(ctx context.Context, src Source, f Filter, fn func(Letter) error) error {
	spans, err := src.spans(ctx)
	if err != nil {
		return err
	}
	for _, sp := range spans {
		err := src.read(ctx, sp, func(m kafka.Message) error {
			if l := Parse(m); f.Match(l) {
				return fn(l)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
