// Package sinks makes events durable: it publishes them to Kafka with
// segmentio/kafka-go, spooling to a local write-ahead log what Kafka cannot
// take in time. It knows Kafka and disk; it must not import an HTTP
// framework, nor a fake broker (the development broker is
// internal/devkafka). The header names and default topics it writes are
// events/kafkaevents', the wire contract consumers share.
package sinks
