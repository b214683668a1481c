// Package events is the typed model of Emma's webhook callbacks.
//
// It turns the bytes Emma sends (a JSON envelope with event_name, an optional
// resource_url and a data object) into an [Event] carrying one of the typed
// payloads of this package, validates it, gives it a stable id, and renders the
// normalized JSON that is published downstream.
//
// The package knows Emma and nothing else: it must not import HTTP frameworks,
// Kafka clients or telemetry exporters, because downstream services import it
// to read the gateway's topics.
package events
