package kafkait

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// saslArgs are serve's, tail's and deadletter's flags for the cluster's SASL_SSL
// listeners; the password goes in the environment, as the README advises.
func saslArgs(c *cluster) []string {
	return []string{"--kafka-tls-ca-file", c.caFile, "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", c.saslUsername}
}

// TestSASLSCRAMOverTLS connects `serve`, `tail` and `deadletter` to the
// brokers' SASL_SSL listeners (SCRAM-SHA-512, certificates of the
// cluster's test CA): a callback is answered 200 and tail prints it; a
// rejected one is listed by `deadletter list`, and `deadletter replay`
// handles it (still failing) and commits its group's offset. With a wrong
// password the gateway starts, says why it cannot reach Kafka in its log
// and in /readyz, and answers callbacks 503 at once; tail and both
// deadletter commands exit with the reason. None hangs, and the password
// appears nowhere.
func TestSASLSCRAMOverTLS(t *testing.T) {
	c := needCluster(t)
	c.ensureAllUp(t)
	prefix := topicPrefix(t)
	g := startGateway(t, c.saslBrokers, prefix, true, saslArgs(c), "EMMA_GATEWAY_KAFKA_SASL_PASSWORD="+c.saslPassword)
	a := g.post(callback(t, "message_open"))
	if a.status != 200 {
		t.Fatalf("callback over SASL_SSL: %+v", a)
	}
	if msgs := c.consume(t, g.topic("message_open")); len(msgs) != 1 || header(msgs[0], "ce_id") != a.eventID {
		t.Fatalf("message_open topic: %v", msgTopics(msgs))
	}

	t.Run("tail", func(t *testing.T) {
		out, err := runTail(t, c, prefix, c.saslPassword, a.eventID)
		if err != nil {
			t.Fatalf("tail over SASL_SSL: %v\n%s", err, out)
		}
	})

	// deadletter reads the dead-letter topic, and replay commits the
	// group's offsets and starts its publisher, over the same listeners
	// with the same flags and variable as serve and tail.
	if a := g.post([]byte(`{"event_name":"message_open","data":{"account_id":1743199}}`)); a.status != 422 {
		t.Fatalf("invalid callback over SASL_SSL: %+v", a)
	}
	dlArgs := append(append([]string{"--kafka-brokers", strings.Join(c.saslBrokers, ",")}, deadletterArgs(prefix)...), saslArgs(c)...)
	dlEnv := []string{"EMMA_GATEWAY_KAFKA_SASL_PASSWORD=" + c.saslPassword}
	t.Run("deadletter", func(t *testing.T) {
		list := runDeadletter(t, dlEnv, append([]string{"list", "--json"}, dlArgs...)...)
		if ls := list.letters(t); list.code != 0 || len(ls) != 1 || ls[0].Reason != "invalid" || len(ls[0].Errors) == 0 {
			t.Fatalf("deadletter list over SASL_SSL: exit %d, %+v\n%s", list.code, ls, list.stderr)
		}
		replay := runDeadletter(t, dlEnv, append([]string{"replay", "--group", prefix + ".replay", "--topic-replication-factor", "3"}, dlArgs...)...)
		if replay.code != 0 || !strings.Contains(replay.stderr, "1 letters read, 0 pass today, 0 published, 1 still fail") {
			t.Fatalf("deadletter replay over SASL_SSL: exit %d\n%s%s", replay.code, replay.stdout, replay.stderr)
		}
		again := runDeadletter(t, dlEnv, append([]string{"replay", "--group", prefix + ".replay", "--dry-run"}, dlArgs...)...)
		if again.code != 0 || !strings.Contains(again.stderr, "0 letters read") {
			t.Fatalf("second replay over SASL_SSL (the group's offset committed): exit %d\n%s%s", again.code, again.stdout, again.stderr)
		}
		t.Logf("deadletter over SASL_SSL: list in %v, replay in %v, second replay in %v",
			list.took.Round(time.Millisecond), replay.took.Round(time.Millisecond), again.took.Round(time.Millisecond))
	})

	t.Run("wrong password", func(t *testing.T) {
		const wrong = "not-the-password-0123"
		start := time.Now()
		bad := startGateway(t, c.saslBrokers, prefix+".wrong", false, saslArgs(c), "EMMA_GATEWAY_KAFKA_SASL_PASSWORD="+wrong)
		var code int
		var body string
		for time.Since(start) < 30*time.Second {
			code, body = bad.readyz()
			if code != 0 && strings.Contains(strings.ToLower(bad.stderr.String()), "authentication failed") {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !strings.Contains(strings.ToLower(bad.stderr.String()), "authentication failed") {
			t.Errorf("after %v the log does not say SASL authentication failed:\n%s", time.Since(start), tailOf(bad.stderr.String(), 4<<10))
		}
		if code != 503 || !strings.Contains(strings.ToLower(body), "authentication failed") {
			t.Errorf("/readyz with a wrong password: %d %s", code, body)
		}
		t0 := time.Now()
		if a := bad.post(callback(t, "message_open")); a.status != 503 || a.retryAfter == "" {
			t.Errorf("callback with a wrong password: %+v", a)
		}
		t.Logf("wrong password: error in the log and /readyz within %v; a callback answered 503 in %v",
			t0.Sub(start).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		out, err := runTail(t, c, prefix, wrong, "")
		if err == nil || !strings.Contains(strings.ToLower(out), "authentication failed") {
			t.Errorf("tail with a wrong password: %v\n%s", err, out)
		}
		badEnv := []string{"EMMA_GATEWAY_KAFKA_SASL_PASSWORD=" + wrong}
		var dlOut []string
		for _, sub := range [][]string{{"list"}, {"replay", "--group", prefix + ".replay"}} {
			r := runDeadletter(t, badEnv, append(sub, dlArgs...)...)
			if r.code != 1 || !strings.Contains(strings.ToLower(r.stderr), "authentication failed") || r.took > 30*time.Second {
				t.Errorf("deadletter %s with a wrong password: exit %d after %v, want 1 naming the authentication failure within 30 s:\n%s%s",
					sub[0], r.code, r.took, r.stdout, r.stderr)
			}
			t.Logf("deadletter %s with a wrong password: exit %d in %v: %s", sub[0], r.code, r.took.Round(time.Millisecond), strings.TrimSpace(tailOf(r.stderr, 300)))
			dlOut = append(dlOut, r.stdout, r.stderr)
		}
		for _, s := range append([]string{bad.stderr.String(), body, out}, dlOut...) {
			if strings.Contains(s, wrong) || strings.Contains(s, c.saslPassword) {
				t.Errorf("a password appears in the output: %s", s)
			}
		}
	})
}

// runTail runs `emma-gateway tail --from-beginning` over SASL_SSL with
// password until it prints want (an event_id), or, with want empty, until
// it exits; bounded by 45 s. It returns what tail wrote.
func runTail(t *testing.T, c *cluster, prefix, password, want string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	args := append([]string{"tail", "--from-beginning", "--kafka-brokers", strings.Join(c.saslBrokers, ","),
		"--topic-template", prefix + ".{event}", "--topics", prefix + ".message_open"}, saslArgs(c)...)
	cmd := exec.CommandContext(ctx, gatewayBinary(t), args...)
	cmd.Env = append(os.Environ(), "EMMA_GATEWAY_KAFKA_SASL_PASSWORD="+password)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	found := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if want != "" && strings.Contains(sc.Text(), want) {
			found = true
			break
		}
	}
	if found {
		_ = cmd.Process.Kill()
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		return out.String() + stderr.String(), nil
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if want != "" && err == nil {
		err = io.ErrUnexpectedEOF
	}
	return out.String() + stderr.String(), err
}
