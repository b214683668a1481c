// Package schemas is the published contract of the gateway's Kafka topics:
// a JSON Schema (draft 2020-12) for the normalized value of every event type,
// for the unrecognized topic's values, for the dead-letter headers and for the
// CloudEvents headers of every event message, plus an AsyncAPI 3.0 document
// of the whole gateway.
//
// The files are generated from the Go types of package events by
// internal/gen (go generate ./schemas) and committed; a test regenerates
// them and fails on any difference, and refuses a removed or retyped field
// (see the README's "Schemas and compatibility"). The package embeds them so
// that the gateway can serve them under /schemas/.
//
// It imports only the standard library: the sinks import it to name the
// schema of each message in ce_dataschema.
package schemas

//go:generate go run ./internal/gen
