package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// envPrefix prefixes the environment variable of every flag.
const envPrefix = "EMMA_GATEWAY_"

// envName is the environment variable of a flag: --kafka-brokers is
// EMMA_GATEWAY_KAFKA_BROKERS.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flagSet is a flag.FlagSet whose every flag also reads its environment
// variable when not given on the command line.
type flagSet struct {
	*flag.FlagSet
	// env overrides the variable name of some flags (those named by SPEC
	// outside the EMMA_GATEWAY_ prefix).
	env map[string]string
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return &flagSet{FlagSet: fs, env: map[string]string{}}
}

func (fs *flagSet) envOf(name string) string {
	if e, ok := fs.env[name]; ok {
		return e
	}
	return envName(name)
}

// parse parses args, then applies the environment variables of the flags
// not set on the command line. It reports every bad value at once, naming
// the variable but never echoing its value (it may be a secret).
func (fs *flagSet) parse(args []string, getenv func(string) string) error {
	// Usage lines name each flag's variable.
	fs.VisitAll(func(f *flag.Flag) {
		f.Usage = fmt.Sprintf("%s (env %s)", f.Usage, fs.envOf(f.Name))
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		v := getenv(fs.envOf(f.Name))
		if v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: not a valid %s", fs.envOf(f.Name), kindOf(f)))
		}
	})
	return errors.Join(errs...)
}

// parseFlagsOnly parses the arguments of a command that takes flags and no
// positional arguments; its errors are usage errors (exit code 2), but for
// -h.
func (fs *flagSet) parseFlagsOnly(args []string) error {
	if err := fs.parse(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

func kindOf(f *flag.Flag) string {
	switch f.Value.(type) {
	case interface{ IsBoolFlag() bool }:
		return "boolean"
	}
	if _, err := time.ParseDuration(f.DefValue); err == nil && f.DefValue != "0" {
		return "duration (e.g. 5s)"
	}
	return "value"
}

// listValue is a comma-separated list flag.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// secretValue is a string flag whose value is never printed, not even as a
// default in -help.
type secretValue string

func (s *secretValue) String() string {
	if s == nil || *s == "" {
		return ""
	}
	return "(set)"
}

func (s *secretValue) Set(v string) error { *s = secretValue(v); return nil }

// secretList is a comma-separated list of secrets (the webhook tokens).
type secretList []string

func (l *secretList) String() string {
	if l == nil || len(*l) == 0 {
		return ""
	}
	return fmt.Sprintf("(%d set)", len(*l))
}

func (l *secretList) Set(s string) error { return (*listValue)(l).Set(s) }

func getenv(name string) string { return os.Getenv(name) }
