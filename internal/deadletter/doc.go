// Package deadletter reads the gateway's dead-letter topic for the person on
// call: [List] shows what was rejected and why, and [Replay] runs each raw
// callback through today's decoder and validator and publishes, through the
// sink, those that now pass (the redrive of callbacks rejected by a rule
// since fixed).
//
// [Run] is the "emma-gateway deadletter list|replay" command over them.
//
// It knows Kafka (through kafka-go and the wire contract of
// events/kafkaevents), events and the sink it publishes through; it does
// not know HTTP.
package deadletter
