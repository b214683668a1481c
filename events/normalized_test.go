package events

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestUnmarshalNormalizedRoundTrips decodes each end-to-end test callback
// (one per event type, and an unrecognized one), normalizes it, and rebuilds
// the event from the normalized JSON: same concrete payload type, same
// envelope, and the same JSON once marshaled again.
func TestUnmarshalNormalizedRoundTrips(t *testing.T) {
	files, err := filepath.Glob("../cmd/emma-gateway/testdata/callbacks/*.json")
	if err != nil || len(files) < len(Types())+1 {
		t.Fatalf("callbacks: %d files, %v", len(files), err)
	}
	d := NewDecoder(DecoderConfig{})
	received := time.Date(2026, 11, 26, 12, 0, 0, 123000000, time.UTC)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			payload, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, delivery := range []Delivery{DeliveryPOST, DeliveryGET} {
				ev, err := d.Decode(payload, delivery, received)
				if err != nil {
					t.Fatal(err)
				}
				want, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				got, err := UnmarshalNormalized(want)
				if err != nil {
					t.Fatalf("UnmarshalNormalized(%s): %v", want, err)
				}
				if reflect.TypeOf(got.Payload) != reflect.TypeOf(ev.Payload) || got.Type.Name != ev.Type.Name || got.Recognized() != ev.Recognized() {
					t.Fatalf("payload %T type %q, want %T %q", got.Payload, got.Type.Name, ev.Payload, ev.Type.Name)
				}
				if got.Name != ev.Name || got.ID != ev.ID || !got.ReceivedAt.Equal(ev.ReceivedAt) || got.Delivery != delivery || got.ResourceURL != ev.ResourceURL || len(got.Extra) != len(ev.Extra) || got.EmmaTimestamp() != ev.EmmaTimestamp() {
					t.Fatalf("envelope %+v, want %+v", got, ev)
				}
				if got.Key() != ev.Key() || got.Subject() != ev.Subject() || !got.Time().Equal(ev.Time()) {
					t.Fatalf("key %q subject %q time %v, want %q %q %v", got.Key(), got.Subject(), got.Time(), ev.Key(), ev.Subject(), ev.Time())
				}
				again, err := json.Marshal(got)
				if err != nil {
					t.Fatal(err)
				}
				if string(again) != string(want) {
					t.Fatalf("marshaled again:\n%s\nwant\n%s", again, want)
				}
			}
		})
	}
}

func TestUnmarshalNormalizedTypedFields(t *testing.T) {
	ev, err := UnmarshalNormalized([]byte(`{"event_name":"message_click","event_id":"0123456789abcdef0123456789abcdef","account_id":1743199,"timestamp":"2026-11-20T14:00:00Z","member_id":6160010079,"mailing_id":42,"subject":"Hi","link_id":7,"received_at":"2026-11-26T12:00:00Z","delivery":"GET","extra":{"x":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := ev.Payload.(*MessageClick)
	if !ok {
		t.Fatalf("payload %T", ev.Payload)
	}
	if p.AccountID != 1743199 || p.MemberID != 6160010079 || p.MailingID != 42 || p.Subject != "Hi" || p.LinkID != 7 || p.Timestamp == nil || !p.Timestamp.Equal(time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)) {
		t.Fatalf("payload %+v", p)
	}
	if string(ev.Extra["x"]) != "1" || ev.Delivery != DeliveryGET {
		t.Fatalf("event %+v", ev)
	}
}

// A newer gateway may add fields; an older consumer keeps them in Extra
// rather than dropping them or failing.
func TestUnmarshalNormalizedKeepsUnknownFieldsInExtra(t *testing.T) {
	ev, err := UnmarshalNormalized([]byte(`{"event_name":"member_update","event_id":"0123456789abcdef0123456789abcdef","account_id":1,"timestamp":null,"member_id":null,"new_field":"v","group_id":5,"received_at":"2026-11-26T12:00:00Z","delivery":"POST","extra":{"old":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p := ev.Payload.(*MemberUpdate); p.MemberID != nil || p.Timestamp != nil || p.AccountID != 1 {
		t.Fatalf("payload %+v", p)
	}
	want := map[string]string{"new_field": `"v"`, "group_id": "5", "old": "true"}
	if len(ev.Extra) != len(want) {
		t.Fatalf("extra %v", ev.Extra)
	}
	for k, v := range want {
		if string(ev.Extra[k]) != v {
			t.Errorf("extra[%s] = %s, want %s", k, ev.Extra[k], v)
		}
	}
}

func TestUnmarshalNormalizedRejects(t *testing.T) {
	const ok = `"event_id":"0123456789abcdef0123456789abcdef","account_id":1,"timestamp":"2026-11-20T14:00:00Z","mailing_id":2,"subject":"s","received_at":"2026-11-26T12:00:00Z","delivery":"POST"`
	for _, tc := range []struct {
		name, value, reason string
	}{
		{"not JSON", `nope`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"no event_name", `{` + ok + `}`, "no event_name"},
		{"empty event_name", `{"event_name":"",` + ok + `}`, "event_name must be"},
		{"id of the wrong type", `{"event_name":"mailing_finish",` + strings.Replace(ok, `"mailing_id":2`, `"mailing_id":"x"`, 1) + `}`, "mailing_id"},
		{"bad timestamp", `{"event_name":"mailing_finish",` + strings.Replace(ok, `"2026-11-20T14:00:00Z"`, `"yesterday"`, 1) + `}`, "timestamp"},
		{"bad received_at", `{"event_name":"mailing_finish",` + strings.Replace(ok, `"2026-11-26T12:00:00Z"`, `"2026-11-26"`, 1) + `}`, "received_at"},
		{"bad delivery", `{"event_name":"mailing_finish",` + strings.Replace(ok, `"POST"`, `"PUT"`, 1) + `}`, "delivery"},
		{"no event_id", `{"event_name":"mailing_finish",` + strings.Replace(ok, `"event_id":"0123456789abcdef0123456789abcdef",`, ``, 1) + `}`, "no event_id"},
		{"extra not an object", `{"event_name":"mailing_finish",` + ok + `,"extra":[1]}`, "extra"},
		{"emma_timestamp not a string", `{"event_name":"mailing_finish",` + ok + `,"emma_timestamp":1}`, "emma_timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := UnmarshalNormalized([]byte(tc.value))
			if !errors.Is(err, ErrNotNormalized) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want ErrNotNormalized mentioning %q", err, tc.reason)
			}
		})
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "member_add", "@D:2017-12-21T11:01:11", "0123456789abcdef", `a"b`, `a\b`, "a<b>&c", "tab\t", "café", "\u2028", "\u2029", "\x7f", "~ !", "\b\f\r\n\x00\x1f", "bad \xff utf-8", "😀"} {
		b := appendString([]byte("x"), s)
		want, _ := json.Marshal(s)
		if string(b) != "x"+string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, b[1:], want)
		}
	}
}
