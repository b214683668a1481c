// Package spool is "emma-gateway spool status": what a spool directory
// holds (records, bytes, oldest age, per topic), read with
// sinks.InspectSpool, safe while the gateway is stopped.
package spool

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/sinks"
)

const usage = "usage: emma-gateway spool status --spool-dir DIR [--json]"

// Run runs "emma-gateway spool status" with the arguments after "spool".
func Run(_ context.Context, args []string, env cli.IO) error {
	return run(args, env, time.Now)
}

func run(args []string, env cli.IO, now func() time.Time) error {
	if len(args) == 0 || args[0] != "status" {
		return cli.Usagef(usage)
	}
	var dir string
	asJSON := false
	fs := cli.NewFlagSet("spool status", cli.EnvPrefix, env.Stderr)
	// The same flag and variable as serve's, so that one environment
	// points both at the volume.
	fs.StringVar(&dir, "spool-dir", "", "the spool directory to read")
	fs.BoolVar(&asJSON, "json", false, "print the status as JSON")
	fs.SetEnv("json", cli.EnvPrefix+"SPOOL_STATUS_JSON")
	if err := fs.ParseNoArgs(args[1:], env.Getenv); err != nil {
		return err
	}
	if dir == "" {
		return cli.Usagef("spool status needs --spool-dir (or EMMA_GATEWAY_SPOOL_DIR)")
	}
	st, err := sinks.InspectSpool(dir)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return print(env.Stdout, st, now())
}

func print(w io.Writer, st sinks.SpoolStatus, now time.Time) error {
	fmt.Fprintf(w, "spool %s: %d records, %d bytes in %d segments", st.Dir, st.Records, st.Bytes, st.Segments)
	if st.Records > 0 {
		fmt.Fprintf(w, ", oldest %s ago (%s)", st.OldestAge(now).Round(time.Second), st.Oldest.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if st.Corrupt > 0 {
		fmt.Fprintf(w, "%d damaged stretches will be skipped by the replay\n", st.Corrupt)
	}
	if len(st.Topics) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tRECORDS\tOLDEST")
	for _, t := range st.Topics {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", t.Topic, t.Records, t.Oldest.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
