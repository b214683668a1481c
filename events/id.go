package events

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ID is an Emma identifier (account, member, mailing, group, ...).
//
// Emma's ids exceed 32 bits, so ID is an int64. It decodes from a JSON integer
// or from a string holding one ("1160010079"), because some of Emma's payloads
// quote their ids. Fractions, exponents, negative numbers and values that
// overflow int64 are refused rather than rounded or wrapped. It encodes as a
// plain JSON integer.
type ID int64

// Count is a non-negative quantity sent by Emma (for example contact_count).
// It decodes like [ID]: a JSON integer or a numeric string.
type Count int64

// String returns the decimal form of the id.
func (id ID) String() string { return strconv.FormatInt(int64(id), 10) }

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(b []byte) error {
	n, null, err := parseInt(b)
	if err != nil || null {
		return err
	}
	*id = ID(n)
	return nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *Count) UnmarshalJSON(b []byte) error {
	n, null, err := parseInt(b)
	if err != nil || null {
		return err
	}
	*c = Count(n)
	return nil
}

// errNotInteger is the reason given for any value that is not a whole,
// non-negative number that fits in 64 bits.
var errNotInteger = errors.New("must be a non-negative integer (or a string holding one) that fits in 64 bits")

// parseInt accepts a JSON integer literal or a JSON string holding decimal
// digits. A JSON null is reported as null and leaves the value untouched, as
// encoding/json expects of an Unmarshaler. It takes the bytes of
// UnmarshalJSON or the decoder's slice of the callback alike, and allocates
// for neither.
func parseInt[T string | []byte](b T) (n int64, null bool, err error) {
	b = trimSpace(b)
	if string(b) == "null" {
		return 0, true, nil
	}
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = trimSpace(b[1 : len(b)-1])
	}
	if len(b) == 0 || len(b) > 20 {
		return 0, false, errNotInteger
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false, errNotInteger
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false, errNotInteger
		}
		n = n*10 + d
	}
	return n, false, nil
}

// trimSpace trims what bytes.TrimSpace trims, without its cost for ASCII.
func trimSpace[T string | []byte](b T) T {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) > 0 && (b[0] >= utf8.RuneSelf || b[len(b)-1] >= utf8.RuneSelf) {
		// A string may start or end with a Unicode space, which
		// bytes.TrimSpace, the rule so far, trims too.
		switch v := any(b).(type) {
		case string:
			return T(strings.TrimSpace(v))
		case []byte:
			return T(bytes.TrimSpace(v))
		}
	}
	return b
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
