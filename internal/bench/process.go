package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emma-gateway/emma-gateway/internal/bench/handwritten"
	"github.com/emma-gateway/emma-gateway/internal/bench/noop"
	"github.com/emma-gateway/emma-gateway/internal/cli"
)

// TargetCommand is the name of the hidden command that runs a comparison
// target ("emma-gateway bench-target noop|handwritten"): bench starts it
// from its own binary, so that each target has a process of its own and no
// toolchain is needed at run time.
const TargetCommand = "bench-target"

// RunTarget is "emma-gateway bench-target noop|handwritten [--addr A]
// [--brokers B]": it serves the named comparison target until ctx ends,
// printing its listen address and brokers to stdout.
func RunTarget(ctx context.Context, args []string, env cli.IO) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return cli.Usagef("name a target: noop or handwritten")
	}
	name := args[0]
	fs := flag.NewFlagSet(TargetCommand+" "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	addr := fs.String("addr", "127.0.0.1:0", "HTTP listen address")
	brokers := fs.String("brokers", "", "Kafka brokers, comma-separated; empty starts an in-process broker")
	if err := fs.Parse(args[1:]); err != nil {
		return cli.Usage(err)
	}
	switch name {
	case "noop":
		return noop.Run(ctx, *addr, *brokers, env.Stdout)
	case "handwritten":
		return handwritten.Run(ctx, *addr, *brokers, env.Stdout)
	}
	return cli.Usagef("unknown target %q: want noop or handwritten", name)
}

// child is a target running in a process of its own, started by bench.
type child struct {
	name    string
	cmd     *exec.Cmd
	url     string   // base URL, e.g. http://127.0.0.1:43121
	brokers []string // its Kafka brokers, for verification
	exited  chan struct{}
	waitErr error

	mu   sync.Mutex
	tail []string // its last lines of output, for errors
}

// addressParser reads one line of a child's output and returns what it
// learnt: the base URL, the brokers, or neither.
type addressParser func(line string) (url string, brokers []string)

// startChild starts exe with args and env and waits (at most a minute)
// until its output has named its URL and brokers. Its output is then
// drained, the last lines kept for errors.
func startChild(ctx context.Context, name, exe string, args, env []string, parse addressParser) (*child, error) {
	c := &child{name: name, exited: make(chan struct{})}
	c.cmd = exec.Command(exe, args...)
	c.cmd.Env = env
	dieWithParent(c.cmd)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pw.Close() // the child holds its own copy
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	type found struct {
		url     string
		brokers []string
	}
	ready := make(chan found, 1)
	go func() {
		defer pr.Close()
		var f found
		sent := false
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			c.keep(line)
			if sent {
				continue
			}
			u, b := parse(line)
			if u != "" {
				f.url = u
			}
			if len(b) > 0 {
				f.brokers = b
			}
			if f.url != "" && len(f.brokers) > 0 {
				ready <- f
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case f := <-ready:
		c.url, c.brokers = f.url, f.brokers
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("%s exited before it listened (%v):\n%s", name, c.waitErr, c.output())
	case <-timer.C:
		c.stop()
		return nil, fmt.Errorf("%s named no address within a minute:\n%s", name, c.output())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

func (c *child) keep(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tail = append(c.tail, line)
	if len(c.tail) > 20 {
		c.tail = c.tail[len(c.tail)-20:]
	}
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the child to shut down gracefully (SIGTERM) and kills it
// after 15 s. It returns an error when the child failed or had to be
// killed.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return c.exitErr()
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return c.exitErr()
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("%s did not stop within 15 s of SIGTERM; killed", c.name)
	}
}

func (c *child) exitErr() error {
	if c.waitErr != nil {
		return fmt.Errorf("%s: %w:\n%s", c.name, c.waitErr, c.output())
	}
	return nil
}

// targetLines parses what bench-target prints:
// "listening on http://ADDR" and "kafka brokers A,B".
func targetLines(line string) (string, []string) {
	if u, ok := strings.CutPrefix(line, "listening on "); ok {
		return strings.TrimSpace(u), nil
	}
	if b, ok := strings.CutPrefix(line, "kafka brokers "); ok {
		return "", strings.Split(strings.TrimSpace(b), ",")
	}
	return "", nil
}

// gatewayLines parses serve's JSON log: the receiver's "listening for Emma
// webhooks" line (addr, tls) and the "emma-gateway started" line
// (kafka_brokers: the embedded broker's real address included).
func gatewayLines(line string) (string, []string) {
	if !strings.HasPrefix(line, "{") {
		return "", nil
	}
	var l struct {
		Msg     string `json:"msg"`
		Addr    string `json:"addr"`
		TLS     bool   `json:"tls"`
		Brokers string `json:"kafka_brokers"`
	}
	if json.Unmarshal([]byte(line), &l) != nil {
		return "", nil
	}
	switch {
	case l.Msg == "listening for Emma webhooks" && l.Addr != "":
		scheme := "http"
		if l.TLS {
			scheme = "https"
		}
		return scheme + "://" + l.Addr, nil
	case l.Msg == "emma-gateway started" && l.Brokers != "":
		return "", strings.Split(l.Brokers, ",")
	}
	return "", nil
}

// childEnv is this process's environment for a child, with bench's own
// variables left out and those of override set (an empty value unsets).
func childEnv(override map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := override[k]; ok || strings.HasPrefix(k, cli.EnvPrefix+"BENCH_") {
			continue
		}
		env = append(env, kv)
	}
	keys := make([]string, 0, len(override))
	for k := range override {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := override[k]; v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
