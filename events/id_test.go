package events

import (
	"encoding/json"
	"testing"
)

func TestIDDecodesIntegersAndNumericStrings(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{`1160010079`, 1160010079, false},
		{`"1160010079"`, 1160010079, false},
		{`6160010079`, 6160010079, false}, // above 2^32
		{`9223372036854775807`, 9223372036854775807, false},
		{`" 42 "`, 42, false},
		{`0`, 0, false},
		{`9223372036854775808`, 0, true}, // overflows int64
		{`"99999999999999999999999"`, 0, true},
		{`-1`, 0, true},
		{`1.5`, 0, true},
		{`1e3`, 0, true},
		{`1e400`, 0, true},
		{`"12x"`, 0, true},
		{`""`, 0, true},
		{`true`, 0, true},
		{`[1]`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var id ID
			err := json.Unmarshal([]byte(tt.in), &id)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && id != tt.want {
				t.Fatalf("Unmarshal(%s) = %d, want %d", tt.in, id, tt.want)
			}
		})
	}
}

func TestIDNullLeavesValueAndPointerNil(t *testing.T) {
	var v struct {
		A ID  `json:"a"`
		B *ID `json:"b"`
	}
	v.A = 7
	if err := json.Unmarshal([]byte(`{"a":null,"b":null}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 7 || v.B != nil {
		t.Fatalf("got A=%d B=%v, want 7 and nil", v.A, v.B)
	}
}

func TestIDEncodesAsJSONInteger(t *testing.T) {
	b, err := json.Marshal(struct {
		ID ID `json:"id"`
	}{6160010079})
	if err != nil || string(b) != `{"id":6160010079}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
}
