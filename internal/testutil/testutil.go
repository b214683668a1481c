// Package testutil holds the helpers the tests of several packages share.
// Only tests import it.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it is true, and fails
// the test with what (a description of the awaited state) when it is still
// false after within. Polling, never a fixed sleep: a fast machine
// finishes early, a slow one still has the whole bound.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still not %s", within, what)
		}
		time.Sleep(wait)
	}
}

// Buffer is a bytes.Buffer safe for a writer and a reader in different
// goroutines (a command's output read while it runs).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
