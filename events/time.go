package events

import (
	"errors"
	"strings"
	"time"
)

// Time is an instant sent by Emma.
//
// Emma writes most dates as "@D:2017-12-21T11:01:11" (no zone); some fields
// use RFC 3339 or a plain ISO 8601 date-time. Time accepts all of them, with
// optional fractional seconds, and a bare date. A time written without a zone
// is "floating": the [Decoder] places it in its configured location, Emma's
// own zone ([EmmaTimezone]) by default, by the rule of [PlaceWallClock] for
// the hours daylight saving repeats or skips. Time always encodes as RFC 3339
// in UTC; the string Emma sent is kept too ([Time.Emma]).
type Time struct {
	time.Time
	floating bool
	emma     string // the string as Emma sent it
}

// Emma returns the time exactly as Emma wrote it ("@D:2017-12-21T11:01:11"),
// empty for a Time that was not decoded from Emma's JSON. The normalized
// value carries it as emma_timestamp, so that a consumer can read the time
// again if the gateway's zone was ever wrong.
func (t Time) Emma() string { return t.emma }

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
// placed in loc by [PlaceWallClock] (read as UTC when loc is nil; a
// [Decoder]'s default is Emma's zone instead).
func ParseTime(s string, loc *time.Location) (Time, error) {
	t, err := parseTime(s)
	if err != nil {
		return Time{}, err
	}
	return t.in(loc), nil
}

func parseTime(raw string) (Time, error) {
	t, err := parseTimeValue(raw)
	t.emma = raw
	return t, err
}

func parseTimeValue(s string) (Time, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), emmaPrefix))
	if s == "" || len(s) > 64 {
		return Time{}, errBadTime
	}
	if t, ok := parseWallClock(s); ok {
		return inRange(Time{Time: t, floating: true})
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

// parseWallClock reads Emma's usual form, "2006-01-02T15:04:05" (or with a
// space for the T), as the first zone-less layouts do, without time.Parse
// and the errors the zoned layouts tried first would allocate on it. Any
// other form, or a field out of range, is left to time.Parse: false here
// only means "not the fast case".
func parseWallClock(s string) (time.Time, bool) {
	if len(s) != 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' && s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, sec := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Day() != d { // the 31st of a 30-day month, February 29th of a common year
		return time.Time{}, false
	}
	return t, true
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
	t.Time = PlaceWallClock(t.Time, loc).UTC()
	return t
}

// transitionReach bounds how far from a zone transition a wall-clock time
// can be ambiguous or skipped: more than any difference of two UTC offsets.
const transitionReach = 48 * time.Hour

// PlaceWallClock returns the instant at which clocks in loc show the date
// and wall-clock time of wall (its zone is ignored: only its reading counts).
//
// Around a daylight-saving transition a reading may happen twice (the
// autumn hour that is repeated) or never (the spring hour that is skipped).
// Both get the same rule: the reading is taken with the UTC offset in force
// just before the transition. So in America/Chicago
//
//   - 2026-11-01 01:30, which happens at -05:00 (CDT) and again at -06:00
//     (CST), is its first occurrence, 01:30 CDT = 06:30 UTC;
//   - 2026-03-08 02:30, which never happens (clocks go from 02:00 CST to
//     03:00 CDT), is read as CST, 08:30 UTC = 03:30 CDT: shifted forward by
//     the length of the gap.
//
// This is Python's fold=0, which Emma's software (Python) writes, and
// java.time's ZonedDateTime.of. time.Date alone does not do it: it
// documents that it picks one of the two offsets without saying which, and
// in practice reads Chicago's skipped 02:30 as 01:30 CST and Berlin's
// repeated 02:30 as its second occurrence.
func PlaceWallClock(wall time.Time, loc *time.Location) time.Time {
	y, mo, d := wall.Date()
	h, mi, s := wall.Clock()
	t := time.Date(y, mo, d, h, mi, s, wall.Nanosecond(), loc)
	start, end := t.ZoneBounds()
	if start.IsZero() && end.IsZero() {
		return t // a zone without transitions
	}
	w := time.Date(y, mo, d, h, mi, s, wall.Nanosecond(), time.UTC)
	_, off := t.Zone()
	if !start.IsZero() && t.Sub(start) < transitionReach {
		_, before := start.Add(-time.Nanosecond).Zone()
		if r, ok := straddles(w, start, before, off); ok {
			return r.In(loc)
		}
	}
	if !end.IsZero() && end.Sub(t) < transitionReach {
		_, after := end.Zone()
		if r, ok := straddles(w, end, off, after); ok {
			return r.In(loc)
		}
	}
	return t
}

// straddles reports whether the wall-clock reading w (as UTC), read with the
// offset before the transition at at and with the one after it, lands on
// different sides of it: then w is ambiguous (both readings are real) or
// skipped (neither is), and the reading with the offset before is returned.
func straddles(w, at time.Time, before, after int) (time.Time, bool) {
	rb := w.Add(-time.Duration(before) * time.Second)
	ra := w.Add(-time.Duration(after) * time.Second)
	if rb.Before(at) == ra.Before(at) {
		return time.Time{}, false
	}
	return rb, true
}

// UnmarshalJSON implements json.Unmarshaler. JSON null leaves t unchanged.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s, ok := unquote(string(trimSpace(b)))
	if !ok {
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
