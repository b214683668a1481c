package emulate

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/emma-gateway/emma-gateway/internal/cli"
)

// runCLI runs emma-gateway emulate ARGS as the dispatcher does and returns
// the exit code and outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	p := &cli.Program{Name: "emma-gateway", Commands: []*cli.Command{{Name: "emulate", Run: Run}}}
	code := p.Run(context.Background(), args, cli.IO{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }})
	return code, stdout.String(), stderr.String()
}

func fireCLI(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	return runCLI(t, append([]string{"emulate", "fire", "--emulator-url", url}, args...)...)
}

func TestEmulateFireWithoutEmulator(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	code, _, errOut := fireCLI(t, dead.URL, "message_open")
	if code != 1 || !strings.Contains(errOut, "cannot reach the emulator") {
		t.Fatalf("%d %s", code, errOut)
	}
}

func TestEmulateRejectsBadConfiguration(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(t, "emulate", "--account-id", "0", "--delivery-timeout", "0s")
	if code != 2 || !strings.Contains(errOut, "account id must be positive") || !strings.Contains(errOut, "delivery timeout") {
		t.Fatalf("%d %s", code, errOut)
	}
}

func TestEmulateFireTakesFlagsAfterTheEvent(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(t, "emulate", "fire", "message_open", "--data", "not json")
	if code != 2 || !strings.Contains(errOut, "--data is not a JSON object") {
		t.Fatalf("%d %s", code, errOut)
	}
}
