// Package emulator is an in-memory stand-in for Emma's webhook API, for the
// local demo, the tests and load tests: the six endpoints of
// /{account_id}/webhooks with the answers of Emma's documentation and HTTP
// Basic auth, a 180-calls-a-minute limit answered 403 like Emma's, and
// control endpoints under /_emulator/ that fire events to every webhook
// registered for them and record what the receiver answered:
//
//	POST /_emulator/fire        {"event": "message_open", "account_id"?: 1, "data"?: {...}}
//	GET  /_emulator/deliveries  every delivery so far
//
// Payloads have the shapes Emma sends (SPEC section 2): the envelope
// {"event_name","resource_url"?,"data":{...}}, @D: timestamps, ids above
// 2^32; a GET webhook receives the JSON url-encoded in the payload query
// parameter, a POST webhook as the body.
//
// It may import emmaapi (the API's types) and events (the event names), but
// not the gateway's receiver or sinks: it is the other side of the wire.
package emulator
