package events

import (
	"reflect"
	"strings"
)

// typeInfo is what decoding needs to know about a payload struct, computed
// once per type by reflection.
type typeInfo struct {
	rtype reflect.Type
	// fields by JSON name, aliases included.
	fields map[string]field
	// ordered are the canonical fields in the order encoding/json writes
	// them (struct order, embedded structs in place).
	ordered []field
	// encodable is true when every field has a kind the hand-written
	// encoder knows.
	encodable bool
	// keyFields are the fields that can give the Kafka key, in the order of
	// SPEC section 4: member, mailing, import, group, account.
	keyFields []keyField
	// alloc returns a new event, its zero payload and a spare Time for the
	// payload's timestamp, all in one allocation: a callback's decoding
	// needs all three, and they live and die together.
	alloc func() (*Event, Payload, *Time)
}

type keyField struct {
	field
	kind string // subject kind for ce_subject: "member", "mailing", ...
}

type field struct {
	name  string // canonical JSON name
	index []int
	// strict fields report a value of the wrong type as a validation error;
	// lenient ones keep it in Extra.
	strict bool
	// kind says how the decoder and encoder handle the field without
	// encoding/json; kindOther falls back to it.
	kind fieldKind
}

// fieldKind is the Go type of a payload field, for the hand-written decoder
// and encoder.
type fieldKind uint8

const (
	kindOther     fieldKind = iota // through encoding/json
	kindID                         // ID
	kindIDPtr                      // *ID
	kindCountPtr                   // *Count
	kindString                     // string
	kindStringPtr                  // *string
	kindIDs                        // []ID
	kindTimePtr                    // *Time
)

func kindOf(t reflect.Type) fieldKind {
	switch t {
	case idType:
		return kindID
	case reflect.PointerTo(idType):
		return kindIDPtr
	case reflect.PointerTo(countType):
		return kindCountPtr
	case reflect.TypeFor[string]():
		return kindString
	case reflect.TypeFor[*string]():
		return kindStringPtr
	case reflect.SliceOf(idType):
		return kindIDs
	case reflect.PointerTo(timeType):
		return kindTimePtr
	}
	return kindOther
}

// keyOrder is SPEC section 4's order of preference for the message key, with
// the subject kind used in ce_subject.
var keyOrder = []struct{ field, kind string }{
	{"member_id", "member"},
	{"mailing_id", "mailing"},
	{"import_id", "import"},
	{"member_group_id", "group"},
	{"account_id", "account"},
}

func newTypeInfo(t reflect.Type) *typeInfo {
	ti := &typeInfo{rtype: t, fields: map[string]field{}}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			idx := append(append([]int(nil), index...), i)
			if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, idx)
				continue
			}
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			// A field is strict when it is validated, or when its type is not
			// a pointer, slice or string: an int id or time that failed to
			// decode would otherwise pass as zero.
			f := field{name: name, index: idx, strict: sf.Tag.Get("validate") != "" || sf.Type.Kind() != reflect.Pointer && sf.Type.Kind() != reflect.Slice, kind: kindOf(sf.Type)}
			ti.fields[name] = f
			ti.ordered = append(ti.ordered, f)
			if alias := sf.Tag.Get("alias"); alias != "" {
				ti.fields[alias] = f
			}
		}
	}
	walk(t, nil)
	ti.encodable = true
	for _, f := range ti.ordered {
		ti.encodable = ti.encodable && f.kind != kindOther
	}
	for _, k := range keyOrder {
		if f, ok := ti.fields[k.field]; ok {
			ti.keyFields = append(ti.keyFields, keyField{f, k.kind})
		}
	}
	return ti
}

// keyOf returns the first key field of p that is set, and its subject kind.
func (ti *typeInfo) keyOf(p Payload) (id ID, kind string, ok bool) {
	v := reflect.ValueOf(p).Elem()
	for _, f := range ti.keyFields {
		fv := v.FieldByIndex(f.index)
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		if n := fv.Int(); n != 0 {
			return ID(n), f.kind, true
		}
	}
	return 0, "", false
}

// idField returns the value of p's id field named name (its JSON name, an
// alias included), when the type has it and it is set.
func (ti *typeInfo) idField(p Payload, name string) (ID, bool) {
	f, ok := ti.fields[name]
	if !ok {
		return 0, false
	}
	fv := reflect.ValueOf(p).Elem().FieldByIndex(f.index)
	if fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			return 0, false
		}
		fv = fv.Elem()
	}
	if fv.Type() != idType || fv.Int() == 0 {
		return 0, false
	}
	return ID(fv.Int()), true
}
