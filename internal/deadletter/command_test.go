package deadletter

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/emma-gateway/emma-gateway/events"
	ke "github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/testutil"
)

// runCmd runs the command with args and no environment, and returns its
// exit code (as the dispatcher maps it) and output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr testutil.Buffer
	err := Run(context.Background(), args, cli.IO{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}, "test")
	if err != nil && cli.ExitCode(err) != 3 {
		stderr.Write([]byte(err.Error()))
	}
	return cli.ExitCode(err), stdout.String(), stderr.String()
}

func TestDeadletterCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.letters(t)
	brokers := "--kafka-brokers=" + strings.Join(e.brokers, ",")

	code, out, errOut := runCmd(t, "list", brokers, "--json")
	if code != 0 || strings.Count(out, "\n") != 4 || !strings.Contains(errOut, "4 letters") {
		t.Fatalf("list --json: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, "6160010079") {
		t.Errorf("list prints a payload:\n%s", out)
	}
	code, out, _ = runCmd(t, "list", brokers, "--reason", "invalid", "--event", "message_open", "--since", "2026-11-20T00:00:00Z")
	if code != 0 || !strings.Contains(out, "PARTITION") || strings.Count(out, "\n") != 3 {
		t.Errorf("list as a table, filtered: exit %d\n%s", code, out)
	}
	for _, bad := range [][]string{{"list", brokers, "--since", "yesterday"}, {"list", brokers, "--reason", "lost"}, {"remove"}, {}} {
		if code, _, _ := runCmd(t, bad...); code != 2 {
			t.Errorf("%q: exit %d, want 2", bad, code)
		}
	}

	replay := []string{"replay", brokers, "--topic-partitions=1", "--topic-replication-factor=1"}
	code, out, errOut = runCmd(t, append(replay, "--dry-run")...)
	if code != 3 || strings.Count(out, "would pass") != 2 || strings.Count(out, "still fails") != 2 {
		t.Fatalf("replay --dry-run: exit %d, want 3\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, append(replay, "--json")...)
	if code != 0 || !strings.Contains(errOut, "4 letters read, 2 pass today, 2 published, 2 still fail") {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, errOut)
	}
	var notes []string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		notes = append(notes, m["replay"].(string))
	}
	if len(notes) != 4 || notes[0] != "still fails" || notes[1] != "still fails" || notes[2] != "published" || notes[3] != "published" {
		t.Errorf("replay --json notes: %q", notes)
	}
	// A letter still failing is listed with today's reasons.
	var first struct {
		Detail string              `json:"detail"`
		Errors []events.FieldError `json:"errors"`
	}
	_ = json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &first)
	if !strings.HasPrefix(first.Detail, "invalid message_open event:") || len(first.Errors) == 0 || first.Errors[0].Field == "" {
		t.Errorf("the still failing 422 letter: %+v", first)
	}
	msgs := e.published(t, "emma.message_open")
	if len(msgs) != 1 {
		t.Fatalf("%d message_open events, want 1", len(msgs))
	}
	fresh, _ := e.dec.Decode([]byte(openEvent), events.DeliveryGET, fixedAt)
	if v, _ := header(msgs[0], ke.HeaderRedrivenFrom); v != "emma.deadletter/0/2" {
		t.Errorf("emma_redriven_from %q", v)
	}
	if v, _ := header(msgs[0], ke.HeaderID); v != fresh.ID {
		t.Errorf("ce_id %q, want %q", v, fresh.ID)
	}
	// Again: nothing left, and a dry run finds nothing to pass.
	if code, _, errOut := runCmd(t, append(replay, "--dry-run")...); code != 0 || !strings.Contains(errOut, "0 letters read") {
		t.Errorf("replay --dry-run after the replay: exit %d, %s", code, errOut)
	}
}
