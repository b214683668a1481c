package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// routesCmd is "emma-gateway routes check FILE": it validates a routes file
// and prints, for each event type and a sample account, where the event
// would go.
func routesCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return fmt.Errorf("%w: usage: emma-gateway routes check [--account ID] [--topic-template T] FILE", errUsage)
	}
	kcfg := sinks.DefaultConfig()
	var account int64 = 1743199
	fs := newFlagSet("routes check")
	fs.SetOutput(stderr)
	fs.Int64Var(&account, "account", account, "the sample account id")
	fs.StringVar(&kcfg.TopicTemplate, "topic-template", kcfg.TopicTemplate, "the gateway's topic template, for events no rule takes")
	fs.env["account"] = envPrefix + "ROUTES_ACCOUNT"
	if err := fs.parse(args[1:], getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: routes check takes one file", errUsage)
	}
	r, err := sinks.LoadRoutes(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
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
