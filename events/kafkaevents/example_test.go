package kafkaevents_test

import (
	"context"
	"errors"
	"log"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

// A downstream service reads two of the gateway's topics as one consumer
// group, handles each typed event, and commits its offset once handled, so
// that a restart resumes after the last handled message.
func Example_consumerGroup() {
	ctx := context.Background()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{"localhost:9092"},
		GroupID:     "engagement-scores",
		GroupTopics: []string{"emma.message_open", "emma.message_click"},
	})
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx) // FetchMessage does not commit; ReadMessage would
		if err != nil {
			log.Printf("fetch: %v", err)
			return
		}
		ev, err := kafkaevents.Decode(m)
		switch {
		case errors.Is(err, events.ErrNotNormalized):
			log.Printf("skipping %s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
		case err != nil:
			log.Print(err)
		default:
			ctx := kafkaevents.Context(ctx, m) // spans started from ctx join the callback's trace
			_ = ctx
			switch p := ev.Payload.(type) {
			case *events.MessageOpen:
				log.Printf("%s: member %d opened mailing %d (%q)", ev.ID, p.MemberID, p.MailingID, p.Subject)
			case *events.MessageClick:
				log.Printf("%s: member %d clicked link %d of mailing %d", ev.ID, p.MemberID, p.LinkID, p.MailingID)
			}
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			log.Printf("commit: %v", err)
			return
		}
	}
}
