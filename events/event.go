package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// Event is one decoded Emma callback.
type Event struct {
	// Type is the event's type; its Name is empty when the event_name is not
	// one the gateway knows.
	Type Type
	// Name is the event_name Emma sent.
	Name string
	// ID is a stable id of the callback's content (see [Event.ID]'s
	// computation in eventID): the same callback delivered twice, by GET or by
	// POST, gets the same id, so consumers can drop duplicates.
	ID string
	// ReceivedAt is when the gateway received the callback, in UTC.
	ReceivedAt time.Time
	// Delivery is the HTTP method of the callback.
	Delivery Delivery
	// ResourceURL is Emma's resource_url, from the envelope or the data.
	ResourceURL string
	// Payload holds the typed fields, a pointer to one of this package's
	// payload structs (*Unrecognized when Type.Name is empty).
	Payload Payload
	// Extra holds every field Emma sent that Payload has no field for, or
	// whose value a leniently decoded field could not take, verbatim.
	Extra map[string]json.RawMessage

	typeErrs []FieldError // fields of a wrong type, found by Parse
}

// Recognized reports whether the event's name is one the gateway knows.
func (e *Event) Recognized() bool { return e.Type.Name != "" }

// AccountID returns the Emma account of the event (0 when an unrecognized
// event carries none).
func (e *Event) AccountID() ID { return e.Payload.base().AccountID }

// Time returns when the event happened: Emma's timestamp, or ReceivedAt when
// Emma sent none.
func (e *Event) Time() time.Time {
	if ts := e.Payload.base().Timestamp; ts != nil {
		return ts.Time.UTC()
	}
	return e.ReceivedAt
}

// Key returns the Kafka message key: the decimal id of the entity the event
// is about, the first present of member_id, mailing_id, import_id, group id
// and account_id, so that one member's events stay in one partition. It is
// empty only for an unrecognized event without an account_id.
func (e *Event) Key() string {
	id, _, ok := e.Type.info.keyOf(e.Payload)
	if !ok {
		return ""
	}
	return id.String()
}

// Subject names the entity the event is about, for CloudEvents' subject:
// "member/123", "mailing/7", "import/9", "group/5" or "account/1".
func (e *Event) Subject() string {
	id, kind, ok := e.Type.info.keyOf(e.Payload)
	if !ok {
		return ""
	}
	return kind + "/" + id.String()
}

// AppendKey appends [Event.Key] to dst, for a caller that builds a message
// without a string per field.
func (e *Event) AppendKey(dst []byte) []byte {
	id, _, ok := e.Type.info.keyOf(e.Payload)
	if !ok {
		return dst
	}
	return strconv.AppendInt(dst, int64(id), 10)
}

// AppendSubject appends [Event.Subject] to dst.
func (e *Event) AppendSubject(dst []byte) []byte {
	id, kind, ok := e.Type.info.keyOf(e.Payload)
	if !ok {
		return dst
	}
	dst = append(dst, kind...)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, int64(id), 10)
}

// EmmaTimestamp returns the event's timestamp exactly as Emma wrote it
// ("@D:2017-12-21T11:01:11"), empty when Emma sent none.
func (e *Event) EmmaTimestamp() string {
	if ts := e.Payload.base().Timestamp; ts != nil {
		return ts.emma
	}
	return ""
}

// MarshalJSON renders the normalized event of SPEC section 4: event_name,
// event_id, the payload's fields (account_id, timestamp and the typed fields),
// received_at, delivery, emma_timestamp when Emma sent a timestamp,
// resource_url when given, and extra when not empty. It is [Event.AppendJSON]
// into a new buffer.
func (e *Event) MarshalJSON() ([]byte, error) {
	b, err := e.AppendJSON(make([]byte, 0, 512))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// eventID hashes what identifies a callback: its name and its content (the
// data object, which holds the account, and any other envelope field),
// canonicalized so that key order and whitespace do not matter at the top
// two levels. resource_url counts once whether it came in the envelope or
// in data. top and data are the members of the envelope and of data,
// sorted by name without repeats, as slices of src.
//
// The hashed bytes are, in order: "emma-gateway/v1\x00", the name, "\x00";
// then three groups, each a run of strconv.Quote(name) ":" value "\x00"
// ended by "\x01": resource_url alone (its value empty when absent), the
// data's members but resource_url, the envelope's members but event_name,
// data and resource_url. A value is the member's JSON compacted, its
// escaped strings in one canonical form (canonicalStrings). These bytes
// are the dedup contract with consumers: the ids of the golden files must
// never change.
func eventID(src, name string, top, data []member) string {
	var stack [1024]byte
	b := append(stack[:0], "emma-gateway/v1\x00"...)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, `"resource_url":`...)
	if m, ok := find(top, "resource_url"); ok {
		b = appendCanonical(b, src[m.start:m.end])
	} else if m, ok := find(data, "resource_url"); ok {
		b = appendCanonical(b, src[m.start:m.end])
	}
	b = append(b, 0, 1)
	for _, m := range data {
		if m.key != "resource_url" {
			b = appendMember(b, src, m)
		}
	}
	b = append(b, 1)
	for _, m := range top {
		switch m.key {
		case "event_name", "data", "resource_url":
		default:
			b = appendMember(b, src, m)
		}
	}
	b = append(b, 1)
	sum := sha256.Sum256(b)
	var id [32]byte
	hex.Encode(id[:], sum[:16])
	return string(id[:])
}

func appendMember(b []byte, src string, m member) []byte {
	b = appendQuote(b, m.key)
	b = append(b, ':')
	b = appendCanonical(b, src[m.start:m.end])
	return append(b, 0)
}

// appendQuote is strconv.AppendQuote, which the id hashes, with a short
// way for the plain ASCII names Emma uses.
func appendQuote(b []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, k)
		}
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"')
}

// appendCanonical appends the valid JSON value v compacted, its strings
// with escapes rewritten: Python's json.dumps escapes every non-ASCII
// character ("Caf\u00e9"); another writer sends "Café". Same string, same
// id. Only strings with escapes pay for this.
func appendCanonical(b []byte, v string) []byte {
	start := len(b)
	b = appendCompact(b, v)
	if bytes.IndexByte(b[start:], '\\') >= 0 {
		// A copy: canonicalStrings hands slices to encoding/json, which
		// would move b, usually the caller's stack array, to the heap.
		c := canonicalStrings(bytes.Clone(b[start:]))
		b = append(b[:start], c...)
	}
	return b
}

// canonicalStrings rewrites every string of the compact JSON value v that
// holds an escape into its one canonical form: only '"', '\\' and control
// characters escaped, everything else as UTF-8. The rest of v is unchanged.
func canonicalStrings(v []byte) []byte {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); {
		if v[i] != '"' {
			out = append(out, v[i])
			i++
			continue
		}
		j, escaped := i+1, false
		for j < len(v) && v[j] != '"' {
			if v[j] == '\\' {
				escaped = true
				j++
			}
			j++
		}
		if j >= len(v) { // cannot happen in compact JSON; keep the bytes
			return append(out, v[i:]...)
		}
		lit := v[i : j+1]
		var s string
		if !escaped || json.Unmarshal(lit, &s) != nil {
			out = append(out, lit...)
		} else {
			out = appendCanonicalString(out, s)
		}
		i = j + 1
	}
	return out
}

func appendCanonicalString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}

// IDField returns the id field named name (its JSON name: "member_id",
// "mailing_id", "member_group_id", ...) of the event's payload, when the
// event's type has that field and Emma set it.
func (e *Event) IDField(name string) (ID, bool) {
	return e.Type.info.idField(e.Payload, name)
}
