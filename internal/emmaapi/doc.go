// Package emmaapi is a client of Emma's webhook management API: list, get,
// list event types, create, update and delete webhook registrations of one
// account (https://api.e2ma.net/{account_id}/webhooks).
//
// The client authenticates with HTTP Basic auth (the account's public API
// key as user, the private key as password), paces itself below Emma's limit
// of 180 calls a minute, and retries what Emma refuses for rate (403), what
// fails transiently (5xx, network) when retrying is safe. Errors wrap the
// exported sentinels (ErrUnauthorized, ErrNotFound, ErrRateLimited, ...) so
// callers can branch with errors.Is. The API keys never appear in an error,
// in a log line or in the String of a Config or Client.
//
// It knows HTTP and Emma's API only: it must not import the gateway's
// receiver, sinks or events packages.
package emmaapi
