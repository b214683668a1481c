package events

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
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
	})
}
