// Package cli is the flag and environment plumbing that every subcommand
// of emma-gateway shares: a flag set whose every flag also reads an
// environment variable, values that never print a secret, one Parse that
// accepts flags after positional arguments, and usage errors that the
// dispatcher maps to exit code 2.
//
// It knows nothing of the gateway's components; it imports only the
// standard library.
package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// EnvPrefix prefixes the environment variable of every flag of the
// binary's commands: --kafka-brokers is EMMA_GATEWAY_KAFKA_BROKERS. It is
// here, not with serve, so that a command that shares no code with serve
// need not link it to name its variables.
const EnvPrefix = "EMMA_GATEWAY_"

// ErrUsage marks errors the user made on the command line or in the
// environment (exit code 2). Test with errors.Is.
var ErrUsage = errors.New("usage")

// usageError wraps an error as a usage error without changing its text:
// the message a user reads names the problem, not the category.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func (e usageError) Unwrap() []error { return []error{ErrUsage, e.err} }

// Usage marks err as a usage error; nil stays nil.
func Usage(err error) error {
	if err == nil || errors.Is(err, ErrUsage) {
		return err
	}
	return usageError{err}
}

// Usagef is Usage(fmt.Errorf(format, args...)).
func Usagef(format string, args ...any) error {
	return Usage(fmt.Errorf(format, args...))
}

// IO is what a command reads and writes besides its arguments: the
// process's streams and environment, replaced by tests.
type IO struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Command is one subcommand of the binary, in the shape of cmd/go's
// base.Command: the dispatcher finds it by Name and prints Short in its
// usage.
type Command struct {
	// Name is the first argument that selects the command.
	Name string
	// Short is the usage line the dispatcher prints, e.g.
	// "tail [flags]      print the events arriving on the topics".
	Short string
	// Run runs the command with the arguments after its name. Its error
	// is printed once by the dispatcher; ErrUsage gives exit code 2,
	// flag.ErrHelp exit code 0.
	Run func(ctx context.Context, args []string, io IO) error
	// Hidden keeps the command out of the usage text: a command the binary
	// runs for itself (bench's comparison targets), not one for people.
	Hidden bool
}

// FlagSet is a flag.FlagSet whose every flag also reads its environment
// variable, Prefix + the flag name upper-cased with '-' as '_', when it is
// not given on the command line.
type FlagSet struct {
	*flag.FlagSet
	prefix string
	env    map[string]string
}

// NewFlagSet returns an empty flag set named name (the command, in error
// messages) whose variables start with prefix, e.g. "EMMA_GATEWAY_". Its
// errors are returned, never fatal; its usage text goes to output.
func NewFlagSet(name, prefix string, output io.Writer) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(cmp.Or[io.Writer](output, io.Discard))
	return &FlagSet{FlagSet: fs, prefix: prefix, env: map[string]string{}}
}

// SetEnv names the variable of flag explicitly (for a variable outside
// the prefix's scheme, or one kept apart from another command's).
func (fs *FlagSet) SetEnv(flagName, variable string) { fs.env[flagName] = variable }

// EnvPrefix gives every flag defined so far the variable prefix + its
// upper-cased name (e.g. "EMMA_GATEWAY_BENCH_"), unless SetEnv named one.
func (fs *FlagSet) EnvPrefix(prefix string) {
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := fs.env[f.Name]; !ok {
			fs.env[f.Name] = envName(prefix, f.Name)
		}
	})
}

// EnvOf is the environment variable that flag name reads.
func (fs *FlagSet) EnvOf(name string) string {
	return cmp.Or(fs.env[name], envName(fs.prefix, name))
}

func envName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args, flags and positional arguments in any order ("--"
// ends the flags), then applies the environment variables of the flags not
// set on the command line. It returns the positional arguments. It reports
// every bad variable at once, naming it but never echoing its value (it
// may be a secret). Errors are usage errors, but for -h and --help, which
// print the flags and return flag.ErrHelp.
func (fs *FlagSet) Parse(args []string, getenv func(string) string) ([]string, error) {
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "(env ") {
			f.Usage = fmt.Sprintf("%s (env %s)", f.Usage, fs.EnvOf(f.Name))
		}
	})
	var pos []string
	for {
		if err := fs.FlagSet.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, Usage(err)
		}
		rest := fs.FlagSet.Args()
		if len(rest) == 0 {
			break
		}
		// flag stops at the first positional argument; a "--" that it
		// consumed leaves the rest positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || getenv == nil {
			return
		}
		v := getenv(fs.EnvOf(f.Name))
		if v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: not a valid %s", fs.EnvOf(f.Name), kindOf(f)))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, Usage(err)
	}
	return pos, nil
}

// ParseNoArgs is Parse for a command that takes no positional argument.
func (fs *FlagSet) ParseNoArgs(args []string, getenv func(string) string) error {
	pos, err := fs.Parse(args, getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return Usagef("unexpected arguments %q", pos)
	}
	return nil
}

func kindOf(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return "boolean"
	}
	if _, err := time.ParseDuration(f.DefValue); err == nil && f.DefValue != "0" {
		return "duration (e.g. 5s)"
	}
	return "value"
}

// List is a comma-separated list flag; blanks around items are dropped.
type List []string

// String implements flag.Value.
func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set implements flag.Value: each call replaces the list.
func (l *List) Set(s string) error {
	*l = nil
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// Secret is a string flag whose value is never printed, not even as a
// default in -h.
type Secret string

// String implements flag.Value without revealing the value.
func (s *Secret) String() string {
	if s == nil || *s == "" {
		return ""
	}
	return "(set)"
}

// Set implements flag.Value.
func (s *Secret) Set(v string) error { *s = Secret(v); return nil }

// SecretList is a comma-separated list of secrets (the webhook tokens);
// only their number is ever printed.
type SecretList []string

// String implements flag.Value without revealing the values.
func (l *SecretList) String() string {
	if l == nil || len(*l) == 0 {
		return ""
	}
	return fmt.Sprintf("(%d set)", len(*l))
}

// Set implements flag.Value.
func (l *SecretList) Set(s string) error { return (*List)(l).Set(s) }
