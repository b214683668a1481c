package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
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

// DecoderConfig configures a [Decoder].
type DecoderConfig struct {
	// Location is where zone-less times (Emma's "@D:" dates) are placed.
	// Default: UTC.
	Location *time.Location
}

// Decoder turns Emma callbacks into events. It is safe for concurrent use;
// one Decoder (and so one validator, whose caches are per instance) should
// serve a whole process.
type Decoder struct {
	loc      *time.Location
	validate *validator.Validate
}

// NewDecoder returns a Decoder.
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
		loc = time.UTC
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
	if err := checkLimits(payload); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		return nil, &MalformedError{"not a JSON object: " + jsonReason(err)}
	}
	if top == nil {
		return nil, &MalformedError{"not a JSON object: null"}
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
	ev.typeErrs = errs
	return ev, nil
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
