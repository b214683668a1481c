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
