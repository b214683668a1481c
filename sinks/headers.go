package sinks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/schemas"
)

// Header names of the CloudEvents Kafka protocol binding, binary mode.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderSubject     = "ce_subject"
	HeaderDataSchema  = "ce_dataschema"
	HeaderContentType = "content-type"
)

// Headers of dead letters.
const (
	HeaderDeadReason      = "emma_reason"
	HeaderDeadDetail      = "emma_detail"
	HeaderDeadErrors      = "emma_errors"
	HeaderDeadEventName   = "emma_event_name"
	HeaderDeadDelivery    = "emma_delivery"
	HeaderDeadContentType = "emma_content_type"
	HeaderDeadReceivedAt  = "emma_received_at"
)

// SourceBase is the CloudEvents source of every event: Emma's API base URL,
// followed by the account id.
const SourceBase = "https://api.e2ma.net"

// TypePrefix prefixes the event name in ce_type.
const TypePrefix = "com.myemma."

func cloudEventHeaders(ev *events.Event) []kafka.Header {
	schema := schemas.Unrecognized
	if ev.Recognized() {
		schema = ev.Name
	}
	h := make([]kafka.Header, 0, 10)
	h = append(h,
		kafka.Header{Key: HeaderSpecVersion, Value: []byte("1.0")},
		kafka.Header{Key: HeaderID, Value: []byte(ev.ID)},
		kafka.Header{Key: HeaderSource, Value: []byte(source(ev))},
		kafka.Header{Key: HeaderType, Value: []byte(TypePrefix + ev.Name)},
		kafka.Header{Key: HeaderTime, Value: []byte(ev.Time().UTC().Format(time.RFC3339Nano))},
	)
	if s := ev.Subject(); s != "" {
		h = append(h, kafka.Header{Key: HeaderSubject, Value: []byte(s)})
	}
	return append(h,
		// Consumers find the value's JSON Schema from the message alone.
		kafka.Header{Key: HeaderDataSchema, Value: []byte(schemas.URL(schema))},
		kafka.Header{Key: HeaderContentType, Value: []byte("application/json")},
	)
}

func deadLetterHeaders(r *events.Rejection) []kafka.Header {
	ct := r.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := []kafka.Header{
		{Key: HeaderDeadReason, Value: []byte(r.Reason)},
		{Key: HeaderDeadDetail, Value: []byte(r.Detail)},
		{Key: HeaderDeadDelivery, Value: []byte(r.Delivery)},
		{Key: HeaderDeadContentType, Value: []byte(ct)},
		{Key: HeaderDeadReceivedAt, Value: []byte(r.ReceivedAt.Format(time.RFC3339Nano))},
	}
	if r.EventName != "" {
		h = append(h, kafka.Header{Key: HeaderDeadEventName, Value: []byte(r.EventName)})
	}
	if len(r.Errors) > 0 {
		b, _ := json.Marshal(r.Errors) // plain strings always marshal
		h = append(h, kafka.Header{Key: HeaderDeadErrors, Value: b})
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
	}{"1.0", ev.ID, source(ev), TypePrefix + ev.Name, ev.Time().UTC().Format(time.RFC3339Nano), ev.Subject(), "application/json", schemas.URL(ev.Name), value}
	b, err := json.Marshal(env)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode %s event: %w", ev.Name, err)
	}
	m := kafka.Message{Topic: topic, Value: b, Headers: []kafka.Header{{Key: HeaderContentType, Value: []byte(ContentTypeStructured)}}}
	if key != "" {
		m.Key = []byte(key)
	}
	return m, nil
}

// ContentTypeStructured is the content-type of structured-mode messages.
const ContentTypeStructured = "application/cloudevents+json"

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
		return SourceBase + "/" + acct.String()
	}
	return SourceBase
}
