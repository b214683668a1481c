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
// With topic set, only that topic's partitions fail: the other partitions
// of the same request are written, as a broker answers each partition of a
// request on its own.
func FailProduce(c *kfake.Cluster, failing *atomic.Bool, topic string) {
	c.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.Produce},
		Topic: topic,
		Err:   kerr.NotEnoughReplicas,
		Count: -1,
		When:  func(kmsg.Request) bool { return failing.Load() },
	})
}
