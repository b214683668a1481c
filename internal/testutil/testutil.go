// Package testutil holds the helpers the tests of several packages share.
// Only tests import it.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Eventually polls cond until it is true, and fails the test with what (a
// description of the awaited state) when it is still false after within.
// Polling, never a fixed sleep: a fast machine finishes early, a slow one
// still has the whole bound.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(within, cond) {
		t.Fatalf("after %v: still not %s", within, what)
	}
}

// Poll calls cond until it is true or within has passed, and reports
// whether it became true. The wait between calls starts at a millisecond
// and doubles up to within/200 (at most half a second), so that a costly
// condition (reading a topic) is not hammered during a long bound.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	ceiling := min(max(within/200, 10*time.Millisecond), 500*time.Millisecond)
	for wait := time.Millisecond; ; wait = min(2*wait, ceiling) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
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
