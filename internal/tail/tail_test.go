package tail

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/testutil"
)

func noEnv(string) string { return "" }

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTailRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--format", "yaml"},
		{"--accounts", "acme"},
		{"--members", "-3"},
		{"extra-argument"},
	} {
		err := Run(context.Background(), args, cli.IO{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: noEnv})
		if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), strings.TrimPrefix(args[0], "--")) {
			t.Errorf("tail %v: %v", args, err)
		}
	}
}

// TestTailFailsWhenNoBrokerAnswers: tail with nothing to read is an error
// (exit 1) that names the brokers, not a silent exit 0.
func TestTailFailsWhenNoBrokerAnswers(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--kafka-brokers", addr}, cli.IO{Stdout: &bytes.Buffer{}, Stderr: &stderr, Getenv: noEnv}, 500*time.Millisecond)
	if err == nil || errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), "no broker answers at "+addr) {
		t.Fatalf("want an error naming %s, got %v", addr, err)
	}
}

// TestTailFailsWhenItCannotReadAPartition: once the broker goes away, the
// readers give up and tail fails with their error; it used to print what it
// had and exit 0, as if there had been nothing more to show.
func TestTailFailsWhenItCannotReadAPartition(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "emma.message_open"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stderr := &testutil.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), []string{"--kafka-brokers", c.ListenAddrs()[0], "--topics", "emma.message_open"},
			cli.IO{Stdout: &bytes.Buffer{}, Stderr: stderr, Getenv: noEnv})
	}()
	testutil.Eventually(t, 10*time.Second, "reading", func() bool { return strings.Contains(stderr.String(), "reading 1 partitions") })
	c.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "cannot read emma.message_open/0") {
			t.Fatalf("want the partition's error, got %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tail still runs 30s after its broker went away")
	}
}

// TestTailStopsCleanlyWithItsContext: Ctrl-C is a normal end (exit 0).
func TestTailStopsCleanlyWithItsContext(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "emma.message_open"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &testutil.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--kafka-brokers", c.ListenAddrs()[0], "--topics", "emma.message_open"},
			cli.IO{Stdout: &bytes.Buffer{}, Stderr: stderr, Getenv: noEnv})
	}()
	testutil.Eventually(t, 10*time.Second, "reading", func() bool { return strings.Contains(stderr.String(), "reading 2 partitions") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail stopped by its context: %v", err)
	}
}
