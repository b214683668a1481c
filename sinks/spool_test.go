package sinks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/segmentio/kafka-go"
)

func openTestSpool(t *testing.T, dir string, mutate func(*SpoolConfig)) *Spool {
	t.Helper()
	cfg := DefaultSpoolConfig()
	cfg.Dir = dir
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := OpenSpool(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func msg(i int) kafka.Message {
	return kafka.Message{
		Topic:   "emma.message_open",
		Key:     []byte(fmt.Sprint(i)),
		Value:   []byte(fmt.Sprintf(`{"n":%d}`, i)),
		Headers: []kafka.Header{{Key: "ce_id", Value: []byte(fmt.Sprint("id-", i))}, {Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}},
	}
}

// readAll reads every sealed segment's intact records, in order.
func readAll(t *testing.T, s *Spool) []kafka.Message {
	t.Helper()
	segs, err := s.sealed()
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for _, seq := range segs {
		recs, _, err := readSegment(s.path(seq))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, r.msg)
		}
	}
	return out
}

func TestSpoolRoundTripKeepsMessagesWhole(t *testing.T) {
	s := openTestSpool(t, t.TempDir(), nil)
	nilKey := msg(2)
	nilKey.Key = nil
	in := []kafka.Message{msg(1), nilKey, {Topic: "emma.deadletter", Value: []byte{0, 1, 0xff}}}
	if err := s.Append(context.Background(), in...); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Records != 3 || st.Oldest.IsZero() || !s.Pending() {
		t.Fatalf("stats %+v", st)
	}
	out := readAll(t, s)
	if len(out) != 3 {
		t.Fatalf("read %d records", len(out))
	}
	// The spool time is the record's; the rest is the message as given.
	if diff := cmp.Diff(in, out, cmpopts.IgnoreFields(kafka.Message{}, "Time")); diff != "" {
		t.Fatalf("read back (-want +got):\n%s", diff)
	}
}

func TestSpoolGroupCommitsConcurrentAppends(t *testing.T) {
	s := openTestSpool(t, t.TempDir(), nil)
	const writers, each = 32, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Append(context.Background(), msg(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Appended != writers*each || st.Records != writers*each {
		t.Fatalf("stats %+v", st)
	}
	if st.Fsyncs >= st.Appended {
		t.Fatalf("%d fsyncs for %d appends: no group commit", st.Fsyncs, st.Appended)
	}
	t.Logf("%d appends, %d fsyncs", st.Appended, st.Fsyncs)
	if got := len(readAll(t, s)); got != writers*each {
		t.Fatalf("read back %d records", got)
	}
}

// TestSpoolShutdownWithoutStartIsSafe: a spool opened and never started
// shuts down cleanly, twice.
func TestSpoolShutdownWithoutStartIsSafe(t *testing.T) {
	cfg := DefaultSpoolConfig()
	cfg.Dir = t.TempDir()
	s, err := OpenSpool(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(context.Background()); !errors.Is(err, errSpoolClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
}

func TestSpoolReopenCountsWhatAPreviousRunLeft(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultSpoolConfig()
	cfg.Dir = dir
	s, err := OpenSpool(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), msg(0)); !errors.Is(err, errSpoolNotStarted) {
		t.Fatalf("append before Start: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := s.Append(context.Background(), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil { // twice is safe
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), msg(99)); err == nil {
		t.Fatal("append after close succeeded")
	}
	s2 := openTestSpool(t, dir, nil)
	if st := s2.Stats(); st.Records != 10 {
		t.Fatalf("reopened spool counts %d records, want 10", st.Records)
	}
	if got := readAll(t, s2); len(got) != 10 || string(got[9].Key) != "9" {
		t.Fatalf("read back %d records", len(got))
	}
}

// corruptSegment writes n records to a fresh spool, closes it, and lets
// damage change the one segment file.
func corruptSegment(t *testing.T, n int, damage func(data []byte) []byte) *Spool {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultSpoolConfig()
	cfg.Dir = dir
	s, err := OpenSpool(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.Append(context.Background(), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	var full string
	for _, p := range segs {
		if info, _ := os.Stat(p); info.Size() > 0 {
			full = p
		}
	}
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, damage(data), 0o640); err != nil {
		t.Fatal(err)
	}
	return openTestSpool(t, dir, nil)
}

func TestSpoolSkipsTornTail(t *testing.T) {
	s := corruptSegment(t, 20, func(d []byte) []byte { return d[:len(d)-7] }) // a crash mid-record
	got := readAll(t, s)
	if len(got) != 19 || string(got[18].Key) != "18" {
		t.Fatalf("read %d records, want the 19 intact ones", len(got))
	}
	if s.Stats().Records != 19 {
		t.Fatalf("counted %d records", s.Stats().Records)
	}
}

func TestSpoolSkipsFlippedByteAndReadsTheRest(t *testing.T) {
	var recLen int
	s := corruptSegment(t, 20, func(d []byte) []byte {
		recLen = len(d) / 20 // every record has the same size here
		d[5*recLen+recLen/2] ^= 0x40
		return d
	})
	got := readAll(t, s)
	if len(got) != 19 {
		t.Fatalf("read %d records, want 19", len(got))
	}
	for i, m := range got {
		want := i
		if i >= 5 {
			want = i + 1 // record 5 is the damaged one
		}
		if string(m.Key) != fmt.Sprint(want) {
			t.Fatalf("record %d has key %s, want %d", i, m.Key, want)
		}
	}
	// A damaged length field is skipped too.
	s = corruptSegment(t, 20, func(d []byte) []byte {
		d[3*recLen+5] ^= 0xff
		return d
	})
	if got := readAll(t, s); len(got) != 19 {
		t.Fatalf("damaged length: read %d records, want 19", len(got))
	}
}

func TestSpoolFullRefusesAppends(t *testing.T) {
	s := openTestSpool(t, t.TempDir(), func(c *SpoolConfig) { c.MaxBytes, c.SegmentBytes = 1<<20, 64<<10 })
	big := kafka.Message{Topic: "t", Value: make([]byte, 100<<10)}
	var err error
	for range 20 {
		if err = s.Append(context.Background(), big); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("append to a full spool: %v", err)
	}
	if st := s.Stats(); st.Bytes > 1<<20 {
		t.Fatalf("spool grew to %d bytes past its cap", st.Bytes)
	}
}

func TestSpoolConfigValidate(t *testing.T) {
	c := SpoolConfig{Dir: "x", MaxBytes: 10, SegmentBytes: 1, After: 0, ReplayBatch: 0}
	err := c.Validate()
	for _, want := range []string{"max bytes", "segment bytes", "deadline", "replay batch"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if err := (SpoolConfig{}).Validate(); err != nil {
		t.Errorf("no directory means no spool, not an error: %v", err)
	}
}

// BenchmarkSpoolAppend measures the spool path alone: parallel appends of a
// 600-byte message, each waiting for its fsync. fsyncs/op shows the group
// commit at work (1.0 would mean one fsync per event).
func BenchmarkSpoolAppend(b *testing.B) {
	cfg := DefaultSpoolConfig()
	cfg.Dir = b.TempDir()
	s, err := OpenSpool(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	m := kafka.Message{Topic: "emma.message_open", Key: []byte("6160010079"), Value: make([]byte, 600)}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Append(context.Background(), m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(st.Fsyncs)/float64(st.Appended), "fsyncs/op")
}
