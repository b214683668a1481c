package schemagen

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// Compatible reports, as one error listing every problem, how the schema
// next breaks consumers written against old (both JSON Schema documents as
// bytes). Within a major version fields are only added: every property of
// old must still be in next with the same type, format, const, enum and
// items, and a property old requires must still be required. A new
// property, a new optional header and a changed description are fine.
func Compatible(old, next []byte) error {
	var o, n map[string]any
	if err := json.Unmarshal(old, &o); err != nil {
		return fmt.Errorf("old schema: %w", err)
	}
	if err := json.Unmarshal(next, &n); err != nil {
		return fmt.Errorf("new schema: %w", err)
	}
	var problems []string
	compareObject("", o, n, &problems)
	if len(problems) > 0 {
		return &IncompatibleError{Problems: problems}
	}
	return nil
}

// IncompatibleError lists the breaking changes found by [Compatible].
type IncompatibleError struct{ Problems []string }

func (e *IncompatibleError) Error() string {
	s := "breaking schema change (fields are only added within a major version):"
	for _, p := range e.Problems {
		s += "\n  " + p
	}
	return s
}

// typeKeywords are the keywords that make a value's shape: changing any of
// them retypes the field.
var typeKeywords = []string{"type", "format", "const", "enum"}

func compareObject(path string, o, n map[string]any, problems *[]string) {
	for _, k := range typeKeywords {
		if !reflect.DeepEqual(o[k], n[k]) {
			*problems = append(*problems, fmt.Sprintf("%s: %s changed from %v to %v", orRoot(path), k, jsonText(o[k]), jsonText(n[k])))
		}
	}
	if oi, ok := o["items"].(map[string]any); ok {
		ni, _ := n["items"].(map[string]any)
		if ni == nil {
			*problems = append(*problems, orRoot(path)+": items removed")
		} else {
			compareObject(path+"[]", oi, ni, problems)
		}
	}
	op, _ := o["properties"].(map[string]any)
	np, _ := n["properties"].(map[string]any)
	names := make([]string, 0, len(op))
	for name := range op {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fp := path + "." + name
		ns, ok := np[name].(map[string]any)
		if !ok {
			*problems = append(*problems, fp+": removed")
			continue
		}
		os, _ := op[name].(map[string]any)
		compareObject(fp, os, ns, problems)
	}
	oreq, nreq := stringList(o["required"]), stringList(n["required"])
	for _, r := range oreq {
		if !slices.Contains(nreq, r) {
			*problems = append(*problems, path+"."+r+": no longer required")
		}
	}
}

func orRoot(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func jsonText(v any) string {
	if v == nil {
		return "(none)"
	}
	b, _ := json.Marshal(v) // values decoded from JSON marshal back
	return string(b)
}
