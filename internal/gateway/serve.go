package gateway

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// Serve is "emma-gateway serve": it loads the configuration from args and
// the environment, runs the gateway until ctx is done, then shuts down
// gracefully. version is the binary's.
func Serve(ctx context.Context, args []string, io cli.IO, version string) error {
	cfg, err := load(args, io.Getenv, io.Stderr)
	if err != nil {
		return err
	}
	cfg.Version = version
	// Buffered: an unbuffered stderr is a system call per access-log line.
	// Warnings and errors are written out at once (NewLogger). Deferred
	// first, so that it runs last, after the spans' flush has logged.
	logw := telemetry.NewLogWriter(io.Stderr, 64<<10, 200*time.Millisecond)
	logw.Start()
	defer func() { _ = logw.Shutdown(context.Background()) }()
	log, err := NewLogger(logw, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return cli.Usage(err)
	}
	if d := cfg.Deprecated(); len(d) > 0 {
		log.Warn("deprecated settings are ignored", "flags", strings.Join(d, ","))
	}
	if len(cfg.Receiver.Tokens) == 0 && cfg.Receiver.TokensFile == "" {
		log.Warn("!!! NO WEBHOOK TOKENS: anyone who can reach this gateway can publish events; set EMMA_GATEWAY_TOKENS !!!")
	}
	// Spans are always made, so that every Kafka message carries a
	// traceparent; exporting them is configured by OTEL_* variables.
	tp, err := TracerProvider(ctx, version, io.Getenv)
	if err != nil {
		return cli.Usage(err)
	}
	defer func() {
		// Flush the spans of the last requests, boundedly.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flushing spans", "error", err)
		}
	}()
	return Run(ctx, cfg, telemetry.Settings{Logger: log, TracerProvider: tp, Registerer: telemetry.NewRegistry()})
}

// Run starts the gateway, serves until ctx is done (rereading the tokens
// file on SIGHUP), then shuts down gracefully.
func Run(ctx context.Context, cfg Config, set telemetry.Settings) error {
	g, err := Start(ctx, cfg, set)
	if err != nil {
		return err
	}
	defer reloadTokensOnHangup(g.server)()
	<-ctx.Done()
	g.log.Info("shutting down: no new connections; answering requests in flight")
	g.Stop()
	g.log.Info("stopped")
	return nil
}

// reloadTokensOnHangup rereads the webhook tokens file on each SIGHUP, so
// that tokens rotate without a restart. A failed reload is logged by the
// server and keeps the tokens in force. The returned func stops listening.
func reloadTokensOnHangup(s interface{ ReloadTokens() error }) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-ch:
				_ = s.ReloadTokens()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done); <-finished }
}
