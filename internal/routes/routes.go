// Package routes is "emma-gateway routes check FILE": it validates a
// routes file and prints where each event type would go.
package routes

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// Run is "emma-gateway routes check FILE": it validates a routes file and
// prints, for each event type and a sample account, where the event would
// go.
func Run(_ context.Context, args []string, env cli.IO) error {
	stdout := env.Stdout
	if len(args) == 0 || args[0] != "check" {
		return cli.Usagef("usage: emma-gateway routes check [--account ID] [--topic-template T] FILE")
	}
	kcfg := sinks.DefaultConfig()
	var account int64 = 1743199
	fs := cli.NewFlagSet("routes check", cli.EnvPrefix, env.Stderr)
	fs.Int64Var(&account, "account", account, "the sample account id")
	fs.StringVar(&kcfg.TopicTemplate, "topic-template", kcfg.TopicTemplate, "the gateway's topic template, for events no rule takes")
	fs.SetEnv("account", cli.EnvPrefix+"ROUTES_ACCOUNT")
	pos, err := fs.Parse(args[1:], env.Getenv)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("routes check takes one file")
	}
	r, err := sinks.LoadRoutes(pos[0])
	if err != nil {
		return cli.Usage(err)
	}
	kcfg.Routes = r
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "EVENT\tACCOUNT\tTOPICS (key, mode)\n")
	for _, t := range events.Types() {
		dests, dropped := r.Route(t.Name, account, strings.ReplaceAll(kcfg.TopicTemplate, kafkaevents.EventPlaceholder, t.Name))
		where := "dropped"
		if !dropped {
			var parts []string
			for _, d := range dests {
				parts = append(parts, fmt.Sprintf("%s (%s, %s)", d.Topic, d.Key, d.ContentMode))
			}
			where = strings.Join(parts, ", ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", t.Name, account, where)
	}
	fmt.Fprintf(tw, "(unrecognized)\t%d\t%s\n", account, kcfg.UnrecognizedTopic)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\ncreated at start: %s\n", strings.Join(kcfg.Topics(), ", "))
	return nil
}
