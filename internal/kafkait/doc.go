// Package kafkait is the integration suite against Apache Kafka itself: a
// three-node KRaft cluster on loopback started by deploy/kafka/cluster.sh,
// the real emma-gateway binary as a subprocess, callbacks over HTTP, and the
// topics read back with kafka-go and events/kafkaevents.
//
// The package holds tests only. They run when EMMA_GATEWAY_IT_BROKERS names
// the cluster's brokers (deploy/kafka/it.sh and .ci/run set it and the rest
// of the EMMA_GATEWAY_IT_* variables from the cluster's it.env); without it
// every test skips, so that `go test ./...` on a bare machine runs on kfake
// alone. It imports no package of the gateway but events/kafkaevents: the
// binary, its flags and the Kafka messages are the surfaces it tests.
package kafkait
