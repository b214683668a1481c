package events

import (
	"encoding/json"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the normalized event of SPEC section 4 (what
// [Event.MarshalJSON] returns, byte for byte) to dst and returns the
// extended buffer. A caller that keeps dst in a sync.Pool encodes an event
// without allocating. The error is only for an event built by hand whose
// Extra holds bytes that are not JSON.
func (e *Event) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"event_name":`...)
	dst = appendString(dst, e.Name)
	dst = append(dst, `,"event_id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, ',')
	dst, err := appendPayload(dst, e.Type.info, e.Payload)
	if err != nil {
		return dst, err
	}
	dst = append(dst, `,"received_at":"`...)
	dst = e.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","delivery":`...)
	dst = appendString(dst, string(e.Delivery))
	if raw := e.EmmaTimestamp(); raw != "" {
		dst = append(dst, `,"emma_timestamp":`...)
		dst = appendString(dst, raw)
	}
	if e.ResourceURL != "" {
		dst = append(dst, `,"resource_url":`...)
		dst = appendString(dst, e.ResourceURL)
	}
	if len(e.Extra) > 0 {
		if dst, err = appendExtra(dst, e.Extra); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendPayload appends the payload's fields as json.Marshal writes them,
// without the braces. A payload the type's info does not describe (an
// event built by hand) goes through encoding/json.
func appendPayload(dst []byte, info *typeInfo, p Payload) ([]byte, error) {
	pv := reflect.ValueOf(p)
	if info == nil || !info.encodable || pv.Kind() != reflect.Pointer || pv.IsNil() || pv.Type().Elem() != info.rtype {
		b, err := json.Marshal(p)
		if err != nil {
			return dst, err
		}
		return append(dst, b[1:len(b)-1]...), nil // payload structs always have fields
	}
	v := pv.Elem()
	for i, f := range info.ordered {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, f.name...)
		dst = append(dst, '"', ':')
		fv := v.FieldByIndex(f.index)
		switch f.kind {
		case kindID:
			dst = strconv.AppendInt(dst, fv.Int(), 10)
		case kindString:
			dst = appendString(dst, fv.String())
		case kindIDPtr, kindCountPtr, kindStringPtr, kindTimePtr:
			if fv.IsNil() {
				dst = append(dst, "null"...)
				break
			}
			switch ev := fv.Elem(); f.kind {
			case kindStringPtr:
				dst = appendString(dst, ev.String())
			case kindTimePtr:
				dst = appendTime(dst, fv.Interface().(*Time))
			default:
				dst = strconv.AppendInt(dst, ev.Int(), 10)
			}
		case kindIDs:
			if fv.IsNil() {
				dst = append(dst, "null"...)
				break
			}
			ids := fv.Interface().([]ID)
			dst = append(dst, '[')
			for j, id := range ids {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = strconv.AppendInt(dst, int64(id), 10)
			}
			dst = append(dst, ']')
		}
	}
	return dst, nil
}

// appendTime is Time.MarshalJSON, appended.
func appendTime(dst []byte, t *Time) []byte {
	if t.IsZero() {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendExtra appends `,"extra":{...}` as json.Marshal writes the map:
// keys sorted, values compacted with HTML characters escaped.
func appendExtra(dst []byte, extra map[string]json.RawMessage) ([]byte, error) {
	var stack [16]string
	keys := stack[:0]
	for k, raw := range extra {
		if raw != nil && !json.Valid(raw) {
			_, err := json.Marshal(extra) // its error, word for word
			return dst, err
		}
		keys = append(keys, k)
	}
	sortStrings(keys)
	dst = append(dst, `,"extra":{`...)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		if raw := extra[k]; raw == nil {
			dst = append(dst, "null"...)
		} else {
			dst = appendCompactHTML(dst, raw)
		}
	}
	return append(dst, '}'), nil
}

// sortStrings is an insertion sort: Extra holds a handful of keys, and
// slices.Sort would make the stack array escape.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// appendCompactHTML appends the valid JSON v as encoding/json writes a
// RawMessage: without insignificant space, and with <, >, &, U+2028 and
// U+2029 escaped.
func appendCompactHTML(dst []byte, v []byte) []byte {
	const hex = "0123456789abcdef"
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inString:
			switch {
			case c == '\\':
				dst = append(dst, c, v[i+1])
				i++
				continue
			case c == '"':
				inString = false
			case c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
				continue
			case c == 0xE2 && i+2 < len(v) && v[i+1] == 0x80 && v[i+2]&^1 == 0xA8:
				dst = append(dst, '\\', 'u', '2', '0', '2', hex[v[i+2]&0xF])
				i += 2
				continue
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		case c == '"':
			inString = true
		}
		dst = append(dst, c)
	}
	return dst
}

// appendString appends s as a JSON string exactly as encoding/json writes
// it (HTML characters, U+2028 and U+2029 escaped; invalid UTF-8 as
// U+FFFD), so that the value stays byte-identical to json.Marshal's.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
