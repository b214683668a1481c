package sinks

import (
	"encoding/json"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
)

// Header names of the CloudEvents Kafka protocol binding, binary mode.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderSubject     = "ce_subject"
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
	source := SourceBase
	if acct := ev.AccountID(); acct != 0 {
		source += "/" + acct.String()
	}
	h := make([]kafka.Header, 0, 9)
	h = append(h,
		kafka.Header{Key: HeaderSpecVersion, Value: []byte("1.0")},
		kafka.Header{Key: HeaderID, Value: []byte(ev.ID)},
		kafka.Header{Key: HeaderSource, Value: []byte(source)},
		kafka.Header{Key: HeaderType, Value: []byte(TypePrefix + ev.Name)},
		kafka.Header{Key: HeaderTime, Value: []byte(ev.Time().UTC().Format(time.RFC3339Nano))},
	)
	if s := ev.Subject(); s != "" {
		h = append(h, kafka.Header{Key: HeaderSubject, Value: []byte(s)})
	}
	return append(h, kafka.Header{Key: HeaderContentType, Value: []byte("application/json")})
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
