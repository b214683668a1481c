package events

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Time is an instant sent by Emma.
//
// Emma writes most dates as "@D:2017-12-21T11:01:11" (no zone); some fields
// use RFC 3339 or a plain ISO 8601 date-time. Time accepts all of them, with
// optional fractional seconds, and a bare date. A time written without a zone
// is "floating": the [Decoder] places it in its configured location (UTC by
// default). Time always encodes as RFC 3339 in UTC.
type Time struct {
	time.Time
	floating bool
}

// emmaPrefix marks Emma's own date notation.
const emmaPrefix = "@D:"

// zoneless layouts, tried in order after the zoned RFC 3339 forms.
var floatingLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02",
}

var errBadTime = errors.New(`must be a timestamp: "@D:YYYY-MM-DDTHH:MM:SS", RFC 3339 or ISO 8601`)

// ParseTime parses any of the forms Time accepts. Zone-less values are
// returned in loc (UTC when loc is nil).
func ParseTime(s string, loc *time.Location) (Time, error) {
	t, err := parseTime(s)
	if err != nil {
		return Time{}, err
	}
	return t.in(loc), nil
}

func parseTime(s string) (Time, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), emmaPrefix))
	if s == "" || len(s) > 64 {
		return Time{}, errBadTime
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return inRange(Time{Time: t})
	}
	// ISO 8601 also allows "+0100" offsets without a colon.
	if t, err := time.Parse("2006-01-02T15:04:05.999999999Z0700", s); err == nil {
		return inRange(Time{Time: t})
	}
	for _, layout := range floatingLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return inRange(Time{Time: t, floating: true})
		}
	}
	return Time{}, errBadTime
}

// inRange keeps what the gateway writes readable: RFC 3339 has four-digit
// years, so a zoned time must fall in years 1 to 9999 once in UTC (the
// written year may differ by the offset: "9998-12-31T00:01:00-23:59" is
// 9999 in UTC), and a floating time, which the decoder's zone moves by less
// than a day, in years 2 to 9998 as written. Emma sends none of these edges.
func inRange(t Time) (Time, error) {
	lo, hi := 1, 9999
	if t.floating {
		lo, hi = 2, 9998
	} else {
		t.Time = t.UTC()
	}
	if y := t.Year(); y < lo || y > hi {
		return Time{}, errBadTime
	}
	return t, nil
}

// in places a floating time in loc; zoned times are unchanged.
func (t Time) in(loc *time.Location) Time {
	if !t.floating || loc == nil || loc == time.UTC {
		return t
	}
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	return Time{Time: time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), loc).UTC(), floating: true}
}

// UnmarshalJSON implements json.Unmarshaler. JSON null leaves t unchanged.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errBadTime
	}
	v, err := parseTime(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalJSON implements json.Marshaler: RFC 3339 in UTC, with fractional
// seconds only when there are any.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(time.RFC3339Nano) + `"`), nil
}
