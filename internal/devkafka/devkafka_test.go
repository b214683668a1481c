package devkafka

import (
	"context"
	"net"
	"testing"
)

func TestBrokerLifecycle(t *testing.T) {
	t.Parallel()
	idle := New("127.0.0.1:0")
	for range 2 {
		if err := idle.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown without Start: %v", err)
		}
	}
	if err := idle.Start(context.Background()); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}

	b, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrs := b.Addrs()
	if len(addrs) != 1 {
		t.Fatalf("addrs %v", addrs)
	}
	c, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatalf("the broker does not listen: %v", err)
	}
	c.Close()
	if err := b.Start(context.Background()); err == nil {
		t.Fatal("a second Start succeeded")
	}
	for range 2 {
		if err := b.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := net.Dial("tcp", addrs[0]); err == nil {
		t.Fatal("still listening after Shutdown")
	}
}

func TestStartRejectsABadAddress(t *testing.T) {
	t.Parallel()
	if _, err := Start("no-port"); err == nil {
		t.Fatal("started on an address without a port")
	}
}
