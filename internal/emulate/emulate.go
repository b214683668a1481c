// Package emulate is "emma-gateway emulate": it runs the Emma webhook API
// emulator (package emulator) or asks a running one to fire a callback.
package emulate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/emmaapi"
	"github.com/emma-gateway/emma-gateway/internal/emulator"
)

const emulateUsage = `Usage:
  emma-gateway emulate [flags]             run a local stand-in for Emma's webhook API
  emma-gateway emulate fire EVENT [flags]  make a running emulator fire EVENT to its webhooks

The emulator serves /{account_id}/webhooks like Emma (Basic auth, 403 beyond
--calls-per-minute) and POST /_emulator/fire, GET /_emulator/deliveries.
`

// Run runs the emulator until ctx ends ("emulate"), or fires an event on
// a running one ("emulate fire EVENT").
func Run(ctx context.Context, args []string, env cli.IO) error {
	if len(args) > 0 && args[0] == "fire" {
		return fire(ctx, args[1:], env.Stdout, env.Stderr, env.Getenv)
	}
	return serve(ctx, args, env.Stdout, env.Stderr, env.Getenv)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg := emulator.DefaultConfig()
	fs := cli.NewFlagSet("emulate", cli.EnvPrefix, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, emulateUsage+"\nFlags:\n"); fs.PrintDefaults() }
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (keep it on loopback: the emulator has no real security)")
	fs.Int64Var(&cfg.AccountID, "account-id", cfg.AccountID, "the emulated account id")
	fs.StringVar(&cfg.PublicKey, "public-key", cfg.PublicKey, "the public API key it accepts")
	fs.StringVar(&cfg.PrivateKey, "private-key", cfg.PrivateKey, "the private API key it accepts")
	fs.IntVar(&cfg.CallsPerMinute, "calls-per-minute", cfg.CallsPerMinute, "API rate limit, answered 403 beyond like Emma's (0: none)")
	fs.DurationVar(&cfg.DeliveryTimeout, "delivery-timeout", cfg.DeliveryTimeout, "timeout of one callback")
	fs.EnvPrefix(cli.EnvPrefix + "EMULATE_")
	if err := fs.ParseNoArgs(args, getenv); err != nil {
		return err
	}
	em, err := emulator.New(cfg)
	if err != nil {
		return cli.Usage(err)
	}
	if err := em.Start(); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = em.Shutdown(sctx)
	}()
	base := "http://" + em.Addr()
	// The keys are printed only while they are the emulator's well-known
	// defaults: keys someone chose may be real ones.
	show := func(v, def string) string {
		if v == def {
			return v
		}
		return "(as configured)"
	}
	fmt.Fprintf(stdout, `emulate: Emma's webhook API on %[1]s/%[2]d/webhooks (Ctrl-C to stop)
  EMMA_API_URL=%[1]s
  EMMA_ACCOUNT_ID=%[2]d
  EMMA_PUBLIC_API_KEY=%[3]s
  EMMA_PRIVATE_API_KEY=%[4]s
fire an event:  emma-gateway emulate fire message_open --emulator-url %[1]s
deliveries:     curl %[1]s/_emulator/deliveries
`, base, cfg.AccountID, show(cfg.PublicKey, emulator.DefaultPublicKey), show(cfg.PrivateKey, emulator.DefaultPrivateKey))
	<-ctx.Done()
	return nil
}

func fire(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	base := "http://" + emulator.DefaultAddr
	var accountID int64
	var data string
	asJSON := false
	timeout := time.Minute
	fs := cli.NewFlagSet("emulate fire", cli.EnvPrefix, stderr)
	fs.StringVar(&base, "emulator-url", base, "the running emulator")
	fs.Int64Var(&accountID, "account-id", 0, "account_id of the payload (default the emulator's)")
	fs.StringVar(&data, "data", "", `JSON object of fields to set in the payload's data, e.g. '{"subject":"Hi"}'`)
	fs.BoolVar(&asJSON, "json", false, "print the emulator's JSON answer")
	fs.DurationVar(&timeout, "timeout", timeout, "how long to wait for every delivery")
	fs.SetEnv("emulator-url", cli.EnvPrefix+"EMULATE_URL")
	fs.EnvPrefix(cli.EnvPrefix + "EMULATE_FIRE_")
	pos, err := fs.Parse(args, getenv)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("fire takes one event name, e.g. emma-gateway emulate fire message_open")
	}
	req := emulator.FireRequest{Event: pos[0], AccountID: accountID}
	if data != "" {
		if err := json.Unmarshal([]byte(data), &req.Data); err != nil {
			return cli.Usagef("--data is not a JSON object: %w", err)
		}
	}
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/_emulator/fire", bytes.NewReader(body))
	if err != nil {
		return cli.Usagef("--emulator-url: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return fmt.Errorf("cannot reach the emulator (is emma-gateway emulate running?): %w", err)
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the emulator's answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(answer, &e)
		return fmt.Errorf("the emulator refused: %d %s", res.StatusCode, e.Error)
	}
	var fr emulator.FireResult
	if err := json.Unmarshal(answer, &fr); err != nil {
		return fmt.Errorf("the emulator's answer is not JSON: %w", err)
	}
	failed := 0
	for _, d := range fr.Deliveries {
		if d.Status < 200 || d.Status > 299 {
			failed++
		}
	}
	if asJSON {
		stdout.Write(answer)
	} else {
		fmt.Fprintf(stdout, "fired %s: %s\n", fr.Event, fr.Payload)
		if len(fr.Deliveries) == 0 {
			fmt.Fprintf(stdout, "no webhook is registered for %s\n", fr.Event)
		} else {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WEBHOOK\tMETHOD\tSTATUS\tURL\tANSWER")
			for _, d := range fr.Deliveries {
				status, answer := fmt.Sprint(d.Status), strings.TrimSpace(d.Response)
				if d.Error != "" {
					status, answer = "-", d.Error
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.WebhookID, d.Method, status, emmaapi.RedactURL(d.URL), oneLine(answer, 120))
			}
			_ = tw.Flush()
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d deliveries of %s failed", failed, len(fr.Deliveries), fr.Event)
	}
	return nil
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
