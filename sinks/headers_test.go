package sinks

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/emma-gateway/emma-gateway/events"
)

// binaryMessage cuts the key and every header value from one buffer: each
// must be what SPEC section 4 says, and none may share room with the next.
func TestBinaryMessageHeaders(t *testing.T) {
	d := events.NewDecoder(events.DecoderConfig{})
	received := time.Date(2026, 11, 20, 16, 1, 2, 345000000, time.UTC)
	ev, err := d.Decode([]byte(`{"event_name":"message_open","data":{"account_id":1743199,"member_id":6160010079,"mailing_id":5012345678,"subject":"Hi","timestamp":"@D:2026-11-20T10:01:02"}}`), events.DeliveryPOST, received)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := d.Decode([]byte(`{"event_name":"member_birthday","data":{}}`), events.DeliveryGET, received)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ev       *events.Event
		keyField string
		key      string
		headers  map[string]string
	}{
		{ev, KeyDefault, "6160010079", map[string]string{
			"ce_specversion": "1.0", "ce_id": ev.ID, "ce_source": "https://api.e2ma.net/1743199", "ce_type": "com.myemma.message_open",
			"ce_time": "2026-11-20T16:01:02Z", "ce_subject": "member/6160010079",
			"ce_dataschema": "https://github.com/emma-gateway/emma-gateway/schemas/message_open.json", "content-type": "application/json",
		}},
		{ev, "mailing_id", "5012345678", nil},
		{ev, "event_id", ev.ID, nil},
		{ev, "no_such_field", "6160010079", nil},
		{unknown, KeyDefault, "", map[string]string{
			"ce_specversion": "1.0", "ce_id": unknown.ID, "ce_source": "https://api.e2ma.net", "ce_type": "com.myemma.member_birthday",
			"ce_time":       "2026-11-20T16:01:02.345Z",
			"ce_dataschema": "https://github.com/emma-gateway/emma-gateway/schemas/unrecognized.json", "content-type": "application/json",
		}},
	}
	for _, tc := range cases {
		value := []byte(`{"v":1}`)
		m := binaryMessage("t", tc.ev, tc.keyField, value)
		if string(m.Key) != tc.key || (tc.key == "" && m.Key != nil) || &m.Value[0] != &value[0] || m.Topic != "t" {
			t.Errorf("%s key %s: key %q (nil %v), value shared %v, topic %q", tc.ev.Name, tc.keyField, m.Key, m.Key == nil, &m.Value[0] == &value[0], m.Topic)
		}
		if cap(m.Key) != len(m.Key) {
			t.Errorf("key has room after it: cap %d, len %d", cap(m.Key), len(m.Key))
		}
		got := map[string]string{}
		for _, h := range m.Headers {
			got[h.Key] = string(h.Value)
			if cap(h.Value) != len(h.Value) {
				t.Errorf("%s has room after it: cap %d, len %d", h.Key, cap(h.Value), len(h.Value))
			}
		}
		if got["ce_source"] != source(tc.ev) || got["ce_subject"] != tc.ev.Subject() {
			t.Errorf("ce_source %q, ce_subject %q; want %q, %q", got["ce_source"], got["ce_subject"], source(tc.ev), tc.ev.Subject())
		}
		if tc.headers != nil {
			if diff := cmp.Diff(tc.headers, got); diff != "" {
				t.Errorf("%s headers (-want +got):\n%s", tc.ev.Name, diff)
			}
		}
		if string(routeKey(tc.ev, tc.keyField)) != string(appendRouteKey(nil, tc.ev, tc.keyField)) {
			t.Errorf("appendRouteKey %q, routeKey %q", appendRouteKey(nil, tc.ev, tc.keyField), routeKey(tc.ev, tc.keyField))
		}
	}
}
