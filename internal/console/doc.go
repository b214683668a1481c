// Package console is the operator console of SPEC section 7: a [Recorder]
// of the recent callbacks and dead letters, kept in bounded memory, and an
// [http.Handler] that serves them at GET /console as a server-rendered page
// that updates itself live when JavaScript runs.
//
// It is plain net/http so that any router (the receiver's Echo server
// included) can mount it; it must not import Echo, a Kafka client or the
// sinks. What it shows of Kafka and the spool comes through a [StateFunc]
// the wiring provides. It never holds a payload or a token: [Callback] and
// [DeadLetter] have no field for either.
package console
