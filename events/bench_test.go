package events_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
)

// BenchmarkDecodeValidateEncode measures what the gateway does with each
// callback between HTTP and Kafka, per event type: decode (with the
// event_id hash), validate, and encode the normalized value. The callbacks
// are the contract tests' (cmd/emma-gateway/testdata/callbacks), one per
// event type.
func BenchmarkDecodeValidateEncode(b *testing.B) {
	files, err := filepath.Glob("../cmd/emma-gateway/testdata/callbacks/*.json")
	if err != nil || len(files) == 0 {
		b.Fatalf("no callbacks: %v", err)
	}
	d := events.NewDecoder(events.DecoderConfig{})
	received := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, f := range files {
		payload, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				ev, err := d.Parse(payload, events.DeliveryPOST, received)
				if err != nil {
					b.Fatal(err)
				}
				if err := d.Validate(ev); err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeValidateAppend is BenchmarkDecodeValidateEncode with the
// value appended to a reused buffer ([events.Event.AppendJSON]), as a sink
// with a pooled buffer encodes it: what is left is the decoder's own cost.
func BenchmarkDecodeValidateAppend(b *testing.B) {
	files, err := filepath.Glob("../cmd/emma-gateway/testdata/callbacks/*.json")
	if err != nil || len(files) == 0 {
		b.Fatalf("no callbacks: %v", err)
	}
	d := events.NewDecoder(events.DecoderConfig{})
	received := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, f := range files {
		payload, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				ev, err := d.Parse(payload, events.DeliveryPOST, received)
				if err != nil {
					b.Fatal(err)
				}
				if err := d.Validate(ev); err != nil {
					b.Fatal(err)
				}
				if buf, err = ev.AppendJSON(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
