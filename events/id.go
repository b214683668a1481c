package events

import (
	"bytes"
	"errors"
	"strconv"
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
// encoding/json expects of an Unmarshaler.
func parseInt(b []byte) (n int64, null bool, err error) {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return 0, true, nil
	}
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = bytes.TrimSpace(b[1 : len(b)-1])
	}
	if len(b) == 0 || len(b) > 20 {
		return 0, false, errNotInteger
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false, errNotInteger
		}
	}
	n, err = strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, false, errNotInteger
	}
	return n, false, nil
}
