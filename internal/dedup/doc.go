// Package dedup remembers which callbacks this replica has made durable, for
// a bounded time and a bounded number of ids, so that a callback Emma
// delivers again is answered as accepted without being published again
// (SPEC section 3, duplicates).
//
// The unit is the event_id of package events. An id is remembered only once
// its event is durable: a callback that failed is never the reason another
// is answered 200. Two copies of one callback in flight at once publish
// once: the second waits for the first and is a duplicate only if the first
// was made durable; if the first failed, the second publishes itself.
//
// Memory is bounded: at most Config.MaxEntries durable ids, forgotten oldest
// first when the bound is reached (before their window ends), plus one entry
// per callback in flight, which the receiver's in-flight cap bounds. The
// bookkeeping is per process: replicas do not share it, so a duplicate that
// reaches another replica is published again, and consumers still drop
// duplicates by event_id (delivery to Kafka is at-least-once anyway).
//
// It knows neither HTTP nor Kafka: the receiver asks it before publishing.
package dedup
