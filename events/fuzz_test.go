package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// FuzzDecode checks Decode's contract on any input: it never panics; it
// returns either a malformed error and no event, a validation error and the
// event, or an event whose normalized JSON is valid and whose id and key are
// well formed. The committed corpus in testdata/fuzz/FuzzDecode runs as a
// plain test.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(realMemberAdd))
	d := NewDecoder(DecoderConfig{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := d.Decode(payload, DeliveryPOST, received)
		var ve *ValidationError
		switch {
		case errors.Is(err, ErrMalformed):
			if ev != nil {
				t.Fatalf("malformed input returned an event: %+v", ev)
			}
			return
		case errors.As(err, &ve):
			if ev == nil || len(ve.Errors) == 0 {
				t.Fatalf("validation error without event or fields: %v", err)
			}
			return
		case err != nil:
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		b, merr := json.Marshal(ev)
		if merr != nil || !json.Valid(b) {
			t.Fatalf("normalized value invalid: %v\n%s", merr, b)
		}
		if len(ev.ID) != 32 {
			t.Fatalf("event id %q", ev.ID)
		}
		if k := ev.Key(); k != "" {
			if n, err := strconv.ParseInt(k, 10, 64); err != nil || n <= 0 {
				t.Fatalf("key %q is not a positive decimal id", k)
			}
		}
		// Decoding is deterministic: same input, same id.
		again, _ := d.Decode(payload, DeliveryGET, received)
		if again == nil || again.ID != ev.ID {
			t.Fatalf("second decode gave another id")
		}
		// A byte-order mark before the JSON changes nothing.
		withBOM, err := d.Decode(append([]byte(utf8BOM), payload...), DeliveryPOST, received)
		if err != nil || withBOM.ID != ev.ID {
			t.Fatalf("with a byte-order mark: %v, id %v", err, withBOM)
		}
	})
}

// FuzzEventIDEscapes checks that the event_id does not depend on how a
// string is escaped: a subject written by encoding/json (UTF-8, HTML
// escapes) and the same subject written as Python's json.dumps does by
// default (every non-ASCII character as \u escapes) give one id.
func FuzzEventIDEscapes(f *testing.F) {
	for _, s := range []string{"Café — news", "a/b", `say "hi"`, "tab\there", "😀 <b>&</b>", "\u2028", ""} {
		f.Add(s)
	}
	d := NewDecoder(DecoderConfig{})
	f.Fuzz(func(t *testing.T, subject string) {
		if !utf8.ValidString(subject) {
			return
		}
		goForm, _ := json.Marshal(subject)
		const tmpl = `{"event_name": "message_open", "data": {"account_id": 1, "member_id": 2, "mailing_id": 3, "timestamp": "@D:2026-11-20T10:01:02", "subject": %s}}`
		a, errA := d.Decode([]byte(fmt.Sprintf(tmpl, goForm)), DeliveryPOST, received)
		b, errB := d.Decode([]byte(fmt.Sprintf(tmpl, asciiJSON(subject))), DeliveryPOST, received)
		if errA != nil || errB != nil {
			t.Fatalf("%v / %v", errA, errB)
		}
		if a.ID != b.ID || a.Payload.(*MessageOpen).Subject != b.Payload.(*MessageOpen).Subject {
			t.Fatalf("%s and %s: ids %s and %s", goForm, asciiJSON(subject), a.ID, b.ID)
		}
	})
}

// asciiJSON writes s as Python's json.dumps(s) does with ensure_ascii.
func asciiJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r > 0x7e:
			if r > 0xFFFF {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
