package sinks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
	ke "github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/schemas"
)

func cloudEventHeaders(ev *events.Event) []kafka.Header {
	schema := schemas.Unrecognized
	if ev.Recognized() {
		schema = ev.Name
	}
	h := make([]kafka.Header, 0, 10)
	h = append(h,
		kafka.Header{Key: ke.HeaderSpecVersion, Value: []byte(ke.SpecVersion)},
		kafka.Header{Key: ke.HeaderID, Value: []byte(ev.ID)},
		kafka.Header{Key: ke.HeaderSource, Value: []byte(source(ev))},
		kafka.Header{Key: ke.HeaderType, Value: []byte(ke.TypePrefix + ev.Name)},
		kafka.Header{Key: ke.HeaderTime, Value: []byte(ev.Time().UTC().Format(time.RFC3339Nano))},
	)
	if s := ev.Subject(); s != "" {
		h = append(h, kafka.Header{Key: ke.HeaderSubject, Value: []byte(s)})
	}
	return append(h,
		// Consumers find the value's JSON Schema from the message alone.
		kafka.Header{Key: ke.HeaderDataSchema, Value: []byte(schemas.URL(schema))},
		kafka.Header{Key: ke.HeaderContentType, Value: []byte(ke.ContentTypeJSON)},
	)
}

func deadLetterHeaders(r *events.Rejection) []kafka.Header {
	ct := r.ContentType
	if ct == "" {
		ct = ke.ContentTypeUnknown
	}
	h := []kafka.Header{
		{Key: ke.HeaderDeadReason, Value: []byte(r.Reason)},
		{Key: ke.HeaderDeadDetail, Value: []byte(r.Detail)},
		{Key: ke.HeaderDeadDelivery, Value: []byte(r.Delivery)},
		{Key: ke.HeaderDeadContentType, Value: []byte(ct)},
		{Key: ke.HeaderDeadReceivedAt, Value: []byte(r.ReceivedAt.Format(time.RFC3339Nano))},
	}
	if r.EventName != "" {
		h = append(h, kafka.Header{Key: ke.HeaderDeadEventName, Value: []byte(r.EventName)})
	}
	if len(r.Errors) > 0 {
		b, _ := json.Marshal(r.Errors) // plain strings always marshal
		h = append(h, kafka.Header{Key: ke.HeaderDeadErrors, Value: b})
	}
	return h
}

// binaryMessage is the CloudEvents binary-mode message of ev: the normalized
// event as value, the attributes in ce_* headers.
func binaryMessage(topic string, ev *events.Event, key string, value []byte) kafka.Message {
	m := kafka.Message{Topic: topic, Value: value, Headers: cloudEventHeaders(ev)}
	if key != "" {
		m.Key = []byte(key)
	}
	return m
}

// structuredMessage is the CloudEvents structured-mode message of ev: a
// CloudEvents JSON envelope with the normalized event as data.
func structuredMessage(topic string, ev *events.Event, key string, value []byte) (kafka.Message, error) {
	env := struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Time            string          `json:"time"`
		Subject         string          `json:"subject,omitempty"`
		DataContentType string          `json:"datacontenttype"`
		DataSchema      string          `json:"dataschema"`
		Data            json.RawMessage `json:"data"`
	}{ke.SpecVersion, ev.ID, source(ev), ke.TypePrefix + ev.Name, ev.Time().UTC().Format(time.RFC3339Nano), ev.Subject(), ke.ContentTypeJSON, schemas.URL(ev.Name), value}
	b, err := json.Marshal(env)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode %s event: %w", ev.Name, err)
	}
	m := kafka.Message{Topic: topic, Value: b, Headers: []kafka.Header{{Key: ke.HeaderContentType, Value: []byte(ke.ContentTypeStructured)}}}
	if key != "" {
		m.Key = []byte(key)
	}
	return m, nil
}

// routeKey is the message key a route asks for: the named id field, the
// event id, or (when the event lacks the field) the default key.
func routeKey(ev *events.Event, field string) string {
	switch field {
	case "", KeyDefault:
		return ev.Key()
	case "event_id":
		return ev.ID
	}
	if id, ok := ev.IDField(field); ok {
		return id.String()
	}
	return ev.Key()
}

func source(ev *events.Event) string {
	if acct := ev.AccountID(); acct != 0 {
		return ke.SourceBase + "/" + acct.String()
	}
	return ke.SourceBase
}
