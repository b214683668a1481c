package sinks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// SpoolStatus is what a spool directory holds, as [InspectSpool] reads it.
// Its JSON form is what `spool status --json` prints.
type SpoolStatus struct {
	// Dir is the directory inspected.
	Dir string `json:"dir"`
	// Segments is the number of segment files, empty ones included.
	Segments int `json:"segments"`
	// Records is the number of intact records: events answered 200 but not
	// yet known to be in Kafka. A record in a segment the replayer had
	// half sent when the gateway stopped is counted (and will be sent
	// again: at-least-once).
	Records int64 `json:"records"`
	// Bytes is the size of the segment files on disk.
	Bytes int64 `json:"bytes"`
	// Oldest is when the oldest record was spooled; zero when empty.
	Oldest time.Time `json:"oldest,omitzero"`
	// Corrupt counts the damaged stretches (a torn tail, a flipped byte)
	// that a replay will skip.
	Corrupt int `json:"corrupt"`
	// Topics counts the records by destination topic, by topic name.
	Topics []SpoolTopic `json:"topics"`
}

// SpoolTopic is the share of one topic in a spool.
type SpoolTopic struct {
	// Topic is the Kafka topic the records are bound for.
	Topic string `json:"topic"`
	// Records is how many records are bound for Topic.
	Records int64 `json:"records"`
	// Oldest is when the oldest of them was spooled.
	Oldest time.Time `json:"oldest"`
}

// OldestAge is how long the oldest record has waited at now; zero when the
// spool is empty.
func (st SpoolStatus) OldestAge(now time.Time) time.Duration {
	if st.Oldest.IsZero() {
		return 0
	}
	return now.Sub(st.Oldest)
}

// InspectSpool reads the spool in dir without changing it: it opens the
// segments read-only and never creates, truncates or deletes a file, so it
// is safe on the volume of a stopped gateway. It refuses with
// [ErrSpoolInUse] when a running gateway holds the directory's lock, since
// that gateway is appending and deleting segments under it and a count
// would be wrong the moment it was printed.
//
// The lock is only tested, not kept: a gateway starting while the segments
// are read must not fail because someone looked. A segment the starting
// gateway replays and deletes meanwhile is then simply not counted.
func InspectSpool(dir string) (SpoolStatus, error) {
	st := SpoolStatus{Dir: dir}
	info, err := os.Stat(dir)
	if err != nil {
		return st, fmt.Errorf("spool: %w", err)
	}
	if !info.IsDir() {
		return st, fmt.Errorf("spool: %s is not a directory", dir)
	}
	lock, err := lockSpool(dir, false)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No lock file: no gateway of this version ever opened the
		// directory (or it is not a spool at all; the count says so).
	case err != nil:
		return st, err
	default:
		lock.Close()
	}
	segs, err := listSegments(dir)
	if err != nil {
		return st, err
	}
	byTopic := map[string]*SpoolTopic{}
	for _, seq := range segs {
		path := segmentPath(dir, seq)
		info, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // replayed and removed since the listing
		}
		if err != nil {
			return st, fmt.Errorf("spool: %w", err)
		}
		recs, corrupt, err := readSegment(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return st, err
		}
		st.Segments++
		st.Bytes += info.Size()
		st.Corrupt += corrupt
		for _, r := range recs {
			st.Records++
			if st.Oldest.IsZero() || r.msg.Time.Before(st.Oldest) {
				st.Oldest = r.msg.Time
			}
			t := byTopic[r.msg.Topic]
			if t == nil {
				t = &SpoolTopic{Topic: r.msg.Topic, Oldest: r.msg.Time}
				byTopic[r.msg.Topic] = t
			}
			t.Records++
			if r.msg.Time.Before(t.Oldest) {
				t.Oldest = r.msg.Time
			}
		}
	}
	for _, t := range byTopic {
		st.Topics = append(st.Topics, *t)
	}
	slices.SortFunc(st.Topics, func(a, b SpoolTopic) int { return strings.Compare(a.Topic, b.Topic) })
	return st, nil
}
