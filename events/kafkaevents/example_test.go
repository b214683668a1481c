package kafkaevents_test

import (
	"context"
	"log"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

// A downstream service reads two of the gateway's topics as one consumer
// group, handles each typed event, and commits its offset once handled, so
// that a restart resumes after the last handled message. (It needs a
// broker, so it is compiled, not run; the README shows consumeEngagement's
// body and a test keeps the two the same.)
func Example_consumerGroup() {
	if err := consumeEngagement(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func consumeEngagement(ctx context.Context) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{"localhost:9092"},
		GroupID:     "engagement-scores",
		GroupTopics: []string{"emma.message_open", "emma.message_click"},
	})
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx) // FetchMessage does not commit; ReadMessage would
		if err != nil {
			return err
		}
		ev, err := kafkaevents.Decode(m)
		if err != nil {
			log.Printf("skipping %s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
		} else {
			ctx := kafkaevents.Context(ctx, m) // spans started from ctx join the callback's trace
			switch p := ev.Payload.(type) {
			case *events.MessageOpen:
				score(ctx, p.MemberID, p.MailingID, 1)
			case *events.MessageClick:
				score(ctx, p.MemberID, p.MailingID, 3)
			}
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return err
		}
	}
}

// score stands for the service's own work.
func score(_ context.Context, member, mailing events.ID, points int) {
	log.Printf("member %d: +%d for mailing %d", member, points, mailing)
}
