package sinks

import (
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-memory, single-broker Kafka-protocol cluster (franz-go's
// kfake) for development and tests: any Kafka client can connect to it, and
// the gateway publishes to it through the same kafka-go path as to a real
// cluster. Its data lives only as long as the process.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts an embedded broker listening on addr (host:port; port
// 0 picks a free one).
func StartEmbedded(addr string, opts ...kfake.Opt) (*Embedded, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("embedded kafka address %q: %w", addr, err)
	}
	listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.ClusterID("emma-gateway-embedded"),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka on %s: %w", addr, err)
	}
	return &Embedded{cluster: c}, nil
}

// Addrs returns the broker's listen address, host:port.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Cluster returns the underlying kfake cluster, for tests that inject faults.
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker. Safe to call twice.
func (e *Embedded) Close() {
	e.cluster.Close()
}
