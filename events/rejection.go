package events

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// Rejection is a callback the gateway refused (malformed, or a recognized
// event that failed validation), kept whole for the dead-letter topic so that
// nothing Emma sent is lost.
type Rejection struct {
	// ID identifies the raw payload (a hash of it), for deduplication.
	ID string
	// Delivery is the HTTP method of the callback.
	Delivery Delivery
	// ContentType is the request's Content-Type, if any.
	ContentType string
	// Payload is the callback as received: the POST body, or the payload
	// parameter of a GET or form POST. Never the token.
	Payload []byte
	// EventName is the event_name, when one could be read.
	EventName string
	// Reason is "malformed" or "invalid".
	Reason string
	// Detail is the error in one line.
	Detail string
	// Errors lists the failed fields of an invalid event.
	Errors []FieldError
	// ReceivedAt is when the gateway received the callback.
	ReceivedAt time.Time
}

// Rejection reasons.
const (
	ReasonMalformed = "malformed"
	ReasonInvalid   = "invalid"
)

// NewRejection describes the refusal of payload with err, the error
// [Decoder.Decode] returned; ev is the event it returned, if any.
func NewRejection(payload []byte, delivery Delivery, contentType string, receivedAt time.Time, ev *Event, err error) *Rejection {
	sum := sha256.Sum256(payload)
	r := &Rejection{
		ID:          hex.EncodeToString(sum[:16]),
		Delivery:    delivery,
		ContentType: contentType,
		Payload:     payload,
		Reason:      ReasonMalformed,
		Detail:      err.Error(),
		ReceivedAt:  receivedAt.UTC(),
	}
	if ev != nil {
		r.EventName = ev.Name
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		r.Reason = ReasonInvalid
		r.EventName = ve.Event
		r.Errors = ve.Errors
	}
	return r
}
