// Package receiver is the HTTP side of the gateway: an Echo v4 server that
// authenticates Emma's callbacks, reads them from POST bodies or GET query
// strings, asks package events for a typed event, hands it to a [Sink], and
// answers Emma only once the sink says the event is durable.
//
// It knows HTTP. It must not import a Kafka client: the sink is an
// interface declared here. Nor does it serve /metrics or /schemas itself:
// the wiring mounts them ([Deps].Mounts), so that it links neither
// Prometheus' HTTP handler nor the schemas.
package receiver
