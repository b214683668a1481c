package kafkaevents

import (
	"strings"

	"go.opentelemetry.io/otel/propagation"

	"github.com/emma-gateway/emma-gateway/internal/propagate"
)

// The wire contract of the gateway's Kafka messages (SPEC section 4). The
// gateway's producer writes these names and a consumer reads them; both
// import them from here, as CloudEvents' sdk-go keeps its Kafka binding's
// names in one package.

// Header names of the CloudEvents Kafka protocol binding, binary mode, and
// of the W3C trace context of the producer span.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderSubject     = "ce_subject"
	HeaderDataSchema  = "ce_dataschema"
	HeaderContentType = "content-type"
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Header names of dead letters: why the gateway rejected the request whose
// raw body is the message's value.
const (
	HeaderDeadReason      = "emma_reason"
	HeaderDeadDetail      = "emma_detail"
	HeaderDeadErrors      = "emma_errors"
	HeaderDeadEventName   = "emma_event_name"
	HeaderDeadDelivery    = "emma_delivery"
	HeaderDeadContentType = "emma_content_type"
	HeaderDeadReceivedAt  = "emma_received_at"
)

// HeaderRedrivenFrom marks an event published by `deadletter replay`: the
// dead letter it came from, as "{topic}/{partition}/{offset}". A fresh
// callback's message has no such header.
const HeaderRedrivenFrom = "emma_redriven_from"

// HeaderIntendedTopic is on a copy the gateway wrote to its event's
// template topic instead of the {account} topic a route named, because the
// bound on topics created at run time was reached: its value is that
// topic (several, comma-separated, when more than one was refused).
const HeaderIntendedTopic = "emma_intended_topic"

// SpecVersion is the CloudEvents version of every message (ce_specversion).
const SpecVersion = "1.0"

// Content types of a message's value.
const (
	// ContentTypeJSON is a binary-mode message's: the normalized event.
	ContentTypeJSON = "application/json"
	// ContentTypeStructured is a structured-mode message's (a route may
	// ask for it): a CloudEvents JSON envelope with the event as its data.
	ContentTypeStructured = "application/cloudevents+json"
	// ContentTypeUnknown is a dead letter's emma_content_type when the
	// request had no Content-Type.
	ContentTypeUnknown = "application/octet-stream"
)

// SourceBase is the CloudEvents source of every event: Emma's API base URL,
// followed by "/" and the account id when the event names one.
const SourceBase = "https://api.e2ma.net"

// TypePrefix prefixes the event name in ce_type.
const TypePrefix = "com.myemma."

// Default topic names.
const (
	// EventPlaceholder is replaced by the event name in a topic template.
	EventPlaceholder = "{event}"
	// DefaultTopicTemplate names the topic of a recognized event.
	DefaultTopicTemplate = "emma." + EventPlaceholder
	// DefaultUnrecognizedTopic receives events whose name the gateway does
	// not know.
	DefaultUnrecognizedTopic = "emma.unrecognized"
	// DefaultDeadLetterTopic receives rejected callbacks, raw.
	DefaultDeadLetterTopic = "emma.deadletter"
)

// Topic returns the topic template names for event.
func Topic(template, event string) string {
	return strings.ReplaceAll(template, EventPlaceholder, event)
}

// Propagator returns the propagation the gateway writes into message
// headers and reads from HTTP requests: W3C trace-context (traceparent,
// tracestate) and baggage.
func Propagator() propagation.TextMapPropagator {
	return propagate.Propagator()
}
