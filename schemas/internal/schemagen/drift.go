package schemagen

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Drift compares the committed files with freshly generated ones and
// reports every difference as one error: a file that differs, is missing or
// is no longer generated. For a JSON schema that differs, it also says
// whether the change is compatible, so that the message tells regenerating
// (go generate ./schemas) apart from a breaking change.
func Drift(committed fs.FS, generated map[string][]byte) error {
	var errs []error
	for _, name := range Names(generated) {
		old, err := fs.ReadFile(committed, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s is not committed: run go generate ./schemas", name))
			continue
		}
		if bytes.Equal(old, generated[name]) {
			continue
		}
		if strings.HasSuffix(name, ".json") {
			if err := Compatible(old, generated[name]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
		}
		errs = append(errs, fmt.Errorf("%s differs from what the Go types generate: run go generate ./schemas and commit it", name))
	}
	entries, err := fs.ReadDir(committed, ".")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, ok := generated[e.Name()]; !ok && !e.IsDir() && (strings.HasSuffix(e.Name(), ".json") || strings.HasSuffix(e.Name(), ".yaml")) {
			errs = append(errs, fmt.Errorf("%s is committed but no longer generated: removing a schema breaks its consumers", e.Name()))
		}
	}
	return errors.Join(errs...)
}
