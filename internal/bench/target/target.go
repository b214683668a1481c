// Package target serves bench's comparison targets (internal/bench/noop and
// internal/bench/handwritten) the same way, so that they differ only in
// their handlers.
package target

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Serve listens on addr, prints the listen address and the brokers to
// stdout (bench reads them), and serves h until ctx is done, then shuts
// down within 5 s.
func Serve(ctx context.Context, h http.Handler, addr, brokers string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on http://%s\nkafka brokers %s\n", ln.Addr(), brokers)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
