package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
)

// DefaultGroup is the consumer group whose committed offsets say which
// letters [Replay] has handled.
const DefaultGroup = "emma-gateway-deadletter-replay"

// Publisher publishes a redriven event as a fresh callback's would be, with
// the emma_redriven_from header naming its letter; nil only once the event
// is durable. sinks.Kafka's Redrive is one.
type Publisher interface {
	Redrive(ctx context.Context, ev *events.Event, from string) error
}

// ReplayConfig configures [Replay].
type ReplayConfig struct {
	// Decoder is today's decoder and validator (with the gateway's time
	// zone). Required.
	Decoder *events.Decoder
	// Publisher publishes the letters that now pass. Required unless
	// DryRun.
	Publisher Publisher
	// Group is the consumer group keeping the offsets. Default
	// [DefaultGroup].
	Group string
	// FromBeginning reconsiders every letter the topic holds, whatever the
	// group has committed (its offsets are then overwritten as usual).
	FromBeginning bool
	// DryRun decodes and validates but publishes and commits nothing.
	DryRun bool
	// Handled, when set, is called with each letter once it is handled.
	Handled func(Outcome)
}

// Outcome is what became of one letter.
type Outcome struct {
	Letter Letter
	// Event is the event the letter now decodes to; nil when it still
	// fails.
	Event *events.Event
	// Err is why the letter still fails (a *events.MalformedError or
	// *events.ValidationError).
	Err error
	// Published is true once Event is durable (never in a dry run).
	Published bool
}

// Report counts the letters a replay handled.
type Report struct {
	// Letters were read.
	Letters int
	// Passed now decode and validate.
	Passed int
	// Published were published (Passed, unless DryRun).
	Published int
	// Failing still fail.
	Failing int
}

// Replay reads the letters after the group's committed offsets (every one
// with FromBeginning) up to the end offsets observed when it starts, runs
// each raw callback through cfg.Decoder with the delivery and receive time
// its headers record, and publishes those that now pass. After each letter
// is handled (published durably, or found still failing) the group's
// offset moves past it, so that a second replay publishes nothing again
// and a replay stopped half-way resumes where it stopped. A letter
// published whose commit was then lost (the process killed between the
// two) is published again by the next run, with the same event_id: the
// gateway's delivery is at-least-once anyway.
//
// The commits are simple (generation -1) commits of a group with no
// members: two replays at once of the same group may both publish a
// letter, so run one at a time.
func Replay(ctx context.Context, src Source, cfg ReplayConfig) (Report, error) {
	var rep Report
	if cfg.Decoder == nil || (cfg.Publisher == nil && !cfg.DryRun) {
		return rep, errors.New("deadletter replay: a decoder and (unless a dry run) a publisher are required")
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	spans, err := src.spans(ctx)
	if err != nil {
		return rep, err
	}
	client := src.client()
	if !cfg.FromBeginning {
		if err := committed(ctx, client, src.Topic, cfg.Group, spans); err != nil {
			return rep, err
		}
	}
	for _, sp := range spans {
		err := src.read(ctx, sp, func(m kafka.Message) error {
			l := Parse(m)
			rep.Letters++
			out := Outcome{Letter: l}
			out.Event, out.Err = cfg.Decoder.Decode(l.Payload, l.Delivery, l.ReceivedAt)
			if out.Err != nil {
				out.Event = nil
				rep.Failing++
			} else {
				rep.Passed++
			}
			if !cfg.DryRun {
				if out.Event != nil {
					if err := cfg.Publisher.Redrive(ctx, out.Event, l.From()); err != nil {
						return fmt.Errorf("redrive %s: %w", l.From(), err)
					}
					out.Published = true
					rep.Published++
				}
				if err := commit(ctx, client, src.Topic, cfg.Group, l.Partition, l.Offset+1); err != nil {
					return err
				}
			}
			if cfg.Handled != nil {
				cfg.Handled(out)
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// committed moves each span's start to the group's committed offset, when
// the group has one within the partition.
func committed(ctx context.Context, c *kafka.Client, topic, group string, spans []span) error {
	parts := make([]int, len(spans))
	for i, sp := range spans {
		parts[i] = sp.partition
	}
	var res *kafka.OffsetFetchResponse
	err := coordinated(ctx, func() error {
		var err error
		if res, err = c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}}); err == nil {
			err = res.Error
		}
		return err
	})
	if errors.Is(err, kafka.GroupIdNotFound) {
		// Apache Kafka answers an unknown group with no offsets; kfake
		// says so. Either way nothing was replayed yet.
		return nil
	}
	if err != nil {
		return fmt.Errorf("group %s: committed offsets: %w", group, err)
	}
	at := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return fmt.Errorf("group %s: committed offset of %s/%d: %w", group, topic, p.Partition, p.Error)
		}
		at[p.Partition] = p.CommittedOffset
	}
	for i := range spans {
		// -1: nothing committed; below the first offset: retention took
		// letters the group never saw, so the oldest left is next.
		if off, ok := at[spans[i].partition]; ok && off > spans[i].first {
			spans[i].from = min(off, spans[i].to)
		}
	}
	return nil
}

func commit(ctx context.Context, c *kafka.Client, topic, group string, partition int, offset int64) error {
	err := coordinated(ctx, func() error {
		res, err := c.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
			GroupID:      group,
			GenerationID: -1, // a simple commit: the group has no members
			Topics:       map[string][]kafka.OffsetCommit{topic: {{Partition: partition, Offset: offset}}},
		})
		if err != nil {
			return err
		}
		for _, p := range res.Topics[topic] {
			if p.Error != nil {
				return p.Error
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("group %s: commit %s/%d at %d: %w", group, topic, partition, offset, err)
	}
	return nil
}

// coordinated runs a group request until the group's coordinator takes it,
// for at most coordinatorWait. kafka-go finds the coordinator before each
// group request but ignores FindCoordinator's error: while Kafka creates
// __consumer_offsets (a group's first use on a fresh cluster) or moves a
// coordinator, the request lands on another broker and is refused with
// NOT_COORDINATOR, or the coordinator is still loading its offsets.
func coordinated(ctx context.Context, req func() error) error {
	deadline := time.Now().Add(coordinatorWait)
	backoff := 100 * time.Millisecond
	for {
		err := req()
		if err == nil || !(errors.Is(err, kafka.NotCoordinatorForGroup) || errors.Is(err, kafka.GroupCoordinatorNotAvailable) || errors.Is(err, kafka.GroupLoadInProgress)) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// coordinatorWait bounds the wait for a group coordinator.
const coordinatorWait = 30 * time.Second
