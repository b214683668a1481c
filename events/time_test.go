package events

import (
	"encoding/json"
	"testing"
	"time"
	_ "time/tzdata" // the test must not depend on the machine's zoneinfo
)

func TestTimeParsesEmmaRFC3339AndISO8601(t *testing.T) {
	utc := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
	tests := []struct {
		in       string
		want     time.Time
		floating bool
	}{
		{"@D:2017-12-21T11:01:11", utc("2017-12-21T11:01:11Z"), true},
		{"2017-12-21T11:01:11", utc("2017-12-21T11:01:11Z"), true},
		{"2017-12-21 11:01:11", utc("2017-12-21T11:01:11Z"), true},
		{"2017-12-21T11:01:11.250", utc("2017-12-21T11:01:11.25Z"), true},
		{"@D:2017-12-21", utc("2017-12-21T00:00:00Z"), true},
		{"2017-12-21T11:01:11Z", utc("2017-12-21T11:01:11Z"), false},
		{"2017-12-21T11:01:11-06:00", utc("2017-12-21T17:01:11Z"), false},
		{"2017-12-21T11:01:11+0100", utc("2017-12-21T10:01:11Z"), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) || got.floating != tt.floating {
				t.Fatalf("ParseTime(%q) = %v floating=%v, want %v floating=%v", tt.in, got.Time, got.floating, tt.want, tt.floating)
			}
		})
	}
}

func TestTimeRejectsWhatIsNotATime(t *testing.T) {
	for _, in := range []string{`""`, `"@D:"`, `"yesterday"`, `"2017-13-45T00:00:00"`, `12345`, `true`, `"@D:2017-12-21T25:00:00"`} {
		var tm Time
		if err := json.Unmarshal([]byte(in), &tm); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", in, tm.Time)
		}
	}
}

func TestTimeZonelessUsesConfiguredLocation(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseTime("@D:2017-12-21T11:01:11", chicago)
	if err != nil {
		t.Fatal(err)
	}
	if want := "2017-12-21T17:01:11Z"; got.UTC().Format(time.RFC3339) != want {
		t.Fatalf("got %s, want %s", got.UTC().Format(time.RFC3339), want)
	}
	zoned, _ := ParseTime("2017-12-21T11:01:11Z", chicago)
	if zoned.UTC().Hour() != 11 {
		t.Fatalf("a zoned time moved to %v", zoned.UTC())
	}
}

func TestTimeMarshalsRFC3339UTC(t *testing.T) {
	tm, _ := ParseTime("2017-12-21T11:01:11-06:00", nil)
	b, _ := json.Marshal(tm)
	if string(b) != `"2017-12-21T17:01:11Z"` {
		t.Fatalf("Marshal = %s", b)
	}
}

// TestPlaceWallClockAcrossDaylightSaving pins the rule of PlaceWallClock:
// a repeated or skipped reading is taken with the offset in force before
// the transition, in any zone (time.Date alone picks differently in
// Chicago and in Berlin).
func TestPlaceWallClockAcrossDaylightSaving(t *testing.T) {
	tests := []struct {
		zone, wall, want string
	}{
		// America/Chicago, 2026: spring forward 03-08 02:00 CST -> 03:00 CDT,
		// fall back 11-01 02:00 CDT -> 01:00 CST.
		{"America/Chicago", "2026-03-08T01:59:59", "2026-03-08T07:59:59Z"}, // last CST second
		{"America/Chicago", "2026-03-08T02:00:00", "2026-03-08T08:00:00Z"}, // skipped: = 03:00 CDT
		{"America/Chicago", "2026-03-08T02:30:00", "2026-03-08T08:30:00Z"}, // skipped: = 03:30 CDT
		{"America/Chicago", "2026-03-08T03:00:00", "2026-03-08T08:00:00Z"}, // first CDT second
		{"America/Chicago", "2026-07-04T12:00:00", "2026-07-04T17:00:00Z"}, // CDT
		{"America/Chicago", "2026-11-01T00:59:59", "2026-11-01T05:59:59Z"}, // CDT
		{"America/Chicago", "2026-11-01T01:00:00", "2026-11-01T06:00:00Z"}, // repeated: first (CDT)
		{"America/Chicago", "2026-11-01T01:30:00", "2026-11-01T06:30:00Z"}, // repeated: first (CDT)
		{"America/Chicago", "2026-11-01T01:59:59", "2026-11-01T06:59:59Z"}, // repeated: first (CDT)
		{"America/Chicago", "2026-11-01T02:00:00", "2026-11-01T08:00:00Z"}, // CST
		{"America/Chicago", "2017-12-21T11:01:11", "2017-12-21T17:01:11Z"}, // CST
		// Europe/Berlin, east of UTC, where time.Date picks the other way.
		{"Europe/Berlin", "2026-03-29T02:30:00", "2026-03-29T01:30:00Z"}, // skipped: = 03:30 CEST
		{"Europe/Berlin", "2026-10-25T02:30:00", "2026-10-25T00:30:00Z"}, // repeated: first (CEST)
		{"Europe/Berlin", "2026-10-25T03:00:00", "2026-10-25T02:00:00Z"}, // CET
		{"UTC", "2026-11-01T01:30:00", "2026-11-01T01:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.wall, func(t *testing.T) {
			loc, err := time.LoadLocation(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			wall, err := time.Parse("2006-01-02T15:04:05", tt.wall)
			if err != nil {
				t.Fatal(err)
			}
			got := PlaceWallClock(wall, loc)
			if s := got.UTC().Format(time.RFC3339); s != tt.want {
				t.Fatalf("PlaceWallClock(%s, %s) = %s (%s), want %s", tt.wall, tt.zone, s, got.Format(time.RFC3339), tt.want)
			}
			// The Decoder's reading of an Emma date is the same.
			ts, err := ParseTime("@D:"+tt.wall, loc)
			if err != nil || ts.UTC().Format(time.RFC3339) != tt.want {
				t.Fatalf("ParseTime = %v, %v", ts.Time, err)
			}
		})
	}
}

// TestTimeDateDiffersFromTheRule shows why PlaceWallClock exists: if Go's
// time.Date ever starts to follow the rule, this test says the helper can
// go.
func TestTimeDateDiffersFromTheRule(t *testing.T) {
	chicago, _ := time.LoadLocation("America/Chicago")
	if got := time.Date(2026, 3, 8, 2, 30, 0, 0, chicago).UTC(); got.Equal(PlaceWallClock(time.Date(2026, 3, 8, 2, 30, 0, 0, time.UTC), chicago)) {
		t.Fatalf("time.Date reads Chicago's skipped 02:30 as %v, as PlaceWallClock does", got)
	}
}

func TestTimeKeepsEmmasString(t *testing.T) {
	for _, in := range []string{"@D:2017-12-21T11:01:11", "2017-12-21T11:01:11-06:00", " @D:2017-12-21 "} {
		var tm Time
		raw, _ := json.Marshal(in)
		if err := json.Unmarshal(raw, &tm); err != nil {
			t.Fatal(err)
		}
		if tm.Emma() != in {
			t.Errorf("Emma() = %q, want %q", tm.Emma(), in)
		}
		if p, _ := ParseTime(in, nil); p.Emma() != in {
			t.Errorf("ParseTime(%q).Emma() = %q", in, p.Emma())
		}
	}
}
