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
	loc := cfg.Location
	if loc == nil {
		var err error
		if loc, err = time.LoadLocation(EmmaTimezone); err != nil {
			panic("events: time/tzdata is linked, yet " + EmmaTimezone + " does not load: " + err.Error())
		}
	}
	return &Decoder{loc: loc, validate: v}
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
		ID:         eventID(name, top, data),
		ReceivedAt: receivedAt.UTC(),
		Delivery:   delivery,
		Payload:    typ.New(),
	}
	extra := map[string]json.RawMessage{}
	for k, raw := range top {
		switch k {
		case "event_name", "data":
		case "resource_url":
			if !ev.setResourceURL(raw) {
				extra[k] = raw
			}
		default:
			// Unknown envelope fields are kept; they rarely share a name with
			// a data field, but if they do the data field wins the plain name.
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
		if k == "resource_url" && (ev.ResourceURL == "" && ev.setResourceURL(raw) || sameString(raw, ev.ResourceURL)) {
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
	// SPEC section 2: every documented payload has data.account_id; when one
	// does not, the account its resource_url names stands in. When both are
	// there and disagree, data.account_id is kept: it is the documented
	// field, the one token bindings and routes were written against, and the
	// resource_url stays in the value verbatim, so the disagreement is not
	// hidden ([Event.ResourceAccountID] tells it; the receiver logs it).
	if raw, sent := data["account_id"]; !sent || string(raw) == "null" {
		if id, ok := accountOfResourceURL(ev.ResourceURL); ok {
			b.AccountID = id
		}
	}
	ev.typeErrs = errs
	return ev, nil
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
	failed := make(map[string]bool, len(errs))
	for _, e := range errs {
		failed[e.Field] = true
	}
	if typ.Documented && p.base().Timestamp == nil && !failed["timestamp"] {
		errs = append(errs, FieldError{Field: "timestamp", Rule: "required", Message: "is required"})
	}
	err := d.validate.Struct(p)
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		if err != nil { // only an invalid validation target; a bug, not bad input
			panic(err)
		}
		return errs
	}
	for _, fe := range verrs {
		if failed[fe.Field()] {
			continue
		}
		errs = append(errs, FieldError{Field: fe.Field(), Rule: fe.Tag(), Message: ruleMessage(fe)})
	}
	return errs
}

func (e *Event) setResourceURL(raw json.RawMessage) bool {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	e.ResourceURL = s
	return true
}

func sameString(raw json.RawMessage, s string) bool {
	var v string
	return json.Unmarshal(raw, &v) == nil && v == s
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
