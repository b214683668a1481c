// Command gen writes the files of package schemas (run by go generate in
// that directory). It refuses to overwrite a committed schema with one that
// breaks its consumers (a removed or retyped field) unless -allow-breaking
// is given, which belongs with a new major version of the contract.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/emma-gateway/emma-gateway/schemas/internal/schemagen"
)

func main() {
	dir := flag.String("dir", ".", "the schemas directory")
	allowBreaking := flag.Bool("allow-breaking", false, "write schemas that remove or retype committed fields (a new major version)")
	flag.Parse()
	if err := run(*dir, *allowBreaking); err != nil {
		fmt.Fprintln(os.Stderr, "schemas/internal/gen:", err)
		os.Exit(1)
	}
}

func run(dir string, allowBreaking bool) error {
	files, err := schemagen.Generate()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range schemagen.Names(files) {
		if !strings.HasSuffix(name, ".json") || allowBreaking {
			continue
		}
		old, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := schemagen.Compatible(old, files[name]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, name := range schemagen.Names(files) {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}
