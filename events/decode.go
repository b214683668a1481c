package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Emma's zone must load on machines without zoneinfo
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
)

// Delivery is the HTTP method Emma used to deliver a callback.
type Delivery string

// The two ways Emma delivers a callback (SPEC section 2).
const (
	DeliveryPOST Delivery = "POST"
	DeliveryGET  Delivery = "GET"
)

// ErrMalformed is matched (with errors.Is) by every error for input that is
// not an Emma callback at all: not UTF-8 JSON, not an object, no event_name.
var ErrMalformed = errors.New("malformed callback")

// MalformedError says why a payload is not an Emma callback.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return "malformed callback: " + e.Reason }

// Is makes errors.Is(err, ErrMalformed) true.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// FieldError is one problem with one field of a callback's data.
type FieldError struct {
	// Field is the field's JSON name, as Emma sent it.
	Field string `json:"field"`
	// Rule is the rule that failed: "required", "type", ...
	Rule string `json:"rule"`
	// Message is a sentence for people.
	Message string `json:"message"`
}

// ValidationError reports a recognized event whose data fails validation.
type ValidationError struct {
	Event  string
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "invalid %s event:", e.Event)
	for i, f := range e.Errors {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %s %s", f.Field, f.Message)
	}
	return b.String()
}

// EmmaTimezone is the IANA zone of Emma's clock. Emma writes its "@D:"
// dates without a zone, in US Central local time (SPEC section 2: captured
// callbacks match their receivers' logs read as Central time, not as UTC;
// Emma is based in Nashville). It is the zone of a zero [DecoderConfig] and
// the default of the gateway's --timezone.
const EmmaTimezone = "America/Chicago"

// DecoderConfig configures a [Decoder]. Its zero value reads Emma's
// callbacks as Emma writes them.
type DecoderConfig struct {
	// Location is where zone-less times (Emma's "@D:" dates) are placed, by
	// the daylight-saving rule of [PlaceWallClock]. Default (nil): Emma's
	// own zone, [EmmaTimezone].
	Location *time.Location
}

// Decoder turns Emma callbacks into events. It is safe for concurrent use;
// one Decoder (and so one validator, whose caches are per instance) should
// serve a whole process.
type Decoder struct {
	loc      *time.Location
	validate *validator.Validate
}

// NewDecoder returns a Decoder. This package links the time zone database
// (time/tzdata), so Emma's zone loads on any machine; NewDecoder panics if
// it does not, which would be a broken build, not bad input.
func NewDecoder(cfg DecoderConfig) *Decoder {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := bytes.Cut([]byte(f.Tag.Get("json")), []byte(","))
		if string(name) == "-" {
			return ""
		}
		return string(name)
	})
	skipUnruled(v)
	loc := cfg.Location
	if loc == nil {
		var err error
		if loc, err = time.LoadLocation(EmmaTimezone); err != nil {
			panic("events: time/tzdata is linked, yet " + EmmaTimezone + " does not load: " + err.Error())
		}
	}
	return &Decoder{loc: loc, validate: v}
}

// skipUnruled tells v to skip every payload field that has no rule, the
// timestamp and the Group fields among them: the validator would otherwise
// box each field's value (an allocation) only to find nothing to check.
// Structs that hold a rule (Base) are still entered.
func skipUnruled(v *validator.Validate) {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type) bool
	walk = func(t reflect.Type) (ruled bool) {
		rules := map[string]string{}
		for i := range t.NumField() {
			sf := t.Field(i)
			switch {
			case sf.Tag.Get("validate") != "":
				ruled = true
			case sf.Anonymous && sf.Type.Kind() == reflect.Struct && walk(sf.Type):
				ruled = true
			default:
				rules[sf.Name] = "-"
			}
		}
		if !seen[t] && len(rules) > 0 {
			seen[t] = true
			v.RegisterStructValidationMapRules(rules, reflect.New(t).Elem().Interface())
		}
		return ruled
	}
	for _, t := range append(Types(), unrecognizedType) {
		walk(t.info.rtype)
	}
}

// Decode decodes one callback (the JSON envelope) delivered by delivery at
// receivedAt, and validates it: it is [Decoder.Parse] then
// [Decoder.Validate].
//
// The error is a *[MalformedError] when payload is not a callback (no event
// is returned), or a *[ValidationError] when a recognized event fails
// validation; the event is then returned too, for the record. An event whose
// name is not known is returned without error and reports !Recognized().
func (d *Decoder) Decode(payload []byte, delivery Delivery, receivedAt time.Time) (*Event, error) {
	ev, err := d.Parse(payload, delivery, receivedAt)
	if err != nil {
		return nil, err
	}
	return ev, d.Validate(ev)
}

// Parse decodes a callback without validating it. Its only error is a
// *[MalformedError]; fields of a wrong type are reported by Validate.
func (d *Decoder) Parse(payload []byte, delivery Delivery, receivedAt time.Time) (*Event, error) {
	if !utf8.Valid(payload) {
		return nil, &MalformedError{"not valid UTF-8"}
	}
	// Python writes a byte-order mark when a file or stream is opened as
	// "utf-8-sig"; it says nothing JSON needs.
	payload = bytes.TrimPrefix(payload, []byte(utf8BOM))
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil, &MalformedError{"empty"}
	}
	if err := checkLimits(payload); err != nil {
		return nil, err
	}
	// One copy of the callback: every string of the event (names, subject,
	// Emma's timestamp, resource_url) is a slice of it.
	src := string(payload)
	if !validJSON(src) || src[skipSpace(src, 0)] != '{' {
		return nil, notAnObjectError(payload)
	}
	var topStack [8]member
	top := uniqueSorted(objectMembers(src, skipSpace(src, 0), topStack[:0]))
	nameM, ok := find(top, "event_name")
	if !ok {
		return nil, &MalformedError{"no event_name"}
	}
	name, ok := unquote(src[nameM.start:nameM.end])
	if !ok || name == "" {
		return nil, &MalformedError{"event_name must be a non-empty string"}
	}
	var dataStack [16]member
	var data []member
	if m, ok := find(top, "data"); ok {
		switch src[m.start] {
		case '{':
			data = uniqueSorted(objectMembers(src, m.start, dataStack[:0]))
		case 'n': // null: no data, as encoding/json reads it into a map
		default:
			return nil, &MalformedError{"data must be a JSON object"}
		}
	}

	typ, recognized := Lookup(name)
	if recognized {
		name = typ.Name
	} else {
		typ = unrecognizedType
	}
	info := typ.info
	ev, payloadv, spareTime := info.alloc()
	*ev = Event{
		Type:       typ,
		Name:       name,
		ID:         eventID(src, name, top, data),
		ReceivedAt: receivedAt.UTC(),
		Delivery:   delivery,
		Payload:    payloadv,
	}
	x := extras{src: src}
	for _, m := range top {
		switch m.key {
		case "event_name", "data":
		case "resource_url":
			if u, ok := jsonString(src[m.start:m.end]); ok {
				ev.ResourceURL = u
			} else {
				x.add(m.key, m)
			}
		default:
			// Unknown envelope fields are kept; they rarely share a name with
			// a data field, but if they do the data field wins the plain name.
			k := m.key
			if _, clash := find(data, k); clash {
				k = "envelope." + k
			}
			x.add(k, m)
		}
	}

	var errs []FieldError
	pv := reflect.ValueOf(payloadv).Elem()
	for _, m := range data {
		k, raw := m.key, src[m.start:m.end]
		if k == "resource_url" {
			u, ok := jsonString(raw)
			if ok && ev.ResourceURL == "" {
				ev.ResourceURL = u
				continue
			}
			if ok && u == ev.ResourceURL {
				continue
			}
		}
		f, ok := info.fields[k]
		if ok && f.name != k {
			_, ok = find(data, f.name)
			ok = !ok // an alias counts only without its canonical name
		}
		if !ok {
			x.add(k, m)
			continue
		}
		fv := pv.FieldByIndex(f.index)
		if err := decodeField(fv, f.kind, raw, &spareTime); err != nil {
			if recognized && (typ.Documented || f.strict) {
				errs = append(errs, FieldError{Field: k, Rule: "type", Message: typeMessage(fv.Type(), err)})
			} else {
				fv.SetZero()
				x.add(k, m)
			}
		}
	}
	ev.Extra = x.m
	b := payloadv.base()
	if b.Timestamp != nil {
		*b.Timestamp = b.Timestamp.in(d.loc)
	}
	// SPEC section 2: every documented payload has data.account_id; when one
	// does not, the account its resource_url names stands in. When both are
	// there and disagree, data.account_id is kept: it is the documented
	// field, the one token bindings and routes were written against, and the
	// resource_url stays in the value verbatim, so the disagreement is not
	// hidden ([Event.ResourceAccountID] tells it; the receiver logs it).
	if m, sent := find(data, "account_id"); !sent || src[m.start:m.end] == "null" {
		if id, ok := accountOfResourceURL(ev.ResourceURL); ok {
			b.AccountID = id
		}
	}
	ev.typeErrs = errs
	return ev, nil
}

// extras collects Event.Extra: the raw values share one copy of the
// callback, made when the first one is kept.
type extras struct {
	src string
	buf []byte
	m   map[string]json.RawMessage
}

func (x *extras) add(k string, m member) {
	if x.m == nil {
		x.m = map[string]json.RawMessage{}
		x.buf = []byte(x.src)
	}
	x.m[k] = x.buf[m.start:m.end:m.end]
}

// decodeField sets fv, a payload field of the given kind, from the JSON
// value raw, as json.Unmarshal would (a pointer gets a value, null resets
// it, a failure leaves what encoding/json leaves). *spare is the event's
// own Time, used by the first timestamp.
func decodeField(fv reflect.Value, kind fieldKind, raw string, spare **Time) error {
	null := raw == "null"
	switch kind {
	case kindID:
		n, isNull, err := parseInt(raw)
		if err == nil && !isNull {
			fv.SetInt(n)
		}
		return err
	case kindIDPtr, kindCountPtr:
		if null {
			fv.SetZero()
			return nil
		}
		n, _, err := parseInt(raw)
		if kind == kindIDPtr {
			v := new(ID)
			*v = ID(n)
			fv.Set(reflect.ValueOf(v))
		} else {
			v := new(Count)
			*v = Count(n)
			fv.Set(reflect.ValueOf(v))
		}
		return err
	case kindString, kindStringPtr:
		if null {
			if kind == kindStringPtr {
				fv.SetZero()
			}
			return nil
		}
		str, ok := unquote(raw)
		if kind == kindStringPtr {
			v := new(string)
			*v = str
			fv.Set(reflect.ValueOf(v))
		} else if ok {
			fv.SetString(str)
		}
		if !ok {
			return errNotString
		}
		return nil
	case kindIDs:
		if null {
			fv.SetZero()
			return nil
		}
		if raw[0] != '[' {
			return errNotIDs
		}
		ids := make([]ID, 0, idCount(raw))
		for i := skipSpace(raw, 1); raw[i] != ']'; {
			e := valueEnd(raw, i)
			n, _, err := parseInt(raw[i:e])
			if err != nil {
				return err
			}
			ids = append(ids, ID(n))
			if i = skipSpace(raw, e); raw[i] == ',' {
				i = skipSpace(raw, i+1)
			}
		}
		fv.Set(reflect.ValueOf(ids))
		return nil
	case kindTimePtr:
		if null {
			fv.SetZero()
			return nil
		}
		t := *spare
		if t == nil {
			t = new(Time)
		}
		*spare = nil
		*t = Time{}
		fv.Set(reflect.ValueOf(t))
		str, ok := unquote(raw)
		if !ok {
			return errBadTime
		}
		v, err := parseTime(str)
		if err != nil {
			return err
		}
		*t = v
		return nil
	}
	return json.Unmarshal([]byte(raw), fv.Addr().Interface())
}

// idCount is the number of elements of the JSON array raw (of ids: no
// nested commas), so that the slice is allocated once.
func idCount(raw string) int {
	n := strings.Count(raw, ",") + 1
	if strings.TrimSpace(raw[1:len(raw)-1]) == "" {
		return 0
	}
	return n
}

var (
	errNotString = errors.New("must be a string")
	errNotIDs    = errors.New("must be an array of integer ids")
)

// notAnObjectError says what a payload that is not valid JSON, or not an
// object, is. encoding/json's messages are the contract, so the rare
// refused payload is decoded by it.
func notAnObjectError(payload []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		return &MalformedError{notAnObject(err)}
	}
	return &MalformedError{"JSON null, not an object"}
}

// utf8BOM is U+FEFF, the byte-order mark (EF BB BF in UTF-8).
const utf8BOM = "\uFEFF"

// notAnObject says what JSON that is not an object is, from the error of
// decoding it into a map (encoding/json checks the syntax of the whole input
// first, so a type error means the input is valid JSON).
func notAnObject(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		switch te.Value {
		case "array", "string", "number":
			return "a JSON " + te.Value + ", not an object"
		case "bool":
			return "a JSON boolean, not an object"
		}
	}
	return "not JSON: " + jsonReason(err)
}

// emmaAPIHost is the host of Emma's API, whose resource URLs start with the
// account: https://api.e2ma.net/{account_id}/...
const emmaAPIHost = "api.e2ma.net"

// accountOfResourceURL returns the account id a resource_url of Emma's API
// names. Other hosts name no account: the id of a URL Emma did not write
// means nothing.
func accountOfResourceURL(u string) (ID, bool) {
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(u, "http://"); !ok {
			return 0, false
		}
	}
	host, path, ok := strings.Cut(rest, "/")
	if !ok || !strings.EqualFold(host, emmaAPIHost) {
		return 0, false
	}
	seg, _, _ := strings.Cut(path, "/")
	seg, _, _ = strings.Cut(seg, "?")
	if seg == "" || len(seg) > 19 {
		return 0, false
	}
	for _, c := range []byte(seg) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(seg, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return ID(n), true
}

// ResourceAccountID returns the account that the event's resource_url names
// (https://api.e2ma.net/{account_id}/...), if it names one. It differs from
// [Event.AccountID] only when Emma's data.account_id and resource_url
// disagree: then AccountID is data's.
func (e *Event) ResourceAccountID() (ID, bool) {
	return accountOfResourceURL(e.ResourceURL)
}

// Validate checks a parsed event: the types of its fields and the rules of
// its payload. Unrecognized events are not validated.
func (d *Decoder) Validate(ev *Event) error {
	if !ev.Recognized() {
		return nil
	}
	errs := d.validatePayload(ev.Type, ev.Payload, slices.Clone(ev.typeErrs))
	if len(errs) > 0 {
		return &ValidationError{Event: ev.Name, Errors: errs}
	}
	return nil
}

// validatePayload adds the validator's findings to errs (the type errors),
// leaving out fields that already failed to decode.
func (d *Decoder) validatePayload(typ Type, p Payload, errs []FieldError) []FieldError {
	failed := func(field string) bool {
		return slices.ContainsFunc(errs, func(e FieldError) bool { return e.Rule == "type" && e.Field == field })
	}
	if typ.Documented && p.base().Timestamp == nil && !failed("timestamp") {
		errs = append(errs, FieldError{Field: "timestamp", Rule: "required", Message: "is required"})
	}
	err := d.validate.Struct(p)
	if err == nil {
		return errs
	}
	verrs, ok := err.(validator.ValidationErrors)
	if !ok { // only an invalid validation target; a bug, not bad input
		panic(err)
	}
	for _, fe := range verrs {
		if failed(fe.Field()) {
			continue
		}
		errs = append(errs, FieldError{Field: fe.Field(), Rule: fe.Tag(), Message: ruleMessage(fe)})
	}
	return errs
}

func ruleMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	default:
		return fmt.Sprintf("fails the %q rule", fe.Tag())
	}
}

var (
	idType    = reflect.TypeFor[ID]()
	countType = reflect.TypeFor[Count]()
	timeType  = reflect.TypeFor[Time]()
)

// typeMessage says what a field should have held.
func typeMessage(t reflect.Type, err error) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == idType || t == countType:
		return errNotInteger.Error()
	case t == timeType:
		return errBadTime.Error()
	case t.Kind() == reflect.String:
		return "must be a string"
	case t.Kind() == reflect.Slice && t.Elem() == idType:
		return "must be an array of integer ids"
	}
	return "has the wrong type: " + jsonReason(err)
}

// jsonReason shortens encoding/json's messages, which name Go types.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	case errors.As(err, &te):
		return "unexpected JSON " + te.Value
	}
	return err.Error()
}
