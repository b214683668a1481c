// Package webhooks is "emma-gateway webhooks": it manages the Emma
// account's webhook registrations through the API client and the sync
// planner of package emmaapi.
package webhooks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/emmaapi"
)

const webhooksUsage = `Usage: emma-gateway webhooks COMMAND [flags]

Manage the Emma account's webhook registrations.

Commands:
  list                   every webhook of the account
  get ID                 one webhook
  events                 the event types Emma offers
  create --event E --url URL [--method POST|GET]
  update ID [--event E] [--url URL] [--method POST|GET]
  delete ID... | --all --yes
  sync --url URL [--events all|name,...] [--method POST|GET] [--prune] [--dry-run]
                         make Emma's registrations for this gateway match

The account and keys come from EMMA_ACCOUNT_ID, EMMA_PUBLIC_API_KEY and
EMMA_PRIVATE_API_KEY (or --account-id, --public-key, --private-key), the API
from EMMA_API_URL (default https://api.e2ma.net).

Output is a table, or JSON with --json. Gateway tokens in URLs are shown as
*** unless --show-tokens.

Exit codes: 0 done; 1 Emma's API failed (bad credentials, not found, rate
limited, unreachable); 2 usage or configuration error; 3 sync --dry-run found
changes to make.
`

// ErrPendingChanges is returned by sync --dry-run when Emma's registrations
// differ from the wanted ones: exit code 3, so that a script or CI job can
// detect drift without changing anything. The plan is already printed.
var ErrPendingChanges error = pendingChanges{}

type pendingChanges struct{}

func (pendingChanges) Error() string { return "changes pending" }

// ExitCode implements cli.ExitCoder.
func (pendingChanges) ExitCode() int { return 3 }

// webhooksOptions are the flags every webhooks command shares.
type webhooksOptions struct {
	api        emmaapi.Config
	publicKey  cli.Secret
	privateKey cli.Secret
	json       bool
	showTokens bool
	out        io.Writer
}

// Run runs "emma-gateway webhooks COMMAND" with the arguments after
// "webhooks".
func Run(ctx context.Context, args []string, env cli.IO) error {
	stdout, stderr := env.Stdout, env.Stderr
	if len(args) == 0 {
		fmt.Fprint(stderr, webhooksUsage)
		return cli.Usagef("missing command")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, webhooksUsage)
		return nil
	case "list", "get", "events", "create", "update", "delete", "sync":
	default:
		fmt.Fprint(stderr, webhooksUsage)
		return cli.Usagef("unknown command %q", sub)
	}
	o := &webhooksOptions{api: emmaapi.DefaultConfig()}
	fs := cli.NewFlagSet("webhooks "+sub, cli.EnvPrefix, stderr)
	fs.StringVar(&o.api.BaseURL, "api-url", o.api.BaseURL, "Emma's API root (the account id follows it)")
	fs.StringVar(&o.api.AccountID, "account-id", "", "the Emma account id")
	fs.Var(&o.publicKey, "public-key", "the account's public API key (prefer the environment variable)")
	fs.Var(&o.privateKey, "private-key", "the account's private API key (prefer the environment variable)")
	fs.DurationVar(&o.api.Timeout, "timeout", o.api.Timeout, "timeout of one API call")
	fs.IntVar(&o.api.MaxRetries, "retries", o.api.MaxRetries, "retries of a call Emma rate-limits (403) or fails transiently")
	fs.DurationVar(&o.api.RetryBackoff, "retry-backoff", o.api.RetryBackoff, "wait before the first retry, doubled at each one (Retry-After wins)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	fs.BoolVar(&o.showTokens, "show-tokens", false, "print the gateway tokens in URLs instead of ***")
	// Emma's own variables, as SPEC names them; the rest are EMMA_GATEWAY_WEBHOOKS_*.
	fs.SetEnv("api-url", "EMMA_API_URL")
	fs.SetEnv("account-id", "EMMA_ACCOUNT_ID")
	fs.SetEnv("public-key", "EMMA_PUBLIC_API_KEY")
	fs.SetEnv("private-key", "EMMA_PRIVATE_API_KEY")
	for _, n := range []string{"timeout", "retries", "retry-backoff", "json", "show-tokens"} {
		fs.SetEnv(n, cli.EnvPrefix+"WEBHOOKS_"+strings.ToUpper(strings.ReplaceAll(n, "-", "_")))
	}
	var run func(context.Context, *emmaapi.Client, []string) error
	switch sub {
	case "list":
		run = o.list
	case "get":
		run = o.get
	case "events":
		run = o.events
	case "create", "update":
		p := &emmaapi.WebhookParams{}
		fs.StringVar(&p.Event, "event", "", "event name, e.g. message_open")
		fs.StringVar(&p.URL, "url", "", "the URL Emma calls")
		fs.StringVar(&p.Method, "method", "", "POST (Emma's default) or GET")
		if sub == "create" {
			run = func(ctx context.Context, c *emmaapi.Client, pos []string) error { return o.create(ctx, c, pos, *p) }
		} else {
			run = func(ctx context.Context, c *emmaapi.Client, pos []string) error { return o.update(ctx, c, pos, *p) }
		}
	case "delete":
		var all, yes bool
		fs.BoolVar(&all, "all", false, "delete every webhook of the account (with --yes)")
		fs.BoolVar(&yes, "yes", false, "confirm --all")
		run = func(ctx context.Context, c *emmaapi.Client, pos []string) error {
			return o.delete(ctx, c, pos, all, yes)
		}
	case "sync":
		s := &syncOptions{method: http.MethodPost, events: cli.List{"all"}}
		fs.StringVar(&s.url, "url", "", "the gateway's webhook URL, e.g. https://gw.example.com/webhooks/emma/TOKEN")
		fs.Var(&s.events, "events", "comma-separated events to register, or all (every event Emma lists); names may be added to all")
		fs.StringVar(&s.method, "method", s.method, "POST or GET")
		fs.BoolVar(&s.prune, "prune", false, "delete this gateway's registrations of events not wanted, and duplicates")
		fs.BoolVar(&s.dryRun, "dry-run", false, "print the plan, change nothing (exit 3 if there are changes)")
		for _, n := range []string{"url", "events", "method", "prune", "dry-run"} {
			fs.SetEnv(n, cli.EnvPrefix+"WEBHOOKS_SYNC_"+strings.ToUpper(strings.ReplaceAll(n, "-", "_")))
		}
		run = func(ctx context.Context, c *emmaapi.Client, pos []string) error {
			return o.sync(ctx, c, pos, s, stdout)
		}
	}
	pos, err := fs.Parse(args, env.Getenv)
	if err != nil {
		return err
	}
	o.api.PublicKey, o.api.PrivateKey = string(o.publicKey), string(o.privateKey)
	client, err := emmaapi.New(o.api)
	if err != nil {
		return cli.Usage(err)
	}
	o.out = stdout
	return run(ctx, client, pos)
}

func (o *webhooksOptions) list(ctx context.Context, c *emmaapi.Client, pos []string) error {
	if len(pos) != 0 {
		return cli.Usagef("list takes no arguments")
	}
	list, err := c.List(ctx)
	if err != nil {
		return err
	}
	return o.printWebhooks(list)
}

func (o *webhooksOptions) get(ctx context.Context, c *emmaapi.Client, pos []string) error {
	if len(pos) != 1 {
		return cli.Usagef("get takes one webhook id")
	}
	id, err := webhookID(pos[0])
	if err != nil {
		return err
	}
	wh, err := c.Get(ctx, id)
	if err != nil {
		return err
	}
	if o.json {
		return o.printJSON(o.redactWebhook(wh))
	}
	return o.printWebhooks([]emmaapi.Webhook{wh})
}

func (o *webhooksOptions) events(ctx context.Context, c *emmaapi.Client, pos []string) error {
	if len(pos) != 0 {
		return cli.Usagef("events takes no arguments")
	}
	types, err := c.EventTypes(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return o.printJSON(types)
	}
	tw := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEVENT\tDESCRIPTION")
	for _, t := range types {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", t.ID, t.Name, t.Description)
	}
	return tw.Flush()
}

func (o *webhooksOptions) create(ctx context.Context, c *emmaapi.Client, pos []string, p emmaapi.WebhookParams) error {
	var errs []error
	if len(pos) != 0 {
		errs = append(errs, errors.New("create takes no arguments"))
	}
	if p.Event == "" || p.URL == "" {
		errs = append(errs, errors.New("create needs --event and --url"))
	}
	errs = append(errs, checkParams(p))
	if err := errors.Join(errs...); err != nil {
		return cli.Usage(err)
	}
	p.Method = strings.ToUpper(p.Method)
	id, err := c.Create(ctx, p)
	if err != nil {
		return err
	}
	if o.json {
		return o.printJSON(map[string]int64{"webhook_id": id})
	}
	fmt.Fprintf(o.out, "created webhook %d: %s %s %s\n", id, p.Event, cmp.Or(p.Method, http.MethodPost), o.redact(p.URL))
	return nil
}

func (o *webhooksOptions) update(ctx context.Context, c *emmaapi.Client, pos []string, p emmaapi.WebhookParams) error {
	var errs []error
	if len(pos) != 1 {
		errs = append(errs, errors.New("update takes one webhook id"))
	}
	if p == (emmaapi.WebhookParams{}) {
		errs = append(errs, errors.New("update needs --event, --url or --method"))
	}
	errs = append(errs, checkParams(p))
	if err := errors.Join(errs...); err != nil {
		return cli.Usage(err)
	}
	id, err := webhookID(pos[0])
	if err != nil {
		return err
	}
	p.Method = strings.ToUpper(p.Method)
	if _, err := c.Update(ctx, id, p); err != nil {
		return err
	}
	if o.json {
		return o.printJSON(map[string]int64{"webhook_id": id})
	}
	fmt.Fprintf(o.out, "updated webhook %d\n", id)
	return nil
}

func (o *webhooksOptions) delete(ctx context.Context, c *emmaapi.Client, pos []string, all, yes bool) error {
	switch {
	case all && len(pos) > 0:
		return cli.Usagef("give webhook ids or --all, not both")
	case all && !yes:
		return cli.Usagef("--all deletes every webhook of the account: add --yes")
	case all:
		if err := c.DeleteAll(ctx); err != nil {
			return err
		}
		if o.json {
			return o.printJSON(map[string]bool{"deleted_all": true})
		}
		fmt.Fprintln(o.out, "deleted every webhook of the account")
		return nil
	case len(pos) == 0:
		return cli.Usagef("delete takes webhook ids (or --all --yes)")
	}
	ids := make([]int64, 0, len(pos))
	for _, p := range pos {
		id, err := webhookID(p)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	deleted := []int64{}
	for _, id := range ids {
		if err := c.Delete(ctx, id); err != nil {
			return fmt.Errorf("webhook %d (deleted before it: %v): %w", id, deleted, err)
		}
		deleted = append(deleted, id)
		if !o.json {
			fmt.Fprintf(o.out, "deleted webhook %d\n", id)
		}
	}
	if o.json {
		return o.printJSON(map[string][]int64{"deleted": deleted})
	}
	return nil
}

func webhookID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, cli.Usagef("%q is not a webhook id", s)
	}
	return id, nil
}

// checkParams rejects what Emma would: an unknown method, a URL Emma cannot
// call. Event names are left to Emma, which knows its own list.
func checkParams(p emmaapi.WebhookParams) error {
	var errs []error
	if m := strings.ToUpper(p.Method); m != "" && m != http.MethodGet && m != http.MethodPost {
		errs = append(errs, fmt.Errorf("--method must be GET or POST, not %q", p.Method))
	}
	if p.URL != "" {
		if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("--url must be an absolute http(s) URL"))
		}
	}
	return errors.Join(errs...)
}

func (o *webhooksOptions) printJSON(v any) error {
	enc := json.NewEncoder(o.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (o *webhooksOptions) printWebhooks(list []emmaapi.Webhook) error {
	if o.json {
		out := make([]emmaapi.Webhook, 0, len(list))
		for _, wh := range list {
			out = append(out, o.redactWebhook(wh))
		}
		return o.printJSON(out)
	}
	tw := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEVENT\tMETHOD\tURL")
	for _, wh := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", wh.ID, wh.Event, wh.Method, o.redact(wh.URL))
	}
	return tw.Flush()
}

func (o *webhooksOptions) redactWebhook(wh emmaapi.Webhook) emmaapi.Webhook {
	wh.URL = o.redact(wh.URL)
	return wh
}

func (o *webhooksOptions) redact(u string) string {
	if o.showTokens {
		return u
	}
	return emmaapi.RedactURL(u)
}

// syncOptions are the flags of webhooks sync.
type syncOptions struct {
	url    string
	events cli.List
	method string
	prune  bool
	dryRun bool
}

func (o *webhooksOptions) sync(ctx context.Context, c *emmaapi.Client, pos []string, s *syncOptions, stdout io.Writer) error {
	var errs []error
	if len(pos) != 0 {
		errs = append(errs, errors.New("sync takes no arguments"))
	}
	if s.url == "" {
		errs = append(errs, errors.New("sync needs --url, the gateway's webhook URL"))
	}
	s.method = strings.ToUpper(s.method)
	errs = append(errs, checkParams(emmaapi.WebhookParams{URL: s.url, Method: s.method}))
	if len(s.events) == 0 {
		errs = append(errs, errors.New("--events is empty"))
	}
	for _, ev := range s.events {
		if _, ok := events.Lookup(ev); !ok && ev != "all" {
			errs = append(errs, fmt.Errorf("--events: unknown event %q", ev))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cli.Usage(err)
	}
	var want []string
	for _, ev := range s.events {
		if ev != "all" {
			want = append(want, ev)
			continue
		}
		// "all" is what this account's Emma offers, asked rather than
		// assumed, so that sync never registers an event Emma refuses.
		types, err := c.EventTypes(ctx)
		if err != nil {
			return err
		}
		for _, t := range types {
			want = append(want, t.Name)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	current, err := c.List(ctx)
	if err != nil {
		return err
	}
	plan := emmaapi.Plan(current, s.url, s.method, want, s.prune)
	changes := 0
	for _, a := range plan {
		if a.Action != "keep" {
			changes++
		}
	}
	if !s.dryRun {
		// Creates and updates before deletes: a sync stopped half-way
		// leaves registrations behind, never an event without one.
		slices.SortStableFunc(plan, func(a, b emmaapi.SyncAction) int {
			return boolInt(a.Action == "delete") - boolInt(b.Action == "delete")
		})
		for i, a := range plan {
			var err error
			switch a.Action {
			case "create":
				plan[i].WebhookID, err = c.Create(ctx, emmaapi.WebhookParams{Event: a.Event, URL: a.URL, Method: a.Method})
			case "update":
				_, err = c.Update(ctx, a.WebhookID, emmaapi.WebhookParams{Event: a.Event, URL: a.URL, Method: a.Method})
			case "delete":
				err = c.Delete(ctx, a.WebhookID)
			}
			if err != nil {
				o.printPlan(stdout, plan[:i], false)
				return fmt.Errorf("sync stopped at %s of %s (the steps above are done): %w", a.Action, a.Event, err)
			}
		}
	}
	o.printPlan(stdout, plan, s.dryRun)
	if s.dryRun && changes > 0 {
		return ErrPendingChanges
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (o *webhooksOptions) printPlan(w io.Writer, plan []emmaapi.SyncAction, dryRun bool) {
	counts := map[string]int{}
	for i, a := range plan {
		counts[a.Action]++
		plan[i].URL = o.redact(a.URL)
		if a.From != nil {
			from := o.redactWebhook(*a.From)
			plan[i].From = &from
		}
	}
	if o.json {
		_ = o.printJSON(map[string]any{"dry_run": dryRun, "changes": len(plan) - counts["keep"], "actions": plan})
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tEVENT\tID\tMETHOD\tURL")
	for _, a := range plan {
		id := "-"
		if a.WebhookID != 0 {
			id = strconv.FormatInt(a.WebhookID, 10)
		}
		what := a.Method + "\t" + a.URL
		if a.Action == "update" {
			what = fmt.Sprintf("%s\t%s (was %s %s)", a.Method, a.URL, a.From.Method, a.From.URL)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Action, a.Event, id, what)
	}
	_ = tw.Flush()
	format := "%d created, %d updated, %d deleted, %d unchanged\n"
	if dryRun {
		format = "dry run, nothing changed: %d to create, %d to update, %d to delete, %d unchanged\n"
	}
	fmt.Fprintf(w, format, counts["create"], counts["update"], counts["delete"], counts["keep"])
}
