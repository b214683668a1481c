package gateway

import (
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// ClientFlags defines, on fs, the flags of the commands that read the
// gateway's topics (tail, deadletter): the brokers (the embedded broker's
// address when none is given), the topic names, TLS and SASL, with serve's
// flag names and so serve's EMMA_GATEWAY_* variables, so that one
// environment serves them all.
func ClientFlags(fs *cli.FlagSet, k *sinks.Config, brokers *cli.List, embeddedAddr *string) {
	fs.Var(brokers, "kafka-brokers", "comma-separated Kafka brokers (default: the embedded broker's address)")
	fs.StringVar(embeddedAddr, "embedded-kafka-addr", *embeddedAddr, "address of a gateway's embedded broker")
	fs.StringVar(&k.TopicTemplate, "topic-template", k.TopicTemplate, "the gateway's topic template")
	fs.StringVar(&k.UnrecognizedTopic, "unrecognized-topic", k.UnrecognizedTopic, "the gateway's unrecognized topic")
	fs.StringVar(&k.DeadLetterTopic, "deadletter-topic", k.DeadLetterTopic, "the gateway's dead-letter topic")
	securityFlags(fs, k)
}

// securityFlags defines the TLS and SASL flags of every command that
// connects to Kafka, serve's included.
func securityFlags(fs *cli.FlagSet, k *sinks.Config) {
	fs.BoolVar(&k.TLS.Enabled, "kafka-tls", k.TLS.Enabled, "connect to Kafka with TLS")
	fs.StringVar(&k.TLS.CAFile, "kafka-tls-ca-file", "", "PEM CA bundle for the brokers' certificates")
	fs.StringVar(&k.TLS.CertFile, "kafka-tls-cert-file", "", "client certificate (PEM) for mutual TLS")
	fs.StringVar(&k.TLS.KeyFile, "kafka-tls-key-file", "", "client key (PEM) for mutual TLS")
	fs.StringVar(&k.TLS.ServerName, "kafka-tls-server-name", "", "name expected in the brokers' certificates")
	fs.BoolVar(&k.TLS.InsecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "do not verify the brokers' certificates (never in production)")
	fs.StringVar(&k.SASL.Mechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&k.SASL.Username, "kafka-sasl-username", "", "SASL user name")
	fs.Var((*cli.Secret)(&k.SASL.Password), "kafka-sasl-password", "SASL password (prefer the environment variable)")
}
