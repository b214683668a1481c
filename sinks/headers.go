package sinks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
	ke "github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/schemas"
)

// maxDigits is the longest decimal int64 with its sign.
const maxDigits = 20

// binaryMessage is the CloudEvents binary-mode message of ev: the
// normalized event as value (shared by every copy of an event), the
// attributes in ce_* headers, the key named by keyField (see routeKey). The
// key and every header value are cut from one allocation, sized up front,
// instead of a string and a []byte conversion each; each is a full slice
// expression, so that appending to one cannot write into the next.
func binaryMessage(topic string, ev *events.Event, keyField string, value []byte) kafka.Message {
	schema := schemas.Unrecognized
	if ev.Recognized() {
		schema = ev.Name
	}
	size := max(maxDigits, len(ev.ID)) + // the key
		len(ke.SpecVersion) + len(ev.ID) + len(ke.SourceBase) + 1 + maxDigits + len(ke.TypePrefix) + len(ev.Name) +
		len(time.RFC3339Nano) + len("account/") + maxDigits + len(schemas.BaseURL) + len(schema) + len(".json") +
		len(ke.ContentTypeJSON)
	b := make([]byte, 0, size)
	cut := func(from int) []byte { return b[from:len(b):len(b)] }

	m := kafka.Message{Topic: topic, Value: value}
	b = appendRouteKey(b, ev, keyField)
	if len(b) > 0 {
		m.Key = cut(0)
	}
	// Room for the traceparent (and tracestate) the producer span adds.
	h := make([]kafka.Header, 0, 10)
	from := len(b)
	b = append(b, ke.SpecVersion...)
	h = append(h, kafka.Header{Key: ke.HeaderSpecVersion, Value: cut(from)})
	from = len(b)
	b = append(b, ev.ID...)
	h = append(h, kafka.Header{Key: ke.HeaderID, Value: cut(from)})
	from = len(b)
	b = appendSource(b, ev)
	h = append(h, kafka.Header{Key: ke.HeaderSource, Value: cut(from)})
	from = len(b)
	b = append(append(b, ke.TypePrefix...), ev.Name...)
	h = append(h, kafka.Header{Key: ke.HeaderType, Value: cut(from)})
	from = len(b)
	b = ev.Time().UTC().AppendFormat(b, time.RFC3339Nano)
	h = append(h, kafka.Header{Key: ke.HeaderTime, Value: cut(from)})
	from = len(b)
	if b = ev.AppendSubject(b); len(b) > from {
		h = append(h, kafka.Header{Key: ke.HeaderSubject, Value: cut(from)})
	}
	// Consumers find the value's JSON Schema from the message alone.
	from = len(b)
	b = append(append(append(b, schemas.BaseURL...), schema...), ".json"...)
	h = append(h, kafka.Header{Key: ke.HeaderDataSchema, Value: cut(from)})
	from = len(b)
	b = append(b, ke.ContentTypeJSON...)
	m.Headers = append(h, kafka.Header{Key: ke.HeaderContentType, Value: cut(from)})
	return m
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

// appendRouteKey appends the key routeKey returns.
func appendRouteKey(dst []byte, ev *events.Event, field string) []byte {
	switch field {
	case "", KeyDefault:
		return ev.AppendKey(dst)
	case "event_id":
		return append(dst, ev.ID...)
	}
	if id, ok := ev.IDField(field); ok {
		return strconv.AppendInt(dst, int64(id), 10)
	}
	return ev.AppendKey(dst)
}

func source(ev *events.Event) string { return string(appendSource(nil, ev)) }

// appendSource appends the CloudEvents source of ev: Emma's API base URL
// and the account.
func appendSource(dst []byte, ev *events.Event) []byte {
	dst = append(dst, ke.SourceBase...)
	if acct := ev.AccountID(); acct != 0 {
		dst = strconv.AppendInt(append(dst, '/'), int64(acct), 10)
	}
	return dst
}
