package events

import (
	"encoding/json"
	"slices"
	"strings"
)

// The decoder reads a callback in one pass over bytes that json.Valid has
// already accepted, so the scanner below checks no syntax: it only finds
// where names and values begin and end. encoding/json would decode the
// same bytes several times over (envelope, data, each field) and allocate
// a RawMessage for every value.

// member is one name/value pair of a JSON object: its name unescaped, its
// value as the offsets of the bytes sent.
type member struct {
	key        string
	start, end int
}

func skipSpace(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just after the string literal that starts
// at s[i], and whether the literal holds an escape.
func stringEnd(s string, i int) (end int, escaped bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return len(s), escaped
}

// valueEnd returns the index just after the JSON value that starts at s[i].
func valueEnd(s string, i int) int {
	switch s[i] {
	case '"':
		e, _ := stringEnd(s, i)
		return e
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e, _ := stringEnd(s, j)
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(s)
	}
	j := i
	for j < len(s) {
		switch s[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

// objectMembers appends the members of the object that starts at s[i] to
// ms, in the order sent.
func objectMembers(s string, i int, ms []member) []member {
	i = skipSpace(s, i+1)
	if i >= len(s) || s[i] == '}' {
		return ms
	}
	for i < len(s) {
		ke, escaped := stringEnd(s, i)
		key := s[i+1 : ke-1]
		if escaped {
			key, _ = unquote(s[i:ke])
		}
		i = skipSpace(s, skipSpace(s, ke)+1) // past the ':'
		ve := valueEnd(s, i)
		ms = append(ms, member{key: key, start: i, end: ve})
		i = skipSpace(s, ve)
		if i >= len(s) || s[i] == '}' {
			break
		}
		i = skipSpace(s, i+1) // past the ','
	}
	return ms
}

// uniqueSorted sorts ms by name and keeps, of names sent twice, the last
// value: what decoding into a map does, and the order the event id hashes.
func uniqueSorted(ms []member) []member {
	slices.SortStableFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
	out := ms[:0]
	for i := range ms {
		if i+1 < len(ms) && ms[i+1].key == ms[i].key {
			continue
		}
		out = append(out, ms[i])
	}
	return out
}

// find returns the member named key of the sorted ms.
func find(ms []member, key string) (member, bool) {
	i, ok := slices.BinarySearchFunc(ms, key, func(m member, k string) int { return strings.Compare(m.key, k) })
	if !ok {
		return member{}, false
	}
	return ms[i], true
}

// unquote returns the string a JSON string literal holds. Literals without
// escapes are sliced, not copied; the rare escaped one goes through
// encoding/json, whose reading of odd escapes (lone surrogates) is the
// contract.
func unquote(lit string) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	if strings.IndexByte(lit, '\\') < 0 {
		return lit[1 : len(lit)-1], true
	}
	var s string
	if json.Unmarshal([]byte(lit), &s) != nil {
		return "", false
	}
	return s, true
}

// jsonString reads raw as encoding/json reads it into a string: a string
// literal gives its text, null leaves it empty, anything else is refused.
func jsonString(raw string) (string, bool) {
	if raw == "null" {
		return "", true
	}
	return unquote(raw)
}

// appendCompact appends the valid JSON value v without insignificant
// white space, as json.Compact does.
func appendCompact(dst []byte, v string) []byte {
	for i := 0; i < len(v); {
		switch c := v[i]; c {
		case ' ', '\t', '\n', '\r':
			i++
		case '"':
			e, _ := stringEnd(v, i)
			dst = append(dst, v[i:e]...)
			i = e
		default:
			j := i + 1
			for j < len(v) {
				if c := v[j]; c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' {
					break
				}
				j++
			}
			dst = append(dst, v[i:j]...)
			i = j
		}
	}
	return dst
}

// validJSON reports whether s is one JSON value, as json.Valid does, in
// about half its time: encoding/json's scanner makes a call per byte.
// checkLimits must have passed on s: the recursion is as deep as the
// nesting, which it bounds.
func validJSON(s string) bool {
	i, ok := validValue(s, skipSpace(s, 0))
	return ok && skipSpace(s, i) == len(s)
}

// validValue checks the value that starts at s[i] and returns the index
// just after it.
func validValue(s string, i int) (int, bool) {
	if i >= len(s) {
		return i, false
	}
	var ok bool
	switch c := s[i]; {
	case c == '{':
		if i = skipSpace(s, i+1); i < len(s) && s[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(s) || s[i] != '"' {
				return i, false
			}
			if i, ok = validString(s, i); !ok {
				return i, false
			}
			if i = skipSpace(s, i); i >= len(s) || s[i] != ':' {
				return i, false
			}
			if i, ok = validValue(s, skipSpace(s, i+1)); !ok {
				return i, false
			}
			if i = skipSpace(s, i); i >= len(s) {
				return i, false
			}
			switch s[i] {
			case '}':
				return i + 1, true
			case ',':
				i = skipSpace(s, i+1)
			default:
				return i, false
			}
		}
	case c == '[':
		if i = skipSpace(s, i+1); i < len(s) && s[i] == ']' {
			return i + 1, true
		}
		for {
			if i, ok = validValue(s, i); !ok {
				return i, false
			}
			if i = skipSpace(s, i); i >= len(s) {
				return i, false
			}
			switch s[i] {
			case ']':
				return i + 1, true
			case ',':
				i = skipSpace(s, i+1)
			default:
				return i, false
			}
		}
	case c == '"':
		return validString(s, i)
	case c == '-' || c >= '0' && c <= '9':
		return validNumber(s, i)
	case c == 't':
		return validLiteral(s, i, "true")
	case c == 'f':
		return validLiteral(s, i, "false")
	case c == 'n':
		return validLiteral(s, i, "null")
	}
	return i, false
}

func validString(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return j, false
		case c == '\\':
			if j++; j >= len(s) {
				return j, false
			}
			switch s[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s) {
					return j, false
				}
				for _, h := range []byte(s[j+1 : j+5]) {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return j, false
					}
				}
				j += 4
			default:
				return j, false
			}
		}
	}
	return len(s), false
}

func validNumber(s string, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j
	}
	j := i
	if s[j] == '-' {
		j++
	}
	switch {
	case j >= len(s):
		return j, false
	case s[j] == '0':
		j++
	case s[j] >= '1' && s[j] <= '9':
		j = digits(j)
	default:
		return j, false
	}
	if j < len(s) && s[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return k, false
		}
		j = k
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return k, false
		}
		j = k
	}
	return j, true
}

func validLiteral(s string, i int, lit string) (int, bool) {
	if !strings.HasPrefix(s[i:], lit) {
		return i, false
	}
	return i + len(lit), true
}
