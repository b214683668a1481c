package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var received = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const realMemberAdd = `{"event_name":"member_add","resource_url":"https://api.e2ma.net/1743199/members/1160010079","data":{"signup_form_id":null,"timestamp":"@D:2017-12-21T11:01:11","group_ids":[3065183],"account_id":1743199,"member_id":1160010079}}`

func decode(t *testing.T, payload string) (*Event, error) {
	t.Helper()
	return NewDecoder(DecoderConfig{}).Decode([]byte(payload), DeliveryPOST, received)
}

func mustDecode(t *testing.T, payload string) *Event {
	t.Helper()
	ev, err := decode(t, payload)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return ev
}

func TestDecodeRealMemberAddCallback(t *testing.T) {
	ev := mustDecode(t, realMemberAdd)
	p, ok := ev.Payload.(*MemberAdd)
	if !ok {
		t.Fatalf("payload is %T, want *MemberAdd", ev.Payload)
	}
	if p.AccountID != 1743199 || p.MemberID != 1160010079 || p.SignupFormID != nil || !reflect.DeepEqual(p.GroupIDs, []ID{3065183}) {
		t.Fatalf("payload = %+v", p)
	}
	// Emma's clock: 11:01:11 in Chicago in December is CST, UTC-6.
	if got := p.Timestamp.UTC().Format(time.RFC3339); got != "2017-12-21T17:01:11Z" || ev.EmmaTimestamp() != "@D:2017-12-21T11:01:11" {
		t.Fatalf("timestamp = %s, emma_timestamp = %q", got, ev.EmmaTimestamp())
	}
	if ev.ResourceURL != "https://api.e2ma.net/1743199/members/1160010079" || ev.Extra != nil {
		t.Fatalf("resource_url = %q, extra = %v", ev.ResourceURL, ev.Extra)
	}
	if ev.Key() != "1160010079" || ev.Subject() != "member/1160010079" || !ev.Recognized() {
		t.Fatalf("key %q subject %q recognized %v", ev.Key(), ev.Subject(), ev.Recognized())
	}
}

func TestDecodeNormalizedJSON(t *testing.T) {
	ev := mustDecode(t, `{"event_name":"message_click","x_top":1,"data":{"account_id":"6000000001","member_id":6160010079,"mailing_id":5012345678,"subject":"Hi","link_id":7,"timestamp":"@D:2026-11-20T10:02:03","link_url":"https://e.x/a","resource_url":"https://api.e2ma.net/6000000001/mailings/5012345678"}}`)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("normalized value is not JSON: %v\n%s", err, b)
	}
	want := map[string]any{
		"event_name":     "message_click",
		"event_id":       ev.ID,
		"account_id":     json.Number("6000000001"),
		"member_id":      json.Number("6160010079"),
		"mailing_id":     json.Number("5012345678"),
		"subject":        "Hi",
		"link_id":        json.Number("7"),
		"timestamp":      "2026-11-20T16:02:03Z",
		"received_at":    "2026-11-26T12:00:00Z",
		"delivery":       "POST",
		"emma_timestamp": "@D:2026-11-20T10:02:03",
		"resource_url":   "https://api.e2ma.net/6000000001/mailings/5012345678",
		"extra":          map[string]any{"link_url": "https://e.x/a", "x_top": json.Number("1")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("normalized value\n got %v\nwant %v", got, want)
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := map[string]string{
		"not JSON":             `event_name=message_open`,
		"truncated":            `{"event_name":"message_open"`,
		"array":                `[{"event_name":"message_open"}]`,
		"null":                 `null`,
		"string":               `"message_open"`,
		"no event_name":        `{"data":{"account_id":1}}`,
		"empty event_name":     `{"event_name":"","data":{}}`,
		"event_name not text":  `{"event_name":4,"data":{}}`,
		"data not an object":   `{"event_name":"message_open","data":[1,2]}`,
		"invalid UTF-8":        "{\"event_name\":\"message_open\",\"data\":{\"subject\":\"\xff\xfe\"}}",
		"trailing garbage":     `{"event_name":"message_open"} {}`,
		"100,000 deep nesting": `{"event_name":"x","data":{"a":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}}`,
	}
	for name, payload := range tests {
		t.Run(name, func(t *testing.T) {
			ev, err := decode(t, payload)
			if !errors.Is(err, ErrMalformed) || ev != nil {
				t.Fatalf("Decode = %v, %v; want ErrMalformed and no event", ev, err)
			}
		})
	}
}

func TestDecodeValidationErrorsNameJSONFields(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    []FieldError
	}{
		{"missing required", `{"event_name":"message_open","data":{"account_id":1,"timestamp":"@D:2026-01-01T00:00:00","mailing_id":2}}`,
			[]FieldError{{"member_id", "required", "is required"}}},
		{"no data at all", `{"event_name":"mailing_finish"}`,
			[]FieldError{{"timestamp", "required", "is required"}, {"account_id", "required", "is required"}, {"mailing_id", "required", "is required"}}},
		{"id not numeric", `{"event_name":"message_open","data":{"account_id":1,"member_id":"12x","mailing_id":2,"timestamp":"@D:2026-01-01T00:00:00"}}`,
			[]FieldError{{"member_id", "type", errNotInteger.Error()}}},
		{"id overflows", `{"event_name":"message_open","data":{"account_id":1,"member_id":1e400,"mailing_id":2,"timestamp":"@D:2026-01-01T00:00:00"}}`,
			[]FieldError{{"member_id", "type", errNotInteger.Error()}}},
		{"bad timestamp", `{"event_name":"message_open","data":{"account_id":1,"member_id":3,"mailing_id":2,"timestamp":"soon"}}`,
			[]FieldError{{"timestamp", "type", errBadTime.Error()}}},
		{"subject not a string", `{"event_name":"message_open","data":{"account_id":1,"member_id":3,"mailing_id":2,"timestamp":"@D:2026-01-01T00:00:00","subject":7}}`,
			[]FieldError{{"subject", "type", "must be a string"}}},
		{"documented optional field of wrong type", `{"event_name":"member_signup","data":{"account_id":1,"member_id":3,"signup_form_id":"abc","timestamp":"@D:2026-01-01T00:00:00"}}`,
			[]FieldError{{"signup_form_id", "type", errNotInteger.Error()}}},
		{"lenient event still needs account_id", `{"event_name":"group_create","data":{"group_name":"VIP"}}`,
			[]FieldError{{"account_id", "required", "is required"}}},
		{"lenient event with bad account_id", `{"event_name":"member_update","data":{"account_id":"acme"}}`,
			[]FieldError{{"account_id", "type", errNotInteger.Error()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decode(t, tt.payload)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Decode error = %v, want a ValidationError", err)
			}
			if ev == nil || ve.Event != ev.Name {
				t.Fatalf("event %v, error for %q", ev, ve.Event)
			}
			if !reflect.DeepEqual(ve.Errors, tt.want) {
				t.Fatalf("errors\n got %+v\nwant %+v", ve.Errors, tt.want)
			}
		})
	}
}

func TestDecodeLenientEventsKeepOddFieldsInExtra(t *testing.T) {
	ev := mustDecode(t, `{"event_name":"member_status_update","data":{"account_id":1,"member_id":"6160010079","status":3,"timestamp":"whenever","new":"x"}}`)
	p := ev.Payload.(*MemberStatusUpdate)
	if p.Status != nil || p.Timestamp != nil || *p.MemberID != 6160010079 {
		t.Fatalf("payload = %+v", p)
	}
	want := map[string]json.RawMessage{"status": json.RawMessage(`3`), "timestamp": json.RawMessage(`"whenever"`), "new": json.RawMessage(`"x"`)}
	if !reflect.DeepEqual(ev.Extra, want) {
		t.Fatalf("extra = %s, want %s", ev.Extra, want)
	}
	if ev.Time() != received {
		t.Fatalf("Time() = %v, want the receive time when Emma sent none", ev.Time())
	}
}

func TestDecodeGroupIDAlias(t *testing.T) {
	ev := mustDecode(t, `{"event_name":"group_delete","data":{"account_id":1,"group_id":"4300000003"}}`)
	if g := ev.Payload.(*GroupDelete); g.MemberGroupID == nil || *g.MemberGroupID != 4300000003 || ev.Extra != nil {
		t.Fatalf("payload %+v extra %v", g, ev.Extra)
	}
	if ev.Key() != "4300000003" || ev.Subject() != "group/4300000003" {
		t.Fatalf("key %q subject %q", ev.Key(), ev.Subject())
	}
	// Both names: the canonical one wins and the alias is kept.
	ev = mustDecode(t, `{"event_name":"group_delete","data":{"account_id":1,"group_id":5,"member_group_id":6}}`)
	if *ev.Payload.(*GroupDelete).MemberGroupID != 6 || string(ev.Extra["group_id"]) != "5" {
		t.Fatalf("payload %+v extra %s", ev.Payload, ev.Extra)
	}
}

func TestDecodeKeyFollowsSpecOrder(t *testing.T) {
	tests := map[string]string{
		`{"event_name":"mailing_finish","data":{"account_id":1,"mailing_id":22,"timestamp":"@D:2026-01-01T00:00:00"}}`:                       "mailing/22",
		`{"event_name":"import_finish","data":{"account_id":1,"import_id":33,"timestamp":"@D:2026-01-01T00:00:00"}}`:                         "import/33",
		`{"event_name":"member_signup","data":{"account_id":1,"member_id":44,"mailing_id":22,"timestamp":"@D:2026-01-01T00:00:00"}}`:         "member/44",
		`{"event_name":"mailing_start","data":{"account_id":1}}`:                                                                             "account/1",
		`{"event_name":"member_birthday","data":{"account_id":9,"member_id":"55"}}`:                                                          "account/9",
		`{"event_name":"member_optout","data":{"account_id":1,"member_id":66,"timestamp":"@D:2026-01-01T00:00:00","mailing_id":null}}`:       "member/66",
		`{"event_name":"member_add_to_group","data":{"account_id":1,"member_id":null,"group_ids":[1],"timestamp":"@D:2026-01-01T00:00:00"}}`: "account/1",
	}
	for payload, want := range tests {
		ev := mustDecode(t, payload)
		if ev.Subject() != want || ev.Key() != want[strings.IndexByte(want, '/')+1:] {
			t.Errorf("%s: subject %q key %q, want %q", payload, ev.Subject(), ev.Key(), want)
		}
		if s, k := string(ev.AppendSubject([]byte("x"))), string(ev.AppendKey([]byte("x"))); s != "x"+ev.Subject() || k != "x"+ev.Key() {
			t.Errorf("%s: AppendSubject %q, AppendKey %q", payload, s, k)
		}
	}
	// An unrecognized event without an account has neither.
	ev := mustDecode(t, `{"event_name":"no_such_event","data":{}}`)
	if ev.Key() != "" || ev.Subject() != "" || len(ev.AppendKey(nil)) != 0 || len(ev.AppendSubject(nil)) != 0 {
		t.Errorf("unrecognized event without account: key %q subject %q", ev.AppendKey(nil), ev.AppendSubject(nil))
	}
}

func TestDecodeUnrecognizedKeepsEverything(t *testing.T) {
	ev := mustDecode(t, `{"event_name":"member_birthday","data":{"account_id":9,"member_id":"55","age":40,"timestamp":"@D:2026-01-01T00:00:00"}}`)
	if ev.Recognized() || ev.Name != "member_birthday" || ev.AccountID() != 9 {
		t.Fatalf("event = %+v", ev)
	}
	if string(ev.Extra["member_id"]) != `"55"` || string(ev.Extra["age"]) != "40" || len(ev.Extra) != 2 {
		t.Fatalf("extra = %s", ev.Extra)
	}
	// Without an account, an unrecognized event is still accepted, keyless.
	ev = mustDecode(t, `{"event_name":"ping"}`)
	if ev.Key() != "" || ev.AccountID() != 0 {
		t.Fatalf("key %q account %d", ev.Key(), ev.AccountID())
	}
}

func TestEventIDIsStableAcrossFormattingAndDelivery(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	a, _ := d.Decode([]byte(realMemberAdd), DeliveryPOST, received)
	b, _ := d.Decode([]byte(`{
		"data": {"member_id": 1160010079, "account_id": 1743199, "group_ids": [ 3065183 ],
		         "timestamp": "@D:2017-12-21T11:01:11", "signup_form_id": null},
		"event_name": "member_add",
		"resource_url": "https://api.e2ma.net/1743199/members/1160010079"}`), DeliveryGET, received.Add(time.Hour))
	if a.ID != b.ID || len(a.ID) != 32 {
		t.Fatalf("ids %q and %q, want one 32-hex id for the same callback", a.ID, b.ID)
	}
	// resource_url counts the same in the envelope or in data.
	c, _ := d.Decode([]byte(`{"event_name":"member_add","data":{"resource_url":"https://api.e2ma.net/1743199/members/1160010079","signup_form_id":null,"timestamp":"@D:2017-12-21T11:01:11","group_ids":[3065183],"account_id":1743199,"member_id":1160010079}}`), DeliveryPOST, received)
	if c.ID != a.ID {
		t.Fatalf("resource_url in data changed the id: %s vs %s", c.ID, a.ID)
	}
	for _, other := range []string{
		strings.Replace(realMemberAdd, "11:01:11", "11:01:12", 1),
		strings.Replace(realMemberAdd, `"account_id":1743199`, `"account_id":1743198`, 1),
		strings.Replace(realMemberAdd, `"member_add"`, `"member_signup"`, 1),
		strings.Replace(realMemberAdd, `[3065183]`, `[3065183,1]`, 1),
	} {
		o, _ := d.Decode([]byte(other), DeliveryPOST, received)
		if o == nil || o.ID == a.ID {
			t.Errorf("a different callback got the same id: %s", other)
		}
	}
}

func TestRejectionKeepsPayloadAndReason(t *testing.T) {
	payload := `{"event_name":"message_open","data":{"account_id":1}}`
	ev, err := decode(t, payload)
	r := NewRejection([]byte(payload), DeliveryGET, "", received, ev, err)
	if r.Reason != ReasonInvalid || r.EventName != "message_open" || string(r.Payload) != payload || len(r.Errors) != 3 || len(r.ID) != 32 {
		t.Fatalf("rejection = %+v", r)
	}
	_, err = decode(t, "nope")
	r = NewRejection([]byte("nope"), DeliveryPOST, "text/plain", received, nil, err)
	if r.Reason != ReasonMalformed || r.EventName != "" || !strings.Contains(r.Detail, "not JSON") {
		t.Fatalf("rejection = %+v", r)
	}
}

func TestIDField(t *testing.T) {
	ev := mustDecode(t, realMemberAdd)
	if id, ok := ev.IDField("member_id"); !ok || id != 1160010079 {
		t.Fatalf("member_id = %d, %v", id, ok)
	}
	if id, ok := ev.IDField("account_id"); !ok || id != 1743199 {
		t.Fatalf("account_id = %d, %v", id, ok)
	}
	for _, name := range []string{"signup_form_id", "mailing_id", "subject", "nope"} {
		if _, ok := ev.IDField(name); ok {
			t.Errorf("%s reported present", name)
		}
	}
}

// pythonMemberAdd is realMemberAdd as Python's json.dumps writes it: ", "
// and ": " separators, keys in another order, null for the missing id.
const pythonMemberAdd = `{"data": {"account_id": 1743199, "member_id": 1160010079, "group_ids": [3065183], "timestamp": "@D:2017-12-21T11:01:11", "signup_form_id": null}, "event_name": "member_add", "resource_url": "https://api.e2ma.net/1743199/members/1160010079"}`

func TestPythonLayoutDecodesLikeTheCompactForm(t *testing.T) {
	compact := mustDecode(t, realMemberAdd)
	want, _ := json.Marshal(compact)
	for name, payload := range map[string]string{
		"json.dumps":                   pythonMemberAdd,
		"json.dumps with indent":       "{\n  \"event_name\": \"member_add\",\n  \"resource_url\": \"https://api.e2ma.net/1743199/members/1160010079\",\n  \"data\": {\n    \"signup_form_id\": null,\n    \"account_id\": 1743199,\n    \"member_id\": 1160010079,\n    \"group_ids\": [\n      3065183\n    ],\n    \"timestamp\": \"@D:2017-12-21T11:01:11\"\n  }\n}\n",
		"byte-order mark":              "\uFEFF" + pythonMemberAdd,
		"byte-order mark, compact":     "\uFEFF" + realMemberAdd,
		"escaped ASCII (ensure_ascii)": strings.Replace(pythonMemberAdd, `"member_add"`, `"member\u005fadd"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			ev := mustDecode(t, payload)
			got, _ := json.Marshal(ev)
			if ev.ID != compact.ID || string(got) != string(want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestEventIDIgnoresHowStringsAreEscaped(t *testing.T) {
	const open = `{"event_name":"message_open","data":{"account_id":1,"member_id":2,"mailing_id":3,"subject":%s,"timestamp":"@D:2026-11-20T10:01:02"}}`
	same := func(a, b string) {
		t.Helper()
		x, y := mustDecode(t, fmt.Sprintf(open, a)), mustDecode(t, fmt.Sprintf(open, b))
		if x.ID != y.ID {
			t.Errorf("subject %s and %s: ids %s and %s", a, b, x.ID, y.ID)
		}
	}
	same(`"Café — news"`, `"Caf\u00e9 \u2014 news"`) // Python's ensure_ascii
	same(`"a/b"`, `"a\/b"`)
	same(`"tab\there"`, `"tab\u0009here"`)
	same(`"say \"hi\""`, `"say \u0022hi\u0022"`)
	same(`"😀"`, `"\ud83d\ude00"`)
	if x, y := mustDecode(t, fmt.Sprintf(open, `"Café"`)), mustDecode(t, fmt.Sprintf(open, `"Cafe"`)); x.ID == y.ID {
		t.Error("different subjects share an id")
	}
}

func TestDecoderZeroConfigReadsEmmasClock(t *testing.T) {
	ev := mustDecode(t, `{"event_name":"message_open","data":{"account_id":1,"member_id":2,"mailing_id":3,"timestamp":"@D:2026-07-04T12:00:00"}}`)
	if got := ev.Time().Format(time.RFC3339); got != "2026-07-04T17:00:00Z" {
		t.Fatalf("zero DecoderConfig: %s, want 12:00 CDT", got)
	}
	utc := NewDecoder(DecoderConfig{Location: time.UTC})
	ev, err := utc.Decode([]byte(`{"event_name":"message_open","data":{"account_id":1,"member_id":2,"mailing_id":3,"timestamp":"@D:2026-07-04T12:00:00"}}`), DeliveryGET, received)
	if err != nil || ev.Time().Format(time.RFC3339) != "2026-07-04T12:00:00Z" {
		t.Fatalf("Location UTC: %v, %v", ev, err)
	}
	if loc, err := time.LoadLocation(EmmaTimezone); err != nil || loc.String() != "America/Chicago" {
		t.Fatalf("EmmaTimezone %q: %v", EmmaTimezone, err)
	}
}

func TestAccountFromResourceURL(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		account ID
		invalid bool
	}{
		{"data lacks account_id", `{"event_name":"member_add","resource_url":"https://api.e2ma.net/1743199/members/1160010079","data":{"member_id":1160010079,"timestamp":"@D:2017-12-21T11:01:11"}}`, 1743199, false},
		{"account_id null", `{"event_name":"member_add","resource_url":"https://api.e2ma.net/1743199/members/1160010079","data":{"account_id":null,"member_id":1160010079,"timestamp":"@D:2017-12-21T11:01:11"}}`, 1743199, false},
		{"resource_url inside data", `{"event_name":"import_finish","data":{"import_id":9,"resource_url":"https://api.e2ma.net/1743199/members/imports/9","timestamp":"@D:2017-12-21T11:01:11"}}`, 1743199, false},
		{"undocumented event", `{"event_name":"group_create","resource_url":"https://api.e2ma.net/42/groups/5","data":{"group_id":5}}`, 42, false},
		{"both present and disagreeing: data wins", `{"event_name":"member_add","resource_url":"https://api.e2ma.net/999/members/1160010079","data":{"account_id":1743199,"member_id":1160010079,"timestamp":"@D:2017-12-21T11:01:11"}}`, 1743199, false},
		{"other host names no account", `{"event_name":"member_add","resource_url":"https://evil.example/1743199/members/1","data":{"member_id":1,"timestamp":"@D:2017-12-21T11:01:11"}}`, 0, true},
		{"no number in the path", `{"event_name":"member_add","resource_url":"https://api.e2ma.net/members/1","data":{"member_id":1,"timestamp":"@D:2017-12-21T11:01:11"}}`, 0, true},
		{"neither", `{"event_name":"member_add","data":{"member_id":1,"timestamp":"@D:2017-12-21T11:01:11"}}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decode(t, tt.payload)
			var ve *ValidationError
			if tt.invalid {
				if !errors.As(err, &ve) || ve.Errors[0].Field != "account_id" {
					t.Fatalf("Decode error %v, want account_id required", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.AccountID() != tt.account {
				t.Fatalf("account %d, want %d", ev.AccountID(), tt.account)
			}
		})
	}
	ev := mustDecode(t, tests[4].payload)
	if id, ok := ev.ResourceAccountID(); !ok || id != 999 || ev.AccountID() != 1743199 {
		t.Fatalf("ResourceAccountID = %d, %v; AccountID %d", id, ok, ev.AccountID())
	}
}

func TestMalformedSaysWhatArrived(t *testing.T) {
	tests := map[string]string{
		`[{"event_name":"message_open"}]`: "a JSON array, not an object",
		`"message_open"`:                  "a JSON string, not an object",
		`42`:                              "a JSON number, not an object",
		`true`:                            "a JSON boolean, not an object",
		`null`:                            "JSON null, not an object",
		"\uFEFF[1]":                       "a JSON array, not an object",
		`event_name=message_open`:         "not JSON: invalid character 'e' looking for beginning of value (at byte 1)",
		"\uFEFF":                          "empty",
		" ":                               "empty",
	}
	for payload, want := range tests {
		_, err := decode(t, payload)
		var me *MalformedError
		if !errors.As(err, &me) || me.Reason != want {
			t.Errorf("%q: %v, want reason %q", payload, err, want)
		}
	}
}
