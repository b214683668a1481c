package kafkaevents

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
)

// ErrDeadLetter is matched (with errors.Is) by the error of [Decode] for a
// message of the dead-letter topic: its value is the raw request the gateway
// rejected, not an event. Its headers say why (emma_reason, emma_detail, ...).
var ErrDeadLetter = errors.New("a dead letter, not an event")

// Decode turns a message of one of the gateway's event topics into the
// typed event: a Payload of the right concrete type (use a type switch, e.g.
// *events.MessageOpen), Extra, ID, ReceivedAt, Delivery and ResourceURL. It
// reads binary-mode messages (the default: the value is the normalized event)
// and structured-mode ones. The error wraps [events.ErrNotNormalized] for a
// value that is not a normalized event, and is [ErrDeadLetter] for a dead
// letter. To continue the gateway's trace, use [Context] or [StartProcess]
// with the same message.
func Decode(m kafka.Message) (*events.Event, error) {
	h := Headers{&m.Headers}
	if h.Get(HeaderDeadReason) != "" {
		return nil, fmt.Errorf("%s/%d@%d: %w", m.Topic, m.Partition, m.Offset, ErrDeadLetter)
	}
	value := m.Value
	if h.Get(HeaderContentType) == ContentTypeStructured {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(value, &env); err != nil || len(env.Data) == 0 {
			return nil, fmt.Errorf("%s/%d@%d: %w: a structured-mode message without data", m.Topic, m.Partition, m.Offset, events.ErrNotNormalized)
		}
		value = env.Data
	}
	ev, err := events.UnmarshalNormalized(value)
	if err != nil {
		return nil, fmt.Errorf("%s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return ev, nil
}
