// Package gateway resolves serve's configuration once and wires the
// gateway from it: the receiver (HTTP), the Kafka sink, the embedded
// development broker when no brokers are configured, and the tracing
// bootstrap from the OTEL_* variables.
//
// Load is the one place that decides what serve accepts: flags, the
// EMMA_GATEWAY_* environment, the timezone, the routes file, embedded
// (development) mode and the checks that span components. serve, bench,
// the tests and the deploy tests all call it, so that they cannot drift.
// Nothing downstream rereads flags or the environment.
package gateway
