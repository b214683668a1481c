package events

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzID checks ID and Count on any JSON value: decoding never panics; what
// decodes is a non-negative int64 whose decimal digits are exactly the
// input's (no rounding, no wrapping); and it encodes back as that integer.
// The committed corpus in testdata/fuzz/FuzzID runs as a plain test.
func FuzzID(f *testing.F) {
	for _, s := range []string{`1743199`, `"6160010079"`, `null`, `9223372036854775807`, `9223372036854775808`, `1e400`, `-1`, `1.5`, `"12x"`, `" 42 "`, `""`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var id ID
		err := json.Unmarshal(b, &id)
		var c Count
		cerr := json.Unmarshal(b, &c)
		if (err == nil) != (cerr == nil) || int64(id) != int64(c) {
			t.Fatalf("ID and Count disagree on %q: %v %d, %v %d", b, err, id, cerr, c)
		}
		if err != nil {
			return
		}
		if id < 0 {
			t.Fatalf("%q decoded to negative %d", b, id)
		}
		s := strings.TrimSpace(string(b))
		if s == "null" {
			if id != 0 {
				t.Fatalf("null set %d", id)
			}
			return
		}
		digits := strings.TrimLeft(strings.TrimSpace(strings.Trim(s, `"`)), "0")
		if digits == "" {
			digits = "0"
		}
		if id.String() != digits {
			t.Fatalf("%q decoded to %d", b, id)
		}
		out, merr := json.Marshal(id)
		if merr != nil || string(out) != strconv.FormatInt(int64(id), 10) {
			t.Fatalf("%d encodes as %s (%v)", id, out, merr)
		}
	})
}

// FuzzTime checks Time on any string: parsing never panics; what parses
// encodes as RFC 3339 in UTC, and that encoding parses back to the same
// instant. The committed corpus in testdata/fuzz/FuzzTime runs as a plain
// test.
func FuzzTime(f *testing.F) {
	for _, s := range []string{"@D:2017-12-21T11:01:11", "2026-11-20T10:01:02Z", "2026-11-20T10:01:02.123+01:00", "2026-11-20T10:01:02+0100", "2026-11-20 10:01:02", "2026-11-20T10:01", "2026-11-20", "@D:", "", "9999-99-99", "@D:2017-12-21T11:01:11\x00"} {
		f.Add(s)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw, _ := json.Marshal(s)
		var tm Time
		if err := json.Unmarshal(raw, &tm); err != nil {
			if _, perr := ParseTime(s, nil); perr == nil {
				t.Fatalf("%q: UnmarshalJSON refuses what ParseTime accepts: %v", s, err)
			}
			return
		}
		out, err := json.Marshal(tm)
		if err != nil || !json.Valid(out) {
			// Years beyond 9999 cannot be written in RFC 3339; the layouts
			// only read four-digit years, so none should get here.
			t.Fatalf("%q: normalized %s, %v", s, out, err)
		}
		if tm.IsZero() {
			if string(out) != "null" {
				t.Fatalf("%q: zero time encodes as %s", s, out)
			}
			return
		}
		var back Time
		if err := json.Unmarshal(out, &back); err != nil || !back.Equal(tm.Time) {
			t.Fatalf("%q: %s reads back as %v (%v), not %v", s, out, back, err, tm)
		}
		if _, err := ParseTime(s, paris); err != nil {
			t.Fatalf("%q: parses without a location but not with one: %v", s, err)
		}
	})
}
