// Package devkafka is the development broker: an in-memory, single-broker
// Kafka-protocol cluster (franz-go's kfake) that serve starts when no
// brokers are configured, and that tests start on a free port. It is the
// only package besides tests that imports kfake, so that the production
// sink links no fake broker.
package devkafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is an in-memory Kafka-protocol broker: any Kafka client can
// connect to it, and the gateway publishes to it through the same kafka-go
// path as to a real cluster. Its data lives only as long as the process.
type Broker struct {
	addr string
	opts []kfake.Opt

	mu      sync.Mutex
	cluster *kfake.Cluster
	stopped bool
}

// New returns a broker that will listen on addr (host:port; port 0 picks a
// free one) with kfake's opts added to its own. It does not listen: call
// Start.
func New(addr string, opts ...kfake.Opt) *Broker {
	return &Broker{addr: addr, opts: opts}
}

// Start listens. kfake starts at once, so ctx is not waited on.
func (b *Broker) Start(_ context.Context) error {
	if _, _, err := net.SplitHostPort(b.addr); err != nil {
		return fmt.Errorf("embedded kafka address %q: %w", b.addr, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.stopped:
		return errors.New("embedded kafka: shut down")
	case b.cluster != nil:
		return errors.New("embedded kafka: already started")
	}
	listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, b.addr) }
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.ClusterID("emma-gateway-embedded"),
	}, b.opts...)...)
	if err != nil {
		return fmt.Errorf("embedded kafka on %s: %w", b.addr, err)
	}
	b.cluster = c
	return nil
}

// AutoCreateTopics makes the broker create a topic, with partitions
// partitions, on first use, for clients that do not create their topics
// (the gateway does).
func AutoCreateTopics(partitions int) []kfake.Opt {
	return []kfake.Opt{kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(partitions)}
}

// Start is New and Broker.Start in one call.
func Start(addr string, opts ...kfake.Opt) (*Broker, error) {
	b := New(addr, opts...)
	if err := b.Start(context.Background()); err != nil {
		return nil, err
	}
	return b, nil
}

// Addrs returns the broker's listen address, host:port (none before Start).
func (b *Broker) Addrs() []string {
	if c := b.Cluster(); c != nil {
		return c.ListenAddrs()
	}
	return nil
}

// Cluster returns the underlying kfake cluster, for tests that inject
// faults; nil before Start.
func (b *Broker) Cluster() *kfake.Cluster {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cluster
}

// Shutdown stops the broker, bounded by ctx. Safe without Start and safe
// twice.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	c := b.cluster
	b.cluster, b.stopped = nil, true
	b.mu.Unlock()
	if c == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded kafka shutdown: %w", ctx.Err())
	}
}
