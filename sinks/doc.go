// Package sinks makes events durable: it publishes them to Kafka with
// segmentio/kafka-go (and, in development, runs an embedded Kafka-protocol
// broker). It knows Kafka and disk; it must not import an HTTP framework.
package sinks
