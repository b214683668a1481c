package main

import (
	"flag"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/sinks"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadmeDocumentsEveryFlag keeps the configuration table true: every
// flag of serve, with its environment variable, is in it.
func TestReadmeDocumentsEveryFlag(t *testing.T) {
	doc := readme(t)
	cfg := gateway.DefaultConfig()
	fs := gateway.Flags(&cfg, nil)
	fs.VisitAll(func(f *flag.Flag) {
		row := "| `--" + f.Name + "` | `" + fs.EnvOf(f.Name) + "` |"
		if !strings.Contains(doc, row) {
			t.Errorf("README lacks the row for --%s (%s)", f.Name, fs.EnvOf(f.Name))
		}
	})
}

// TestReadmeCurlExamplesAreAccepted sends the README's two curl callbacks,
// as written, to a real gateway and reads them back from Kafka.
func TestReadmeCurlExamplesAreAccepted(t *testing.T) {
	t.Parallel()
	doc := readme(t)
	post := regexp.MustCompile(`(?m)^\s+-d '(\{.*\})'$`).FindStringSubmatch(doc)
	get := regexp.MustCompile(`(?m)--data-urlencode 'payload=(\{.*\})'$`).FindStringSubmatch(doc)
	if post == nil || get == nil {
		t.Fatal("README has no POST and GET curl examples")
	}
	tg := startTestGateway(t, nil)
	for _, c := range []struct{ method, payload, topic string }{
		{http.MethodPost, post[1], "emma.member_add"},
		{http.MethodGet, get[1], "emma.message_open"},
	} {
		status, body := tg.callback(t, c.method, c.payload)
		if status != 200 || body["recognized"] != true {
			t.Fatalf("%s example: %d %v", c.method, status, body)
		}
		if msgs := consume(t, tg.brokers, c.topic); len(msgs) != 1 {
			t.Fatalf("%s holds %d messages", c.topic, len(msgs))
		}
	}
}

// TestReadmeRoutesExampleIsValid parses the README's routes file example
// with the gateway's own loader.
func TestReadmeRoutesExampleIsValid(t *testing.T) {
	doc := readme(t)
	i := strings.Index(doc, "## Fan-out routing")
	if i < 0 {
		t.Fatal("README has no Fan-out routing section")
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(doc[i:])
	if m == nil {
		t.Fatal("the section has no YAML example")
	}
	r, err := sinks.ParseRoutes([]byte(m[1]))
	if err != nil {
		t.Fatalf("the README's routes example is invalid: %v", err)
	}
	if ds, dropped := r.Route("message_open", 1743199, "emma.message_open"); dropped || len(ds) != 4 {
		t.Fatalf("message_open of 1743199 goes to %+v", ds)
	}
}

// TestReadmeWebhooksAndEmulateCommandsAreReal keeps the README's
// "Registering with Emma" commands true: every flag they use is one the
// command's -h lists.
func TestReadmeWebhooksAndEmulateCommandsAreReal(t *testing.T) {
	doc := readme(t)
	lines := regexp.MustCompile(`(?m)emma-gateway ((?:webhooks (?:sync|list|get|events|create|update|delete))|emulate fire|emulate)\b(.*)$`).FindAllStringSubmatch(doc, -1)
	if len(lines) < 5 {
		t.Fatalf("README shows %d webhooks/emulate commands", len(lines))
	}
	flagRE := regexp.MustCompile(`(?:^|\s)--([a-z][a-z-]*)`)
	for _, l := range lines {
		code, stdout, stderr := runCLI(t, append(strings.Fields(l[1]), "-h")...)
		help := stdout + stderr
		if code != 0 {
			t.Fatalf("%s -h: exit %d\n%s", l[1], code, help)
		}
		for _, f := range flagRE.FindAllStringSubmatch(l[2], -1) {
			if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(f[1]) + `\b`).MatchString(help) {
				t.Errorf("README: %s has no flag --%s", l[1], f[1])
			}
		}
	}
}
