package sinks

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPublishRefreshesMetadataOnNotLeader answers the first produce requests
// with NOT_LEADER_OR_FOLLOWER, as Apache Kafka does just after a topic is
// created or its leader moved, more times than the Writer's MaxAttempts:
// kafka-go alone would give up on its stale metadata within milliseconds.
// The publish must succeed, after fetching the metadata again.
func TestPublishRefreshesMetadataOnNotLeader(t *testing.T) {
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), func(c *Config) { c.MaxAttempts = 2 })
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var refused, metadata atomic.Int32
	c := e.Cluster()
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if refused.Load() >= 3 {
			return nil, nil, false
		}
		refused.Add(1)
		preq := req.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if refused.Load() > 0 {
			metadata.Add(1)
		}
		return nil, nil, false
	})
	if err := k.Publish(context.Background(), testEvent(t)); err != nil {
		t.Fatalf("Publish after %d NOT_LEADER answers: %v", refused.Load(), err)
	}
	if refused.Load() != 3 || metadata.Load() == 0 {
		t.Fatalf("%d produce requests refused, %d metadata requests after the first; want 3 and some", refused.Load(), metadata.Load())
	}
}
