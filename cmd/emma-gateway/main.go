// Command emma-gateway receives Emma's webhook callbacks and publishes them
// to Kafka. See the README for its subcommands and configuration.
//
// This file is only the dispatcher, in the shape of cmd/go: each
// subcommand lives in its own package under internal/, with its tests,
// and shares the flag and environment plumbing of internal/cli.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	_ "time/tzdata" // --timezone works in images without zoneinfo

	"github.com/emma-gateway/emma-gateway/internal/bench"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/deadletter"
	"github.com/emma-gateway/emma-gateway/internal/emulate"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/internal/routes"
	"github.com/emma-gateway/emma-gateway/internal/spool"
	"github.com/emma-gateway/emma-gateway/internal/tail"
	"github.com/emma-gateway/emma-gateway/internal/webhooks"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// program is the command table; serve, first, runs when no command is
// named.
func program() *cli.Program {
	return &cli.Program{
		Name:    "emma-gateway",
		Summary: "emma-gateway: Emma webhooks to Kafka.",
		Commands: []*cli.Command{
			{Name: "serve", Short: "[serve] [flags]   run the gateway (the default)",
				Run: func(ctx context.Context, args []string, env cli.IO) error {
					return gateway.Serve(ctx, args, env, version)
				}},
			{Name: "tail", Short: "tail [flags]      print the events arriving on the gateway's topics", Run: tail.Run},
			{Name: "webhooks", Short: "webhooks COMMAND  manage Emma's webhook registrations (list, get,\n                                 events, create, update, delete, sync)", Run: webhooks.Run},
			{Name: "emulate", Short: "emulate [flags]   a local stand-in for Emma's webhook API that\n                                 fires callbacks (\"emulate fire EVENT\")", Run: emulate.Run},
			{Name: "routes", Short: "routes check FILE  print where each event type would go", Run: routes.Run},
			{Name: "bench", Short: "bench [flags]     load test of the gateway in its own process (or --url)\n                                 with delivery verification, CPU per callback\n                                 and no-op and hand-written baselines",
				Run: func(ctx context.Context, args []string, env cli.IO) error { return bench.Run(ctx, args, env, version) }},
			{Name: "deadletter", Short: "deadletter list|replay [flags]  read the dead-letter topic; replay publishes the\n                                 letters that pass today (--dry-run exits 3 if any)",
				Run: func(ctx context.Context, args []string, env cli.IO) error {
					return deadletter.Run(ctx, args, env, version)
				}},
			{Name: bench.TargetCommand, Hidden: true, Run: bench.RunTarget},
			{Name: "spool", Short: "spool status --spool-dir DIR  what a spool directory holds (readable while stopped)", Run: spool.Run},
			{Name: "version", Short: "version           print the version",
				Run: func(_ context.Context, _ []string, env cli.IO) error {
					_, err := fmt.Fprintln(env.Stdout, versionString())
					return err
				}},
		},
		Footer: `Run "emma-gateway COMMAND -h" for a command's flags. Every flag can also be
set by its EMMA_GATEWAY_* environment variable, named in -h.
`,
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signalContext()
	defer stop()
	return program().Run(ctx, args, cli.IO{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv})
}

// signalContext is cancelled by the first SIGINT or SIGTERM, which starts a
// graceful shutdown; a second one exits at once. (SIGHUP, which rereads
// the tokens file, is serve's: gateway.Run.)
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
