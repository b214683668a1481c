// Package schemagen generates the files of package schemas from the Go types
// of package events, and tells whether a new version of a schema is
// compatible with the committed one.
//
// It is a small reflection-based generator rather than a general library
// (such as invopop/jsonschema) because the normalized value is not one Go
// struct: Event.MarshalJSON splices the payload struct's fields between the
// envelope's, optional payload fields are present and null rather than
// omitted, ids and times are custom types with their own JSON forms, and the
// schema must say per event type whether the timestamp may be null. Mapping
// all of that onto a library's hooks would take more code than this file,
// and it would still need the byte-stable output the drift test compares.
package schemagen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/schemas"
)

// Draft is the JSON Schema dialect of every generated schema.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// add appends a property, in order, and marks it required if asked.
func (s *Schema) add(name string, fs *Schema, required bool) {
	s.Properties = append(s.Properties, Property{name, fs})
	if required {
		s.Required = append(s.Required, name)
	}
}

// Schema is the subset of JSON Schema 2020-12 the generator writes, in a
// fixed key order so that the output is byte-stable.
type Schema struct {
	Schema               string     `json:"$schema,omitempty"`
	ID                   string     `json:"$id,omitempty"`
	Title                string     `json:"title,omitempty"`
	Description          string     `json:"description,omitempty"`
	Type                 any        `json:"type,omitempty"` // a string, or a list with "null"
	Const                any        `json:"const,omitempty"`
	Enum                 []string   `json:"enum,omitempty"`
	Not                  *Schema    `json:"not,omitempty"`
	Format               string     `json:"format,omitempty"`
	Pattern              string     `json:"pattern,omitempty"`
	Minimum              *int64     `json:"minimum,omitempty"`
	MinProperties        *int       `json:"minProperties,omitempty"`
	ContentMediaType     string     `json:"contentMediaType,omitempty"`
	ContentSchema        *Schema    `json:"contentSchema,omitempty"`
	Items                *Schema    `json:"items,omitempty"`
	Properties           Properties `json:"properties,omitempty"`
	Required             []string   `json:"required,omitempty"`
	AdditionalProperties *Schema    `json:"additionalProperties,omitempty"`
}

// Property is one named property of an object schema.
type Property struct {
	Name   string
	Schema *Schema
}

// Properties are an object's properties in the order they are written
// (the order of the normalized value's fields).
type Properties []Property

// MarshalJSON writes the properties as an object, in order.
func (ps Properties) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.Name) // a string always marshals
		v, err := json.Marshal(p.Schema)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

var (
	idType    = reflect.TypeFor[events.ID]()
	countType = reflect.TypeFor[events.Count]()
	timeType  = reflect.TypeFor[events.Time]()
)

// fieldDocs describe the payload fields; a field without one gets a generic
// description from its name.
var fieldDocs = map[string]string{
	"account_id":      "The Emma account the event happened in.",
	"timestamp":       "When the event happened, as Emma reports it, in RFC 3339 UTC. Emma's zone-less \"@D:\" dates are read in the gateway's --timezone, US Central time (America/Chicago) by default; a time in the hour daylight saving repeats is its first occurrence, one in the hour it skips is read with the offset before the change (shifted forward by the gap). emma_timestamp keeps Emma's string.",
	"member_id":       "The member the event is about.",
	"mailing_id":      "The mailing the event is about.",
	"signup_form_id":  "The signup form the member used, when Emma names one.",
	"subject":         "The subject of the mailing.",
	"link_id":         "The link that was clicked.",
	"network":         "The network the message was shared on.",
	"import_id":       "The member import that completed.",
	"group_ids":       "The groups the event is about.",
	"contact_count":   "How many contacts the import brought in.",
	"member_group_id": "The group the event is about (Emma's group_id is accepted as well and normalized to this name).",
	"group_name":      "The name of the group.",
	"status":          "The member's new status.",
}

// Event returns the schema of the normalized value of events of type t:
// the fields Event.MarshalJSON writes, in its order.
func Event(t events.Type) (*Schema, error) {
	desc := t.Description
	if t.WebhookEventID != 0 {
		desc += fmt.Sprintf(" (Emma webhook_event_id %d.)", t.WebhookEventID)
	}
	if !t.Documented {
		desc += " Emma does not document this event's fields: they are decoded leniently, only account_id is required, and a field of an unexpected type is kept in extra."
	}
	name := &Schema{Const: t.Name, Description: "Emma's event_name."}
	return envelope(t.Name, t.Name, desc, name, reflect.TypeOf(t.New()).Elem(), t.Documented)
}

// Unrecognized returns the schema of the values of the unrecognized topic.
func Unrecognized() (*Schema, error) {
	var known []string
	for _, t := range events.Types() {
		known = append(known, t.Name)
	}
	name := &Schema{Type: "string", MinProperties: nil, Not: &Schema{Enum: known}, Description: "The event_name Emma sent, one the gateway does not know."}
	return envelope(schemas.Unrecognized, "unrecognized event", "An Emma callback whose event_name the gateway does not know. Only account_id (0 when absent) and timestamp are typed; every other field Emma sent is kept in extra.", name, reflect.TypeFor[events.Unrecognized](), false)
}

// PayloadSchema is the schema an event type with payload struct p would
// have; [Event] is PayloadSchema for the registered types. It lets a test
// show that a field added to a Go type changes the generated schema.
func PayloadSchema(name, description string, p reflect.Type, documented bool) (*Schema, error) {
	return envelope(name, name, description, &Schema{Const: name, Description: "Emma's event_name."}, p, documented)
}

func envelope(file, title, desc string, eventName *Schema, payload reflect.Type, documented bool) (*Schema, error) {
	s := &Schema{
		Schema:      Draft,
		ID:          schemas.URL(file),
		Title:       title,
		Description: desc,
		Type:        "object",
	}
	add := s.add
	add("event_name", eventName, true)
	add("event_id", &Schema{Type: "string", Pattern: "^[0-9a-f]{32}$", Description: "A stable hash of the account, event name and content: the same callback delivered twice, by GET or POST, has the same id. Use it to drop duplicates."}, true)
	fields, err := payloadFields(payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", title, err)
	}
	for _, f := range fields {
		if f.Name == "timestamp" && documented {
			// Validation requires the timestamp of documented events.
			f.Schema.Type = "string"
		}
		add(f.Name, f.Schema, true)
	}
	add("received_at", &Schema{Type: "string", Format: "date-time", Description: "When the gateway received the callback, RFC 3339 UTC."}, true)
	add("delivery", &Schema{Enum: []string{string(events.DeliveryPOST), string(events.DeliveryGET)}, Description: "The HTTP method Emma delivered the callback with."}, true)
	add("emma_timestamp", &Schema{Type: "string", Description: "The timestamp exactly as Emma wrote it (\"@D:2017-12-21T11:01:11\", US Central local time), so that it can be read again if the gateway's zone was wrong; absent when Emma sent none."}, false)
	add("resource_url", &Schema{Type: "string", Description: "Emma's resource_url, from the envelope or the data; absent when Emma sent none."}, false)
	one := 1
	add("extra", &Schema{Type: "object", MinProperties: &one, Description: "Every field Emma sent that the type does not know (or, for leniently decoded events, whose value had an unexpected type), verbatim; absent when there is none."}, false)
	return s, nil
}

// payloadFields walks a payload struct as encoding/json does: embedded
// structs flattened, fields in declaration order.
func payloadFields(t reflect.Type) ([]Property, error) {
	var out []Property
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			inner, err := payloadFields(sf.Type)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fs, err := goType(sf.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s (%s): %w", sf.Name, name, err)
		}
		fs.Description = fieldDocs[name]
		if fs.Description == "" {
			fs.Description = "Emma's " + name + "."
		}
		out = append(out, Property{name, fs})
	}
	return out, nil
}

// goType maps a payload field's Go type to its JSON form. A pointer or a
// slice may be null: the normalized value writes every field, set or not.
func goType(t reflect.Type) (*Schema, error) {
	nullable := false
	if t.Kind() == reflect.Pointer {
		nullable, t = true, t.Elem()
	}
	var s *Schema
	switch {
	case t == idType, t == countType:
		zero := int64(0)
		s = &Schema{Type: "integer", Minimum: &zero}
	case t == timeType:
		s = &Schema{Type: "string", Format: "date-time"}
	case t.Kind() == reflect.String:
		s = &Schema{Type: "string"}
	case t.Kind() == reflect.Slice:
		items, err := goType(t.Elem())
		if err != nil {
			return nil, err
		}
		nullable = true // a nil slice is written as null
		s = &Schema{Type: "array", Items: items}
	default:
		return nil, fmt.Errorf("no JSON Schema mapping for Go type %s: teach schemagen.goType", t)
	}
	if nullable {
		s.Type = []string{s.Type.(string), "null"}
	}
	return s, nil
}

// CloudEventsHeaders returns the schema of the headers of every event
// message (Kafka header name to string value).
func CloudEventsHeaders() *Schema {
	s := &Schema{
		Schema:               Draft,
		ID:                   schemas.URL(schemas.CloudEventsHeaders),
		Title:                "CloudEvents headers",
		Description:          "The Kafka headers of every event message: the CloudEvents Kafka protocol binding in binary mode (the value is the data), and the W3C trace context of the gateway's producer span. Header values are UTF-8 strings.",
		Type:                 "object",
		AdditionalProperties: &Schema{Type: "string"},
	}
	add := s.add
	add(kafkaevents.HeaderSpecVersion, &Schema{Const: "1.0", Description: "CloudEvents specversion."}, true)
	add(kafkaevents.HeaderID, &Schema{Type: "string", Pattern: "^[0-9a-f]{32}$", Description: "The event_id of the value."}, true)
	add(kafkaevents.HeaderSource, &Schema{Type: "string", Format: "uri", Pattern: "^" + regexp.QuoteMeta(kafkaevents.SourceBase) + "(/[0-9]+)?$", Description: "Emma's API URL of the account: " + kafkaevents.SourceBase + "/{account_id}."}, true)
	add(kafkaevents.HeaderType, &Schema{Type: "string", Pattern: "^" + regexp.QuoteMeta(kafkaevents.TypePrefix) + ".+$", Description: kafkaevents.TypePrefix + "{event_name}."}, true)
	add(kafkaevents.HeaderTime, &Schema{Type: "string", Format: "date-time", Description: "When the event happened (Emma's timestamp, or received_at when Emma sent none), RFC 3339 UTC."}, true)
	add(kafkaevents.HeaderSubject, &Schema{Type: "string", Pattern: "^(member|mailing|import|group|account)/[0-9]+$", Description: "The entity the event is about, the same as the message key: member/{id}, mailing/{id}, import/{id}, group/{id} or account/{id}."}, false)
	add(kafkaevents.HeaderDataSchema, &Schema{Type: "string", Format: "uri", Pattern: "^" + regexp.QuoteMeta(schemas.BaseURL) + "[a-z_]+\\.json$", Description: "The JSON Schema of the value: one of this directory's files."}, true)
	add(kafkaevents.HeaderContentType, &Schema{Const: "application/json", Description: "The value is the normalized event as JSON."}, true)
	add(kafkaevents.HeaderTraceparent, &Schema{Type: "string", Pattern: "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$", Description: "W3C trace context of the gateway's producer span; continue the trace from it."}, false)
	add("tracestate", &Schema{Type: "string", Description: "W3C trace state, when the callback's trace had one."}, false)
	add(kafkaevents.HeaderRedrivenFrom, &Schema{Type: "string", Pattern: "^.+/[0-9]+/[0-9]+$", Description: "Only on an event published by `emma-gateway deadletter replay`: the dead letter it was decoded from, {topic}/{partition}/{offset}. The event_id and received_at are the original callback's."}, false)
	return s
}

// DeadLetterHeaders returns the schema of the headers of dead letters.
func DeadLetterHeaders() *Schema {
	s := &Schema{
		Schema:               Draft,
		ID:                   schemas.URL(schemas.DeadLetter),
		Title:                "dead letter headers",
		Description:          "The Kafka headers of a dead letter: a callback the gateway rejected (400 or 422). The message value is the raw request payload, byte for byte, which may not be JSON at all; the headers say why it was rejected. The key is a hash of the payload.",
		Type:                 "object",
		AdditionalProperties: &Schema{Type: "string"},
	}
	add := s.add
	add(kafkaevents.HeaderDeadReason, &Schema{Enum: []string{events.ReasonMalformed, events.ReasonInvalid}, Description: "malformed: not an Emma callback (400); invalid: a known event that failed validation (422)."}, true)
	add(kafkaevents.HeaderDeadDetail, &Schema{Type: "string", Description: "A sentence saying what was wrong."}, true)
	add(kafkaevents.HeaderDeadDelivery, &Schema{Enum: []string{string(events.DeliveryPOST), string(events.DeliveryGET)}, Description: "The HTTP method of the request."}, true)
	add(kafkaevents.HeaderDeadContentType, &Schema{Type: "string", Description: "The request's Content-Type (application/octet-stream when it had none)."}, true)
	add(kafkaevents.HeaderDeadReceivedAt, &Schema{Type: "string", Format: "date-time", Description: "When the gateway received the request, RFC 3339."}, true)
	add(kafkaevents.HeaderDeadEventName, &Schema{Type: "string", Description: "The request's event_name, when it had one."}, false)
	fieldErr := &Schema{Type: "object", Required: []string{"field", "rule", "message"}, Properties: Properties{
		{"field", &Schema{Type: "string"}}, {"rule", &Schema{Type: "string"}}, {"message", &Schema{Type: "string"}},
	}}
	add(kafkaevents.HeaderDeadErrors, &Schema{Type: "string", ContentMediaType: "application/json", ContentSchema: &Schema{Type: "array", Items: fieldErr}, Description: "For invalid events: the field errors of the 422 answer, as a JSON array of {field, rule, message}."}, false)
	return s
}

// Generate returns every file of package schemas by name: one JSON schema
// per event type, the unrecognized, dead-letter and CloudEvents headers
// schemas, and asyncapi.yaml.
func Generate() (map[string][]byte, error) {
	out := map[string][]byte{}
	put := func(name string, s *Schema) error {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		out[name+".json"] = append(b, '\n')
		return nil
	}
	for _, t := range events.Types() {
		s, err := Event(t)
		if err != nil {
			return nil, err
		}
		if err := put(t.Name, s); err != nil {
			return nil, err
		}
	}
	u, err := Unrecognized()
	if err != nil {
		return nil, err
	}
	if err := put(schemas.Unrecognized, u); err != nil {
		return nil, err
	}
	if err := put(schemas.CloudEventsHeaders, CloudEventsHeaders()); err != nil {
		return nil, err
	}
	if err := put(schemas.DeadLetter, DeadLetterHeaders()); err != nil {
		return nil, err
	}
	a, err := AsyncAPI()
	if err != nil {
		return nil, err
	}
	out[schemas.AsyncAPI] = a
	return out, nil
}

// Names returns the sorted file names Generate writes.
func Names(files map[string][]byte) []string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
