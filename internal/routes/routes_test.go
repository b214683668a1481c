package routes

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emma-gateway/emma-gateway/internal/cli"
)

const fanOutRoutes = `
routes:
  - events: ["*"]
    topics: ["emma.{event}"]
  - events: ["*"]
    topics: ["emma.events"]
    key: member_id
  - events: ["*"]
    topics: ["emma.account.{account}"]
`

// run runs the command as the binary's dispatcher does and returns the
// exit code.
func run(t *testing.T, stdout, stderr *bytes.Buffer, args ...string) int {
	t.Helper()
	p := &cli.Program{Name: "emma-gateway", Commands: []*cli.Command{{Name: "routes", Run: Run}}}
	return p.Run(context.Background(), args, cli.IO{Stdout: stdout, Stderr: stderr, Getenv: func(string) string { return "" }})
}

func TestRoutesCheckCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	_ = os.WriteFile(good, []byte(fanOutRoutes+"  - events: [member_update]\n    drop: true\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run(t, &out, &errb, "routes", "check", good, "--account", "42"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		"message_open              42       emma.message_open (default, binary), emma.events (member_id, binary), emma.account.42 (default, binary)",
		"member_update             42       dropped",
		"created at start: emma.deadletter, emma.events,",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Count(out.String(), "\n") < 21 {
		t.Errorf("not every event type is listed:\n%s", out.String())
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("routes:\n  - events: [mesage_open]\n    topics: [x]\n"), 0o600)
	errb.Reset()
	if code := run(t, &out, &errb, "routes", "check", bad); code != 2 || !strings.Contains(errb.String(), `unknown event "mesage_open"`) {
		t.Fatalf("bad file: exit %d: %s", code, errb.String())
	}
}
