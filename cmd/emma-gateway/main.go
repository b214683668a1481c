// Command emma-gateway receives Emma's webhook callbacks and publishes them
// to Kafka. See the README for its subcommands and configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/emma-gateway/emma-gateway/internal/bench"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/internal/tail"
	_ "time/tzdata" // --timezone works in images without zoneinfo
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `emma-gateway: Emma webhooks to Kafka.

Usage:
  emma-gateway [serve] [flags]   run the gateway (the default)
  emma-gateway tail [flags]      print the events arriving on the gateway's topics
  emma-gateway webhooks COMMAND  manage Emma's webhook registrations (list, get,
                                 events, create, update, delete, sync)
  emma-gateway emulate [flags]   a local stand-in for Emma's webhook API that
                                 fires callbacks ("emulate fire EVENT")
  emma-gateway routes check FILE  print where each event type would go
  emma-gateway bench [flags]     load test (in-process or --url) with delivery
                                 verification and a no-op baseline
  emma-gateway version           print the version

Run "emma-gateway COMMAND -h" for a command's flags. Every flag can also be
set by its EMMA_GATEWAY_* environment variable, named in -h.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signalContext()
	defer stop()
	var err error
	switch cmd {
	case "serve":
		err = gateway.Serve(ctx, args, cli.IO{Stdout: stdout, Stderr: stderr, Getenv: getenv}, version)
	case "tail":
		err = tail.Run(ctx, args, cli.IO{Stdout: stdout, Stderr: stderr, Getenv: getenv})
	case "webhooks":
		err = webhooks(ctx, args, stdout, stderr)
		if errors.Is(err, errPendingChanges) {
			return 3 // sync --dry-run found changes; the plan is printed
		}
	case "emulate":
		err = emulate(ctx, args, stdout, stderr)
	case "routes":
		err = routesCmd(args, stdout, stderr)
	case "bench":
		err = bench.Run(ctx, args, cli.IO{Stdout: stdout, Stderr: stderr, Getenv: getenv}, version)
	case "version":
		fmt.Fprintln(stdout, versionString())
	case "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "emma-gateway: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage), errors.Is(err, cli.ErrUsage):
		fmt.Fprintf(stderr, "emma-gateway %s: %v\n", cmd, err)
		return 2
	default:
		fmt.Fprintf(stderr, "emma-gateway %s: %v\n", cmd, err)
		return 1
	}
}

// errUsage marks configuration errors (exit code 2).
var errUsage = errors.New("configuration")

// signalContext is cancelled by the first SIGINT or SIGTERM, which starts a
// graceful shutdown; a second one exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "emma-gateway: second signal, exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func versionString() string {
	s := "emma-gateway " + version
	if bi, ok := debug.ReadBuildInfo(); ok {
		s += " (" + bi.GoVersion
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				s += ", " + kv.Value[:12]
			}
		}
		s += ")"
	}
	return s
}
