package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// dirState is every file of dir with its size and modification time, to
// show that a reader changed nothing.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprint(info.ModTime(), info.Size(), info.Mode())
	}
	return out
}

func TestSecondOpenSpoolOnTheSameDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultSpoolConfig()
	cfg.Dir = dir
	s, err := OpenSpool(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSpool(cfg, nil); !errors.Is(err, ErrSpoolInUse) {
		t.Fatalf("second OpenSpool of a held directory: %v, want ErrSpoolInUse", err)
	} else if want := "spool " + dir + ": spool directory in use by a running gateway"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenSpool(cfg, nil)
	if err != nil {
		t.Fatalf("OpenSpool after the holder closed: %v", err)
	}
	if err := s2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestInspectSpoolRefusesWhileAGatewayHoldsIt(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpool(t, dir, nil)
	if err := s.Append(context.Background(), msg(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := InspectSpool(dir); !errors.Is(err, ErrSpoolInUse) {
		t.Fatalf("InspectSpool of a held spool: %v, want ErrSpoolInUse", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := InspectSpool(dir)
	if err != nil {
		t.Fatalf("InspectSpool after Close: %v", err)
	}
	if st.Records != 1 {
		t.Errorf("records %d, want 1", st.Records)
	}
}

func TestInspectSpoolCountsRecordsBytesAgeAndTopics(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultSpoolConfig()
	cfg.Dir = dir
	cfg.SegmentBytes = 4096 // several segments
	s, err := OpenSpool(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	topics := map[string]int64{"emma.message_open": 0, "emma.member_signup": 0, "emma.events": 0}
	names := []string{"emma.message_open", "emma.member_signup", "emma.events"}
	const n = 90
	for i := range n {
		m := msg(i)
		m.Topic = names[i%3]
		if i%3 == 0 {
			m.Value = make([]byte, 300)
		}
		topics[m.Topic]++
		if err := s.Append(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now()
	want := s.Stats()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	state := dirState(t, dir)
	st, err := InspectSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != n || st.Records != want.Records {
		t.Errorf("records %d, want %d (the spool counted %d)", st.Records, n, want.Records)
	}
	var size int64
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, p := range segs {
		info, _ := os.Stat(p)
		size += info.Size()
	}
	if st.Bytes != size || st.Bytes != want.Bytes || size == 0 {
		t.Errorf("bytes %d, the segments hold %d, the spool counted %d", st.Bytes, size, want.Bytes)
	}
	if st.Segments != len(segs) || st.Segments < 3 {
		t.Errorf("segments %d, the directory holds %d (want several)", st.Segments, len(segs))
	}
	if st.Oldest.Before(before.Add(-time.Millisecond)) || st.Oldest.After(after) || !st.Oldest.Equal(want.Oldest) {
		t.Errorf("oldest %v, want between %v and %v and equal to the spool's %v", st.Oldest, before, after, want.Oldest)
	}
	if age := st.OldestAge(st.Oldest.Add(time.Minute)); age != time.Minute {
		t.Errorf("OldestAge a minute later: %v", age)
	}
	var got []string
	for _, tc := range st.Topics {
		got = append(got, tc.Topic)
		if tc.Records != topics[tc.Topic] {
			t.Errorf("topic %s: %d records, want %d", tc.Topic, tc.Records, topics[tc.Topic])
		}
		if tc.Oldest.Before(st.Oldest) {
			t.Errorf("topic %s is older than the spool's oldest", tc.Topic)
		}
	}
	if !slices.Equal(got, []string{"emma.events", "emma.member_signup", "emma.message_open"}) {
		t.Errorf("topics %v, want the three, sorted", got)
	}
	if after := dirState(t, dir); !maps.Equal(state, after) {
		t.Errorf("InspectSpool changed the directory:\nbefore %v\nafter  %v", state, after)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back SpoolStatus
	if err := json.Unmarshal(b, &back); err != nil || back.Records != st.Records || len(back.Topics) != 3 || !back.Oldest.Equal(st.Oldest) || !strings.Contains(string(b), `"records":90`) {
		t.Errorf("JSON %s decodes to %+v (%v)", b, back, err)
	}
	// What the next run would replay is what was counted.
	reopened := openTestSpool(t, dir, nil)
	if r := reopened.Stats().Records; r != st.Records {
		t.Errorf("a reopened spool counts %d records, InspectSpool %d", r, st.Records)
	}
}

func TestInspectSpoolCreatesNoLockFileAndCountsCorruption(t *testing.T) {
	src := t.TempDir()
	cfg := DefaultSpoolConfig()
	cfg.Dir, cfg.MaxBytes, cfg.SegmentBytes, cfg.After, cfg.ReplayBatch = src, 1<<20, 1<<20, time.Second, 1
	s, err := OpenSpool(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Append(context.Background(), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A directory as an older gateway (without the lock) left it, with a
	// crash's torn tail.
	dir := t.TempDir()
	segs, _ := filepath.Glob(filepath.Join(src, "*.seg"))
	for _, p := range segs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 {
			data = append(data, data[:20]...)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	st, err := InspectSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 5 || st.Corrupt != 1 {
		t.Errorf("records %d corrupt %d, want 5 and 1", st.Records, st.Corrupt)
	}
	if _, err := os.Stat(filepath.Join(dir, lockName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("InspectSpool left a lock file behind: %v", err)
	}
}

func TestInspectSpoolOfAnEmptyOrMissingDirectory(t *testing.T) {
	st, err := InspectSpool(t.TempDir())
	if err != nil || st.Records != 0 || st.Bytes != 0 || !st.Oldest.IsZero() || st.OldestAge(time.Now()) != 0 || len(st.Topics) != 0 {
		t.Errorf("empty directory: %+v, %v", st, err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := InspectSpool(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v, want a not-exist error", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("InspectSpool created the missing directory")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := InspectSpool(f); err == nil {
		t.Errorf("a plain file inspected without error")
	}
}
