package spool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// fill writes n records for topic into a spool in dir, then closes it as a
// stopped gateway would have.
func fill(t *testing.T, dir string, topic string, n int) {
	t.Helper()
	cfg := sinks.DefaultSpoolConfig()
	cfg.Dir = dir
	s, err := sinks.OpenSpool(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.Append(context.Background(), kafka.Message{Topic: topic, Key: []byte("1"), Value: []byte(`{"i":` + string(rune('0'+i)) + `}`)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Shutdown(context.Background())
}

func env(stdout, stderr *bytes.Buffer, vars map[string]string) cli.IO {
	return cli.IO{Stdout: stdout, Stderr: stderr, Getenv: func(k string) string { return vars[k] }}
}

func TestSpoolStatusPrintsWhatAStoppedGatewayLeft(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fill(t, dir, "emma.message_open", 3)
	var out, errb bytes.Buffer
	now := time.Now().Add(time.Minute)
	if err := run([]string{"status", "--spool-dir", dir}, env(&out, &errb, nil), func() time.Time { return now }); err != nil {
		t.Fatalf("%v %s", err, errb.String())
	}
	for _, want := range []string{"spool " + dir + ": 3 records,", "oldest 1m0s ago", "emma.message_open  3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// The JSON form, with the directory from serve's own variable.
	out.Reset()
	if err := Run(context.Background(), []string{"status", "--json"}, env(&out, &errb, map[string]string{"EMMA_GATEWAY_SPOOL_DIR": dir})); err != nil {
		t.Fatal(err)
	}
	var st sinks.SpoolStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.Records != 3 || len(st.Topics) != 1 || st.Topics[0].Topic != "emma.message_open" {
		t.Fatalf("json %s: %v", out.String(), err)
	}
}

func TestSpoolStatusErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := sinks.DefaultSpoolConfig()
	cfg.Dir = dir
	s, err := sinks.OpenSpool(cfg, nil) // a running gateway holds it
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Shutdown(context.Background()) }()
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"status", "--spool-dir", dir}, env(&out, &errb, nil)); !errors.Is(err, sinks.ErrSpoolInUse) || cli.ExitCode(err) != 1 {
		t.Errorf("spool in use: %v", err)
	}
	for _, args := range [][]string{nil, {"stat"}, {"status"}, {"status", "--spool-dir", dir, "extra"}} {
		if err := Run(context.Background(), args, env(&out, &errb, nil)); cli.ExitCode(err) != 2 {
			t.Errorf("%q: exit %d (%v), want 2", args, cli.ExitCode(err), err)
		}
	}
	if err := Run(context.Background(), []string{"status", "--spool-dir", dir + "/missing"}, env(&out, &errb, nil)); cli.ExitCode(err) != 1 {
		t.Errorf("missing directory: %v", err)
	}
}
