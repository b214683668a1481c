package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/internal/testutil"
)

// built is the binary the subprocess tests share, built once per run.
var built = testutil.Binary{Package: "."}

func TestMain(m *testing.M) {
	code := m.Run()
	built.Remove()
	os.Exit(code)
}

// buildBinary returns the path of the emma-gateway binary, built from this
// package once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs the binary as a subprocess")
	}
	return built.Path(t)
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, "ready", func() bool {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
}

// TestBinaryServesOnEmbeddedBrokerAndStopsGracefully runs the real binary
// as a new user would (no configuration but ports), sends a callback,
// reads it back from the embedded broker, and stops it with SIGTERM.
func TestBinaryServesOnEmbeddedBrokerAndStopsGracefully(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	addr, kafkaAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "EMMA_GATEWAY_ADDR="+addr, "EMMA_GATEWAY_EMBEDDED_KAFKA_ADDR="+kafkaAddr)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Log("gateway stderr:\n" + stderr.String())
		}
	})
	base := "http://" + addr
	waitHealthy(t, base)
	res, err := http.Post(base+"/webhooks/emma", "application/json", strings.NewReader(`{"event_name":"member_add","resource_url":"https://api.e2ma.net/1743199/members/1160010079","data":{"signup_form_id":null,"timestamp":"@D:2017-12-21T11:01:11","group_ids":[3065183],"account_id":1743199,"member_id":1160010079}}`))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("callback: %v %v", err, res)
	}
	res.Body.Close()
	msgs := consume(t, []string{kafkaAddr}, "emma.member_add")
	if len(msgs) != 1 || string(msgs[0].Key) != "1160010079" {
		t.Fatalf("messages %v", msgs)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20 s of SIGTERM")
	}
	log := stderr.String()
	for _, want := range []string{"embedded in-memory Kafka broker", "NO WEBHOOK TOKENS", `"msg":"stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	// The embedded broker is gone with the process.
	if _, err := kafka.Dial("tcp", kafkaAddr); err == nil {
		t.Error("the embedded broker still answers after exit")
	}
}

func TestBinaryConfigurationErrors(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"real brokers need tokens", nil, []string{"EMMA_GATEWAY_KAFKA_BROKERS=127.0.0.1:1"}, "no webhook tokens"},
		{"bad duration in env", nil, []string{"EMMA_GATEWAY_PUBLISH_TIMEOUT=soon"}, "EMMA_GATEWAY_PUBLISH_TIMEOUT: not a valid duration"},
		{"bad flag", []string{"--no-such-flag"}, nil, "flag provided but not defined"},
		{"every problem at once", nil, []string{"EMMA_GATEWAY_KAFKA_BROKERS=nohost", "EMMA_GATEWAY_TOPIC_PARTITIONS=0", "EMMA_GATEWAY_TOKENS=short"}, "partitions must be at least 1"},
		{"unknown command", []string{"frobnicate"}, nil, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want code 2\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
	// "every problem at once" names them all, and never the token.
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "EMMA_GATEWAY_KAFKA_BROKERS=nohost", "EMMA_GATEWAY_TOPIC_PARTITIONS=0", "EMMA_GATEWAY_TOKENS=short-tok")
	out, _ := cmd.CombinedOutput()
	for _, want := range []string{"nohost", "partitions", "token #1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "short-tok") {
		t.Errorf("output quotes the token:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "emma-gateway dev") {
		t.Fatalf("version: %d %q %q", code, out.String(), errb.String())
	}
}

// TestBinaryRereadsTheTokensFileOnSIGHUP rotates a token the way an
// operator does: rewrite the file, send SIGHUP. The file check interval is
// an hour, so only the signal can have made the new token work.
func TestBinaryRereadsTheTokensFileOnSIGHUP(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	const oldToken, newToken = "old-token-0123456789abcdef", "new-token-0123456789abcdef"
	if err := os.WriteFile(tokens, []byte(oldToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--tokens-file", tokens, "--tokens-reload-interval", "1h")
	cmd.Env = append(os.Environ(), "EMMA_GATEWAY_ADDR="+addr, "EMMA_GATEWAY_EMBEDDED_KAFKA_ADDR="+freeAddr(t))
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Log("gateway stderr:\n" + stderr.String())
		}
	})
	base := "http://" + addr
	waitHealthy(t, base)
	status := func(token string) int {
		res, err := http.Post(base+"/webhooks/emma/"+token, "application/json", strings.NewReader(`{"event_name":"member_add","data":{"signup_form_id":null,"timestamp":"@D:2017-12-21T11:01:11","group_ids":[3065183],"account_id":1743199,"member_id":1160010079}}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := status(newToken); got != http.StatusUnauthorized {
		t.Fatalf("the new token before the rotation: %d", got)
	}
	if err := os.WriteFile(tokens, []byte(newToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "accepting the new token", func() bool { return status(newToken) == http.StatusOK })
	if got := status(oldToken); got != http.StatusUnauthorized {
		t.Errorf("the old token after the rotation: %d", got)
	}
}
