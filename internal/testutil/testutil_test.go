package testutil

import (
	"runtime"
	"testing"
	"time"
)

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	start := time.Now()
	n := 0
	Eventually(t, 5*time.Second, "three polls", func() bool { n++; return n == 3 })
	if n != 3 || time.Since(start) > time.Second {
		t.Errorf("%d polls in %v", n, time.Since(start))
	}
}

func TestEventuallyFailsAfterItsBound(t *testing.T) {
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(ft, 20*time.Millisecond, "never", func() bool { return false })
	}()
	<-done
	if !ft.failed {
		t.Error("a condition that never holds did not fail the test")
	}
}

// fakeT records Fatalf instead of stopping the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit() // as t.Fatalf does
}
