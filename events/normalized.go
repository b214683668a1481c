package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// ErrNotNormalized is matched (with errors.Is) by every error of
// [UnmarshalNormalized]: the bytes are not a normalized event as the gateway
// publishes it.
var ErrNotNormalized = errors.New("not a normalized event")

// envelopeFields are the fields of the normalized value that are not the
// payload's.
var envelopeFields = map[string]bool{
	"event_name": true, "event_id": true, "received_at": true,
	"delivery": true, "emma_timestamp": true, "resource_url": true, "extra": true,
}

// UnmarshalNormalized rebuilds an [Event] from its normalized JSON (what
// [Event.MarshalJSON] writes, the value of the gateway's Kafka messages):
// Type and Payload of the right concrete type for the event_name (or
// *Unrecognized), ID, ReceivedAt, Delivery, ResourceURL, Extra, and the
// timestamp with Emma's own string (emma_timestamp, see [Time.Emma]).
// Marshaling the result gives the same JSON back.
//
// A field the payload type does not know goes to Extra, so that a consumer
// built against an older version of this package keeps a field a newer
// gateway added (fields are only added within a major version). A known
// field of the wrong type, a missing or empty event_name or event_id, an
// unparsable received_at and an unknown delivery are errors.
func UnmarshalNormalized(b []byte) (*Event, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrNotNormalized)
	}
	ev := &Event{}
	var errs []error
	str := func(key string, dst *string, required bool) {
		raw, ok := top[key]
		if !ok || string(raw) == "null" {
			if required {
				errs = append(errs, fmt.Errorf("no %s", key))
			}
			return
		}
		if err := json.Unmarshal(raw, dst); err != nil || required && *dst == "" {
			errs = append(errs, fmt.Errorf("%s must be a non-empty string", key))
		}
	}
	str("event_name", &ev.Name, true)
	str("event_id", &ev.ID, true)
	str("resource_url", &ev.ResourceURL, false)
	var emmaTimestamp string
	str("emma_timestamp", &emmaTimestamp, false)
	var delivery, received string
	str("delivery", &delivery, true)
	str("received_at", &received, true)
	if delivery != "" {
		ev.Delivery = Delivery(delivery)
		if ev.Delivery != DeliveryPOST && ev.Delivery != DeliveryGET {
			errs = append(errs, fmt.Errorf("delivery %q is neither POST nor GET", delivery))
		}
	}
	if received != "" {
		t, err := time.Parse(time.RFC3339Nano, received)
		if err != nil {
			errs = append(errs, fmt.Errorf("received_at must be RFC 3339: %q", received))
		}
		ev.ReceivedAt = t.UTC()
	}
	if raw, ok := top["extra"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &ev.Extra); err != nil {
			errs = append(errs, errors.New("extra must be a JSON object"))
		}
	}

	ev.Type = unrecognizedType
	if t, ok := Lookup(ev.Name); ok {
		ev.Type = t
	}
	ev.Payload = ev.Type.New()
	pv := reflect.ValueOf(ev.Payload).Elem()
	for key, raw := range top {
		if envelopeFields[key] {
			continue
		}
		// Only canonical names are payload fields here: the gateway writes
		// no aliases, so an alias is a field some other producer added.
		if f, ok := ev.Type.info.fields[key]; ok && f.name == key {
			if err := json.Unmarshal(raw, pv.FieldByIndex(f.index).Addr().Interface()); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
			continue
		}
		if ev.Extra == nil {
			ev.Extra = map[string]json.RawMessage{}
		}
		if _, dup := ev.Extra[key]; !dup {
			ev.Extra[key] = raw
		}
	}
	if ts := ev.Payload.base().Timestamp; ts != nil {
		// Not the RFC 3339 string the value's timestamp was read from.
		ts.emma = emmaTimestamp
	} else if emmaTimestamp != "" {
		// The gateway writes none without a timestamp; kept, not lost.
		if ev.Extra == nil {
			ev.Extra = map[string]json.RawMessage{}
		}
		ev.Extra["emma_timestamp"] = top["emma_timestamp"]
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrNotNormalized, errors.Join(errs...))
	}
	return ev, nil
}
