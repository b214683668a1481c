package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseRefusesDeepOrHugePayloadsAsMalformed(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name    string
		payload string
		reason  string // "" means accepted
	}{
		{"100,000-deep array", deep(100_000), "nested deeper"},
		{"deep array in data", `{"event_name":"member_update","data":{"account_id":1,"x":` + deep(MaxDepth) + `}}`, "nested deeper"},
		{"deep object in extra", `{"event_name":"member_update","data":{"account_id":1},"x":` + strings.Repeat(`{"a":`, 70) + `1` + strings.Repeat(`}`, 70) + `}`, "nested deeper"},
		{"brackets inside strings do not count", `{"event_name":"member_update","data":{"account_id":1,"x":"` + strings.Repeat("[{", 1000) + `\"["}}`, ""},
		{"at the depth limit", `{"event_name":"member_update","data":{"account_id":1,"x":` + deep(MaxDepth-2) + `}}`, ""},
		{"over the size limit", `{"event_name":"member_update","pad":"` + strings.Repeat("a", MaxPayloadBytes) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := d.Parse([]byte(tt.payload), DeliveryPOST, received)
			if tt.reason == "" {
				if err != nil || ev == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var me *MalformedError
			if !errors.As(err, &me) || !strings.Contains(me.Reason, tt.reason) || ev != nil {
				t.Fatalf("error %v, event %v; want malformed %q", err, ev, tt.reason)
			}
		})
	}
}

// TestHugeNumbersAreRefusedOrKeptVerbatim: a number beyond float64 or int64
// is never wrapped or rounded into a field. In a strict field it fails
// validation; in a lenient field, or in a field the gateway does not know,
// the raw JSON is kept as sent in extra and the normalized event stays
// valid JSON.
func TestHugeNumbersAreRefusedOrKeptVerbatim(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	tests := []struct {
		name    string
		payload string
		invalid string // the field that fails validation, or ""
		extra   string // the extra key that keeps the raw value, or ""
	}{
		{"1e400 as a strict id", `{"event_name":"message_open","data":{"account_id":1,"member_id":1e400,"mailing_id":2,"timestamp":"@D:2026-01-01T00:00:00"}}`, "member_id", ""},
		{"int64 overflow as a strict id", `{"event_name":"message_open","data":{"account_id":1,"member_id":99999999999999999999,"mailing_id":2,"timestamp":"@D:2026-01-01T00:00:00"}}`, "member_id", ""},
		{"1e400 as a lenient id", `{"event_name":"member_update","data":{"account_id":1,"member_id":1e400}}`, "", "member_id"},
		{"1e400 in an unknown field", `{"event_name":"message_open","data":{"account_id":1,"member_id":3,"mailing_id":2,"timestamp":"@D:2026-01-01T00:00:00","score":1e400}}`, "", "score"},
		{"-1e400 in the envelope", `{"event_name":"member_update","data":{"account_id":1},"weight":-1e400}`, "", "weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := d.Decode([]byte(tt.payload), DeliveryPOST, received)
			if tt.invalid != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Errors[0].Field != tt.invalid || ve.Errors[0].Rule != "type" {
					t.Fatalf("error %v, want a type error on %s", err, tt.invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			raw, ok := ev.Extra[tt.extra]
			if !ok || !strings.Contains(string(raw), "e400") {
				t.Fatalf("extra %q = %s, want the raw number", tt.extra, raw)
			}
			b, err := json.Marshal(ev)
			if err != nil || !json.Valid(b) || !strings.Contains(string(b), "1e400") {
				t.Fatalf("normalized JSON %v: %s", err, b)
			}
			if id, ok := ev.IDField(tt.extra); ok && id != 0 {
				t.Fatalf("%s wrapped to %d", tt.extra, id)
			}
		})
	}
}

func BenchmarkCheckLimitsDeep(b *testing.B) {
	p := []byte(strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000))
	d := NewDecoder(DecoderConfig{})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = d.Parse(p, DeliveryPOST, received)
	}
}
