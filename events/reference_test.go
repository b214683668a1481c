package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
)

// This file keeps the decoder, event id and encoder as they were before the
// one-pass decoder (encoding/json over maps of RawMessage), as the
// reference the new code must agree with: the event id is the dedup
// contract with consumers, and the normalized value the published one.

// refParse is the former Decoder.Parse.
func refParse(d *Decoder, payload []byte, delivery Delivery, receivedAt time.Time) (*Event, error) {
	if !utf8.Valid(payload) {
		return nil, &MalformedError{"not valid UTF-8"}
	}
	payload = bytes.TrimPrefix(payload, []byte(utf8BOM))
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil, &MalformedError{"empty"}
	}
	if err := checkLimits(payload); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		return nil, &MalformedError{notAnObject(err)}
	}
	if top == nil {
		return nil, &MalformedError{"JSON null, not an object"}
	}
	var name string
	rawName, ok := top["event_name"]
	if !ok {
		return nil, &MalformedError{"no event_name"}
	}
	if err := json.Unmarshal(rawName, &name); err != nil || name == "" {
		return nil, &MalformedError{"event_name must be a non-empty string"}
	}
	var data map[string]json.RawMessage
	if raw, ok := top["data"]; ok {
		if err := json.Unmarshal(raw, &data); err != nil {
			return nil, &MalformedError{"data must be a JSON object"}
		}
	}
	typ, recognized := Lookup(name)
	if !recognized {
		typ = unrecognizedType
	}
	ev := &Event{
		Type:       typ,
		Name:       name,
		ID:         refEventID(name, top, data),
		ReceivedAt: receivedAt.UTC(),
		Delivery:   delivery,
		Payload:    typ.New(),
	}
	setResourceURL := func(raw json.RawMessage) bool {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		ev.ResourceURL = s
		return true
	}
	sameString := func(raw json.RawMessage, s string) bool {
		var v string
		return json.Unmarshal(raw, &v) == nil && v == s
	}
	extra := map[string]json.RawMessage{}
	for k, raw := range top {
		switch k {
		case "event_name", "data":
		case "resource_url":
			if !setResourceURL(raw) {
				extra[k] = raw
			}
		default:
			if _, clash := data[k]; clash {
				k = "envelope." + k
			}
			extra[k] = raw
		}
	}
	var errs []FieldError
	pv := reflect.ValueOf(ev.Payload).Elem()
	info := typ.info
	for k, raw := range data {
		if k == "resource_url" && (ev.ResourceURL == "" && setResourceURL(raw) || sameString(raw, ev.ResourceURL)) {
			continue
		}
		f, ok := info.fields[k]
		if !ok || f.name != k && data[f.name] != nil {
			extra[k] = raw
			continue
		}
		fv := pv.FieldByIndex(f.index)
		if err := json.Unmarshal(raw, fv.Addr().Interface()); err != nil {
			if recognized && (typ.Documented || f.strict) {
				errs = append(errs, FieldError{Field: k, Rule: "type", Message: typeMessage(fv.Type(), err)})
			} else {
				fv.SetZero()
				extra[k] = raw
			}
		}
	}
	if len(extra) > 0 {
		ev.Extra = extra
	}
	b := ev.Payload.base()
	if b.Timestamp != nil {
		*b.Timestamp = b.Timestamp.in(d.loc)
	}
	if raw, sent := data["account_id"]; !sent || string(raw) == "null" {
		if id, ok := accountOfResourceURL(ev.ResourceURL); ok {
			b.AccountID = id
		}
	}
	ev.typeErrs = errs
	return ev, nil
}

// refEventID is the former eventID.
func refEventID(name string, top, data map[string]json.RawMessage) string {
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

// refMarshal is the former Event.MarshalJSON.
func refMarshal(e *Event) ([]byte, error) {
	writeString := func(b *bytes.Buffer, s string) {
		q, _ := json.Marshal(s)
		b.Write(q)
	}
	p, err := json.Marshal(e.Payload)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"event_name":`)
	writeString(&b, e.Name)
	b.WriteString(`,"event_id":`)
	writeString(&b, e.ID)
	b.WriteByte(',')
	b.Write(p[1 : len(p)-1])
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

// refDecoder is d with the former validator set-up: every field visited.
func refDecoder(d *Decoder) *Decoder {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	return &Decoder{loc: d.loc, validate: v}
}

// agreeWithReference decodes payload with the decoder and with the
// reference and fails t on any difference: the error, the event id, the
// payload, Extra, the type errors, validation, and the normalized value.
func agreeWithReference(t *testing.T, d, ref *Decoder, payload []byte) {
	t.Helper()
	want, wantErr := refParse(ref, payload, DeliveryPOST, received)
	got, gotErr := d.Parse(payload, DeliveryPOST, received)
	if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
		t.Fatalf("%q: error %v, reference %v", payload, gotErr, wantErr)
	}
	if wantErr != nil {
		if got != nil {
			t.Fatalf("%q: an event with error %v", payload, gotErr)
		}
		return
	}
	if got.ID != want.ID {
		t.Fatalf("%q: event id %s, reference %s", payload, got.ID, want.ID)
	}
	if got.Name != want.Name || got.Type.Name != want.Type.Name || got.ResourceURL != want.ResourceURL || got.EmmaTimestamp() != want.EmmaTimestamp() {
		t.Fatalf("%q: envelope %+v, reference %+v", payload, got, want)
	}
	if !reflect.DeepEqual(got.Extra, want.Extra) {
		t.Fatalf("%q: extra %s, reference %s", payload, got.Extra, want.Extra)
	}
	byField := func(a, b FieldError) int { return strings.Compare(a.Field+a.Rule, b.Field+b.Rule) }
	sortedErrs := func(errs []FieldError) []FieldError {
		errs = slices.Clone(errs)
		slices.SortFunc(errs, byField)
		return errs
	}
	if g, w := sortedErrs(got.typeErrs), sortedErrs(want.typeErrs); !reflect.DeepEqual(g, w) {
		t.Fatalf("%q: type errors %+v, reference %+v", payload, g, w)
	}
	gv, wv := d.Validate(got), ref.Validate(want)
	if (gv == nil) != (wv == nil) {
		t.Fatalf("%q: validation %v, reference %v", payload, gv, wv)
	}
	if gv != nil {
		var ge, we *ValidationError
		if !errors.As(gv, &ge) || !errors.As(wv, &we) || !reflect.DeepEqual(sortedErrs(ge.Errors), sortedErrs(we.Errors)) {
			t.Fatalf("%q: validation %v, reference %v", payload, gv, wv)
		}
		return
	}
	if !reflect.DeepEqual(got.Payload, want.Payload) {
		t.Fatalf("%q: payload %+v, reference %+v", payload, got.Payload, want.Payload)
	}
	wantJSON, err := refMarshal(want)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, err := got.AppendJSON(nil)
	if err != nil || string(gotJSON) != string(wantJSON) {
		t.Fatalf("%q: normalized\n%s (%v)\nreference\n%s", payload, gotJSON, err, wantJSON)
	}
	if m, err := json.Marshal(got); err != nil || string(m) != string(wantJSON) {
		t.Fatalf("%q: json.Marshal\n%s (%v)\nreference\n%s", payload, m, err, wantJSON)
	}
}

// referenceInputs are the callbacks the decoder must read as the reference
// does: every golden callback, the fuzz corpora, and this package's test
// cases.
func referenceInputs(t *testing.T) map[string][]byte {
	t.Helper()
	in := map[string][]byte{}
	for _, glob := range []string{
		"../cmd/emma-gateway/testdata/callbacks/*.json",
		"../receiver/testdata/emma/*.json",
	} {
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %d files, %v", glob, len(files), err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in[f] = b
		}
	}
	for _, dir := range []string{"testdata/fuzz/FuzzDecode", "../receiver/testdata/fuzz/FuzzWebhookPOST", "../receiver/testdata/fuzz/FuzzWebhookGET"} {
		files, err := filepath.Glob(dir + "/*")
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %d files, %v", dir, len(files), err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// The first value of a corpus entry is the callback.
			lines := strings.Split(string(b), "\n")
			if len(lines) < 2 || lines[0] != "go test fuzz v1" {
				t.Fatalf("%s: not a corpus file", f)
			}
			lit := lines[1]
			lit = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(lit, "[]byte("), "string("), ")")
			s, err := strconv.Unquote(lit)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			in[f] = []byte(s)
		}
	}
	for i, s := range referenceCases {
		in["case "+strconv.Itoa(i)] = []byte(s)
	}
	return in
}

// referenceCases are the corners of the envelope: repeated names, escaped
// names, resource_url in its forms, aliases, odd values, white space.
var referenceCases = []string{
	realMemberAdd,
	pythonMemberAdd,
	`{"event_name":"message_open","event_name":"message_click","data":{"account_id":1,"member_id":2,"mailing_id":3,"link_id":4,"timestamp":"@D:2026-11-20T10:01:02"}}`,
	`{"event_name":"message_open","data":{"account_id":1},"data":{"account_id":2,"member_id":2,"mailing_id":3,"timestamp":"@D:2026-11-20T10:01:02","member_id":"9"}}`,
	`{"event_name":"mess\u0061ge_open","d\u0061ta":{"account_id":1,"member_id":2,"mailing_id":3,"subj\u0065ct":"x","subject":"y","timestamp":"@D:2026-11-20T10:01:02"}}`,
	`{"event_name":"member_update","resource_url":null,"data":{"account_id":null,"resource_url":"https://api.e2ma.net/77/members/1"}}`,
	`{"event_name":"member_update","resource_url":5,"data":{"resource_url":"https://api.e2ma.net/77/members/1"}}`,
	`{"event_name":"member_update","resource_url":"https://api.e2ma.net/1/a","data":{"account_id":3,"resource_url":"https://api.e2ma.net/2/b"}}`,
	`{"event_name":"member_update","resource_url":"https://api.e2ma.net/1/a","data":{"account_id":3,"resource_url":"https://api.e2ma.net/1/a"}}`,
	`{"event_name":"member_update","data":{"account_id":3,"resource_url":7}}`,
	`{"event_name":"member_update","data":{"account_id":3,"resource_url":null}}`,
	`{"event_name":"group_update","x":1,"data":{"account_id":1,"x":2,"group_id":"5","group_name":"A <b> & \u2028"}}`,
	`{"event_name":"group_update","data":{"account_id":1,"group_id":5,"member_group_id":null}}`,
	`{"event_name":"import_finish","data":{"account_id":1,"import_id":2,"group_ids":[],"contact_count":"12","timestamp":"2026-11-20T10:01:02.5+02:00"}}`,
	`{"event_name":"import_finish","data":{"account_id":1,"import_id":2,"group_ids":[ 1 , "2", null ],"contact_count":null,"timestamp":"2026-11-20 10:01:02"}}`,
	`{"event_name":"import_finish","data":{"account_id":1,"import_id":2,"group_ids":[1,-2],"timestamp":"@D:2026-02-30T10:01:02"}}`,
	`{"event_name":"member_add_to_group","data":{"account_id":1,"group_ids":"1","member_id":1.5}}`,
	`{"event_name":"member_signup","data":{"account_id":1,"member_id":2,"mailing_id":"x","signup_form_id":null,"timestamp":"@D:2026-11-01T01:30:00"}}`,
	`{"event_name":"member_optout","data":{"account_id":1,"member_id":2,"subject":7,"timestamp":"@D:2026-03-08T02:30:00"}}`,
	`{"event_name":"member_status_update","data":{"account_id":"\u0031","member_id":" 42 ","status":{"a":[1, {"b" : "c"}]},"timestamp":12}}`,
	`{"event_name":"member_birthday","data":{"account_id":9,"member_id":"55","age":40,"timestamp":"@D:2026-01-01T00:00:00"},"extra":{"z":[1,2]}}`,
	`{"event_name":"ping"}`,
	`{"event_name":"ping","data":null}`,
	`{"event_name":"message_share","data":{"account_id":1,"member_id":2,"mailing_id":3,"network":"","subject":"Caf\u00e9 \ud83d\ude00 \ud800","timestamp":"@D:2026-11-20T10:01:02"}}`,
	`{"event_name":"message_click","data":{"account_id":1,"member_id":2,"mailing_id":3,"link_id":0,"timestamp":"@D:2026-11-20T10:01:02","subject":"a\/b\"c\\"}}`,
	` { "event_name" : "mailing_finish" , "data" : { "account_id" : 1 , "mailing_id" : 2 , "timestamp" : "@D:2026-11-20" , "subject" : null } } `,
	`{"event_name":"mailing_finish","data":{"account_id":1,"mailing_id":2,"timestamp":" @D: 2026-11-20T10:01 "}}`,
	`{"event_name":"mailing_start","data":{"account_id":1,"mailing_id":"","subject":null,"timestamp":null}}`,
	`{"event_name":"message_open","data":{"account_id":1,"member_id":2,"mailing_id":3,"timestamp":"@D:2026-11-20T10:01:02"},"member_id":9,"weird":-1e400,"u":"\u003c"}`,
	`{"event_name":"message_open","data":{}}`,
	`{"event_name":"message_open","data":[]}`,
	`{"event_name":null}`,
	`{"event_name":""}`,
	`{}`,
	`[]`,
	`"x"`,
	`nul`,
	`{"event_name":"x"}{}`,
}

func TestDecoderAgreesWithReference(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	ref := refDecoder(d)
	for name, payload := range referenceInputs(t) {
		t.Run(name, func(t *testing.T) {
			agreeWithReference(t, d, ref, payload)
			agreeWithReference(t, d, ref, append([]byte(utf8BOM), payload...))
		})
	}
}

// FuzzDecodeAgreesWithReference checks that the one-pass decoder gives
// every input the event id, payload, errors and normalized value of the
// former encoding/json decoder.
func FuzzDecodeAgreesWithReference(f *testing.F) {
	for _, s := range referenceCases {
		f.Add([]byte(s))
	}
	d := NewDecoder(DecoderConfig{})
	ref := refDecoder(d)
	f.Fuzz(func(t *testing.T, payload []byte) {
		agreeWithReference(t, d, ref, payload)
	})
}

// FuzzAppendString checks appendString against encoding/json on any string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a<b>&c", "\u2028\u2029", "\x00\x1f\b\f", "bad \xff", "😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestAppendQuoteIsStrconvQuote(t *testing.T) {
	for _, k := range []string{"", "account_id", `a"b`, `a\b`, "tab\t", "café", "\x7f", "~ !", "\xff", "😀"} {
		if got := string(appendQuote([]byte("x"), k)); got != "x"+strconv.Quote(k) {
			t.Errorf("appendQuote(%q) = %s, want %s", k, got[1:], strconv.Quote(k))
		}
	}
}

// FuzzValidJSON checks validJSON against json.Valid on what reaches it:
// UTF-8 within the limits.
func FuzzValidJSON(f *testing.F) {
	for _, s := range append(referenceCases, `-`, `-0.5e+7`, `01`, `1.`, `1e`, `"\u00e9\uD83D"`, `"\x"`, `"\u12"`, `[1,]`, `{"a":1,}`, `{"a"}`, `nulll`, ` [ ] `, `"`+"\t"+`"`) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || checkLimits([]byte(s)) != nil {
			return
		}
		if got, want := validJSON(s), json.Valid([]byte(s)); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid %v", s, got, want)
		}
	})
}
