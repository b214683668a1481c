// Package noop is the floor of emma-gateway's performance comparisons: Echo
// v4 on the gateway's webhook routes with a handler that reads the request
// and answers a fixed 200. bench runs it in its own process ("emma-gateway
// bench-target noop", a hidden command) so that its CPU time per request
// can be read from the outside. Without brokers it also starts an idle
// in-process kfake broker, so that the process holds the same parts as the
// gateway's embedded mode; the handler never uses it. It prints its listen
// address.
package noop

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/emma-gateway/emma-gateway/internal/bench/target"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
)

// Run serves until ctx ends, printing the listen address and the brokers
// to stdout.
func Run(ctx context.Context, addr, brokers string, stdout io.Writer) error {
	if brokers == "" {
		b, err := devkafka.Start("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer b.Shutdown(context.Background())
		brokers = strings.Join(b.Addrs(), ",")
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	answer := []byte(`{"status":"accepted","event_id":"","event":"","recognized":true}`)
	h := func(c echo.Context) error {
		_, _ = io.Copy(io.Discard, c.Request().Body)
		return c.JSONBlob(http.StatusOK, answer)
	}
	for _, p := range []string{"/webhooks/emma", "/webhooks/emma/:token"} {
		e.GET(p, h)
		e.POST(p, h)
	}
	return target.Serve(ctx, e, addr, brokers, stdout)
}
