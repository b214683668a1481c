package receiver

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// reloadable is a value loaded from files, reloaded when any of them looks
// different (modification time or size: enough for files an operator, a
// secret manager or a certificate renewer replaces). A load that fails
// keeps the value in force. The tokens file and the TLS certificate pair
// share it.
type reloadable[T any] struct {
	files []string
	load  func() (T, error)

	current atomic.Pointer[T]
	mu      sync.Mutex // serializes loads; guards stamps
	stamps  []fileStamp
}

// fileStamp is what tells one version of a file from the next.
type fileStamp struct {
	mod  time.Time
	size int64
}

// newReloadable loads the value once; an error there is the caller's to
// report (there is no value in force yet).
func newReloadable[T any](load func() (T, error), files ...string) (*reloadable[T], error) {
	r := &reloadable[T]{files: files, load: load}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// get returns the value in force.
func (r *reloadable[T]) get() *T { return r.current.Load() }

// reload loads the value now. The files are stat'ed before they are read,
// so that a change racing the read is seen at the next check.
func (r *reloadable[T]) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamps, err := r.stat()
	if err != nil {
		return err
	}
	v, err := r.load()
	if err != nil {
		return err
	}
	r.current.Store(&v)
	r.stamps = stamps
	return nil
}

// reloadIfChanged reloads when a file looks different from the version
// last loaded, and says whether it did; a file that cannot be stat'ed
// counts as changed, so that its error is reported.
func (r *reloadable[T]) reloadIfChanged() (bool, error) {
	r.mu.Lock()
	stamps, err := r.stat()
	same := err == nil && len(stamps) == len(r.stamps)
	for i := 0; same && i < len(stamps); i++ {
		same = stamps[i].mod.Equal(r.stamps[i].mod) && stamps[i].size == r.stamps[i].size
	}
	r.mu.Unlock()
	if same {
		return false, nil
	}
	return true, r.reload()
}

func (r *reloadable[T]) stat() ([]fileStamp, error) {
	stamps := make([]fileStamp, len(r.files))
	var errs []error
	for i, f := range r.files {
		fi, err := os.Stat(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("receiver: %w", err))
			continue
		}
		stamps[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return stamps, errors.Join(errs...)
}
