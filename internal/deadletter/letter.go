package deadletter

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
	ke "github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

// Letter is one dead letter: where it sits in the topic, why the gateway
// rejected it, and the raw callback.
type Letter struct {
	Topic      string              `json:"topic"`
	Partition  int                 `json:"partition"`
	Offset     int64               `json:"offset"`
	ReceivedAt time.Time           `json:"received_at"`
	Event      string              `json:"event,omitempty"`
	Reason     string              `json:"reason"`
	Detail     string              `json:"detail,omitempty"`
	Errors     []events.FieldError `json:"errors,omitempty"`
	Delivery   events.Delivery     `json:"delivery"`
	// ContentType is the request's Content-Type; empty when the request
	// had none or the letter predates the header.
	ContentType string `json:"content_type,omitempty"`
	// Payload is the callback as received. It is never printed: a payload
	// holds people's addresses.
	Payload []byte `json:"-"`
}

// Unknown is the reason of a letter without an emma_reason header (not
// written by the gateway).
const Unknown = "unknown"

// From names the letter as its redriven events' emma_redriven_from header
// does: "{topic}/{partition}/{offset}".
func (l Letter) From() string {
	return l.Topic + "/" + strconv.Itoa(l.Partition) + "/" + strconv.FormatInt(l.Offset, 10)
}

// Parse reads a dead letter from its message. Letters written by older
// gateways lack some headers; Parse fills what it can: the delivery is POST
// (the value is the callback's JSON either way, and the method only ends
// up in the event's delivery field), the receive time is the message's
// timestamp, and the content type stays empty.
func Parse(m kafka.Message) Letter {
	l := Letter{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Payload: m.Value, Reason: Unknown, Delivery: events.DeliveryPOST}
	var receivedAt string
	for _, h := range m.Headers {
		v := string(h.Value)
		switch h.Key {
		case ke.HeaderDeadReason:
			if v != "" {
				l.Reason = v
			}
		case ke.HeaderDeadDetail:
			l.Detail = v
		case ke.HeaderDeadEventName:
			l.Event = v
		case ke.HeaderDeadDelivery:
			if d := events.Delivery(v); d == events.DeliveryGET || d == events.DeliveryPOST {
				l.Delivery = d
			}
		case ke.HeaderDeadContentType:
			if v != ke.ContentTypeUnknown {
				l.ContentType = v
			}
		case ke.HeaderDeadReceivedAt:
			receivedAt = v
		case ke.HeaderDeadErrors:
			var fe []events.FieldError
			if json.Unmarshal(h.Value, &fe) == nil {
				l.Errors = fe
			}
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, receivedAt); err == nil {
		l.ReceivedAt = t.UTC()
	} else {
		l.ReceivedAt = m.Time.UTC()
	}
	return l
}

// Filter selects letters for [List]. Its zero value selects every one.
type Filter struct {
	// Event keeps the letters of this event_name.
	Event string
	// Reason keeps the letters rejected for this reason (malformed,
	// invalid).
	Reason string
	// Since keeps the letters received at or after it.
	Since time.Time
}

// Match reports whether f selects l.
func (f Filter) Match(l Letter) bool {
	return (f.Event == "" || f.Event == l.Event) &&
		(f.Reason == "" || f.Reason == l.Reason) &&
		(f.Since.IsZero() || !l.ReceivedAt.Before(f.Since))
}
