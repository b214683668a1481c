package sinks

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"
)

// FuzzSpoolRecord: any message survives appendRecord and parseRecord
// whole, and parseRecord never panics nor accepts a damaged record: a
// flipped byte in a framed record is either caught by the CRC or leaves a
// record that still decodes to a message (never one read past the end).
func FuzzSpoolRecord(f *testing.F) {
	f.Add("emma.message_open", []byte("6160010079"), []byte(`{"event_name":"message_open"}`), "traceparent", []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), false, 0, uint8(1))
	f.Add("", []byte(nil), []byte{}, "", []byte{}, true, 11, uint8(0x80))
	f.Add("emma.deadletter", []byte("x"), bytes.Repeat([]byte{0xE3, 0x3A, 0x5F, 0x01}, 8), "emma_reason", []byte("malformed"), false, 3, uint8(0xff))
	f.Fuzz(func(t *testing.T, topic string, key, value []byte, hkey string, hval []byte, nilKey bool, flipAt int, flip uint8) {
		if len(topic) > 1<<15 || len(hkey) > 1<<15 {
			t.Skip("beyond the 16-bit length fields of topics and header keys")
		}
		if nilKey {
			key = nil
		} else if key == nil {
			key = []byte{}
		}
		if value == nil {
			value = []byte{}
		}
		if hval == nil {
			hval = []byte{}
		}
		at := time.Unix(0, 1_700_000_000_123_456_789)
		m := kafka.Message{Topic: topic, Key: key, Value: value, Headers: []kafka.Header{{Key: hkey, Value: hval}}}
		rec := appendRecord(nil, m, at)
		got, n, ok := parseRecord(rec)
		if !ok || n != len(rec) {
			t.Fatalf("round trip: ok %v, %d of %d bytes", ok, n, len(rec))
		}
		want := m
		want.Time = at
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		// A record followed by more bytes reads the same.
		if _, n2, ok := parseRecord(append(rec, 0xE3, 0x3A)); !ok || n2 != n {
			t.Fatalf("with trailing bytes: ok %v, %d", ok, n2)
		}
		// Damage: a flipped byte or a cut tail is refused or still whole.
		if flip != 0 && len(rec) > 0 {
			bad := bytes.Clone(rec)
			i := ((flipAt % len(bad)) + len(bad)) % len(bad)
			bad[i] ^= flip
			if _, n, ok := parseRecord(bad); ok && n > len(bad) {
				t.Fatalf("parsed %d bytes of %d", n, len(bad))
			}
			if i >= headerSize {
				if _, _, ok := parseRecord(bad); ok {
					t.Fatalf("a flipped payload byte at %d passed the CRC", i)
				}
			}
		}
		if _, _, ok := parseRecord(rec[:len(rec)-1]); ok {
			t.Fatal("a record cut short was accepted")
		}
	})
}
