package devkafka

// The fault injections the tests of sinks and cmd/emma-gateway share. They
// live with the broker so that kfake has one importer besides tests.

import (
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FailProduce makes c answer Produce requests with NOT_ENOUGH_REPLICAS, as
// a cluster that lost its in-sync replicas does, while failing is true.
// With topic set, only requests that write to that topic fail; kafka-go
// sends one topic-partition per request, so the other topics still succeed
// (a request mixing topics panics, to keep the test honest).
func FailProduce(c *kfake.Cluster, failing *atomic.Bool, topic string) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		preq := req.(*kmsg.ProduceRequest)
		hit := topic == ""
		for _, rt := range preq.Topics {
			hit = hit || rt.Topic == topic
		}
		if !failing.Load() || !hit {
			return nil, nil, false
		}
		if topic != "" && len(preq.Topics) > 1 {
			panic("devkafka.FailProduce: a produce request with several topics")
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}
