package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Binary is the emma-gateway binary that the subprocess tests of one test
// run share: built once (a build costs seconds), removed by Remove (from
// TestMain).
type Binary struct {
	// Package is what `go build` builds, e.g. "." or an import path.
	Package string

	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// Path builds the binary on first use and returns its path; a failed
// build fails t with the compiler's output.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "emma-gateway-test-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "emma-gateway")
		b.out, b.err = exec.Command("go", "build", "-o", b.bin, b.Package).CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build: %v\n%s", b.err, b.out)
	}
	return b.bin
}

// Remove deletes the built binary, if any.
func (b *Binary) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
