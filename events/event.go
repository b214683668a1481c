package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
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
// resource_url when given, and extra when not empty.
func (e *Event) MarshalJSON() ([]byte, error) {
	p, err := json.Marshal(e.Payload)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(p) + 256)
	b.WriteString(`{"event_name":`)
	writeString(&b, e.Name)
	b.WriteString(`,"event_id":`)
	writeString(&b, e.ID)
	b.WriteByte(',')
	b.Write(p[1 : len(p)-1]) // payload structs always have fields
	b.WriteString(`,"received_at":"`)
	b.WriteString(e.ReceivedAt.UTC().Format(time.RFC3339Nano))
	b.WriteString(`","delivery":`)
	writeString(&b, string(e.Delivery))
	if raw := e.EmmaTimestamp(); raw != "" {
		b.WriteString(`,"emma_timestamp":`)
		writeString(&b, raw)
	}
	if e.ResourceURL != "" {
		b.WriteString(`,"resource_url":`)
		writeString(&b, e.ResourceURL)
	}
	if len(e.Extra) > 0 {
		x, err := json.Marshal(e.Extra)
		if err != nil {
			return nil, err
		}
		b.WriteString(`,"extra":`)
		b.Write(x)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeString writes s as a JSON string, exactly as encoding/json would.
// The strings it gets (names, ids, methods, Emma's timestamps) are plain
// ASCII, which needs no escape and so no json.Marshal and its allocation.
func writeString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			b.Write(q)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}

// eventID hashes what identifies a callback: its name and its content (the
// data object, which holds the account, and any other envelope field),
// canonicalized so that key order and whitespace do not matter at the top
// two levels. resource_url counts once whether it came in the envelope or
// in data.
func eventID(name string, top, data map[string]json.RawMessage) string {
	h := sha256.New()
	var buf bytes.Buffer
	write := func(m map[string]json.RawMessage, skip ...string) {
		keys := make([]string, 0, len(m))
		for k := range m {
			if !slices.Contains(skip, k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			buf.Reset()
			if json.Compact(&buf, m[k]) != nil {
				buf.Reset()
				buf.Write(m[k])
			} else if bytes.IndexByte(buf.Bytes(), '\\') >= 0 {
				// Python's json.dumps escapes every non-ASCII character
				// ("Caf\u00e9"); another writer sends "Café". Same string,
				// same id. Only strings with escapes pay for this.
				unescaped := canonicalStrings(buf.Bytes())
				buf.Reset()
				buf.Write(unescaped)
			}
			h.Write([]byte(strconv.Quote(k)))
			h.Write([]byte{':'})
			h.Write(buf.Bytes())
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	h.Write([]byte("emma-gateway/v1\x00" + name + "\x00"))
	rurl := top["resource_url"]
	if rurl == nil {
		rurl = data["resource_url"]
	}
	write(map[string]json.RawMessage{"resource_url": rurl})
	write(data, "resource_url")
	write(top, "event_name", "data", "resource_url")
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
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
