package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
)

// ExitCoder is an outcome that chooses the process's exit code, such as
// "sync --dry-run found changes" (3); the dispatcher does not print it.
type ExitCoder interface {
	error
	ExitCode() int
}

// ExitCode maps a command's error to the process's exit code: 0 for none
// and for -h, the error's own code (ExitCoder), 2 for usage errors, 1 for
// the rest.
func ExitCode(err error) int {
	var ec ExitCoder
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.Is(err, ErrUsage):
		return 2
	}
	return 1
}

// Program is a binary with subcommands: its name, a usage text printed
// above the commands' Short lines, and the commands, the first of which
// runs when the first argument is a flag or absent.
type Program struct {
	Name     string
	Summary  string
	Commands []*Command
	// Footer follows the command list in the usage text.
	Footer string
}

// Usage is the program's usage text.
func (p *Program) Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nUsage:\n", p.Summary)
	for _, c := range p.Commands {
		if c.Hidden {
			continue
		}
		fmt.Fprintf(&b, "  %s %s\n", p.Name, c.Short)
	}
	if p.Footer != "" {
		fmt.Fprintf(&b, "\n%s", p.Footer)
	}
	return b.String()
}

// Run finds the command named by args[0] (the first command when args[0]
// is a flag or absent; "help" prints the usage), runs it, prints its error
// once as "NAME COMMAND: error", and returns the exit code.
func (p *Program) Run(ctx context.Context, args []string, io IO) int {
	if len(p.Commands) == 0 {
		return 2
	}
	cmd := p.Commands[0]
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		name := args[0]
		args = args[1:]
		if name == "help" {
			fmt.Fprint(io.Stdout, p.Usage())
			return 0
		}
		cmd = nil
		for _, c := range p.Commands {
			if c.Name == name {
				cmd = c
			}
		}
		if cmd == nil {
			fmt.Fprintf(io.Stderr, "%s: unknown command %q\n\n%s", p.Name, name, p.Usage())
			return 2
		}
	}
	err := cmd.Run(ctx, args, io)
	code := ExitCode(err)
	// An ExitCoder is an outcome the command has already reported
	// (such as a dry run's plan), not a failure to print.
	var ec ExitCoder
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.As(err, &ec) {
		fmt.Fprintf(io.Stderr, "%s %s: %v\n", p.Name, cmd.Name, err)
	}
	return code
}
