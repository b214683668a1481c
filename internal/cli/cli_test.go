package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestSet(out io.Writer) (*FlagSet, *struct {
	name    string
	n       int
	d       time.Duration
	verbose bool
	list    List
	secret  Secret
	tokens  SecretList
}) {
	v := &struct {
		name    string
		n       int
		d       time.Duration
		verbose bool
		list    List
		secret  Secret
		tokens  SecretList
	}{d: time.Second}
	fs := NewFlagSet("test", "APP_", out)
	fs.StringVar(&v.name, "name", "", "a name")
	fs.IntVar(&v.n, "count", 0, "a number")
	fs.DurationVar(&v.d, "wait", v.d, "a duration")
	fs.BoolVar(&v.verbose, "verbose", false, "a switch")
	fs.Var(&v.list, "items", "a list")
	fs.Var(&v.secret, "password", "a secret")
	fs.Var(&v.tokens, "tokens", "secrets")
	return fs, v
}

func TestParseInterspersedArguments(t *testing.T) {
	fs, v := newTestSet(nil)
	pos, err := fs.Parse([]string{"get", "--count", "3", "100", "--verbose", "--name=x", "--", "--not-a-flag"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"get", "100", "--not-a-flag"}, pos); diff != "" {
		t.Errorf("positional (-want +got):\n%s", diff)
	}
	if v.n != 3 || !v.verbose || v.name != "x" {
		t.Errorf("count %d verbose %v name %q", v.n, v.verbose, v.name)
	}
}

func TestEnvironmentFillsWhatTheCommandLineDoesNotSet(t *testing.T) {
	fs, v := newTestSet(nil)
	fs.SetEnv("count", "OTHER_COUNT")
	env := map[string]string{"APP_NAME": "env", "OTHER_COUNT": "7", "APP_COUNT": "99", "APP_ITEMS": " a, b ,,c", "APP_WAIT": "2s"}
	if _, err := fs.Parse([]string{"--wait", "5s"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if v.name != "env" || v.n != 7 || v.d != 5*time.Second {
		t.Errorf("name %q count %d wait %v", v.name, v.n, v.d)
	}
	if diff := cmp.Diff(List{"a", "b", "c"}, v.list); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if got := fs.EnvOf("verbose"); got != "APP_VERBOSE" {
		t.Errorf("EnvOf(verbose) = %q", got)
	}
}

func TestEnvPrefixKeepsACommandsVariablesApart(t *testing.T) {
	fs, v := newTestSet(nil)
	fs.SetEnv("name", "KEPT")
	fs.EnvPrefix("APP_BENCH_")
	env := map[string]string{"APP_COUNT": "1", "APP_BENCH_COUNT": "2", "KEPT": "k"}
	if _, err := fs.Parse(nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if v.n != 2 || v.name != "k" {
		t.Errorf("count %d name %q", v.n, v.name)
	}
}

func TestBadValuesAreUsageErrorsThatNeverEchoTheValue(t *testing.T) {
	fs, _ := newTestSet(nil)
	env := map[string]string{"APP_COUNT": "sekrit-1", "APP_WAIT": "sekrit-2", "APP_VERBOSE": "sekrit-3"}
	_, err := fs.Parse(nil, func(k string) string { return env[k] })
	if !errors.Is(err, ErrUsage) {
		t.Fatalf("want a usage error, got %v", err)
	}
	for _, want := range []string{"APP_COUNT", "APP_WAIT: not a valid duration", "APP_VERBOSE: not a valid boolean"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "sekrit") {
		t.Errorf("error echoes a value: %v", err)
	}
	fs, _ = newTestSet(nil)
	if _, err := fs.Parse([]string{"--nope"}, nil); !errors.Is(err, ErrUsage) {
		t.Errorf("unknown flag: %v", err)
	}
	if err := fs.ParseNoArgs([]string{"extra"}, nil); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "extra") {
		t.Errorf("positional argument: %v", err)
	}
}

func TestHelpPrintsVariablesAndNoSecret(t *testing.T) {
	var out bytes.Buffer
	fs, v := newTestSet(&out)
	v.secret, v.tokens = "hunter2-secret", SecretList{"tok-secret-1", "tok-secret-2"}
	_, err := fs.Parse([]string{"-h"}, nil)
	if !errors.Is(err, flag.ErrHelp) || errors.Is(err, ErrUsage) {
		t.Fatalf("-h: %v", err)
	}
	s := out.String()
	for _, want := range []string{"(env APP_PASSWORD)", "(env APP_TOKENS)", "(env APP_WAIT)"} {
		if !strings.Contains(s, want) {
			t.Errorf("help lacks %q:\n%s", want, s)
		}
	}
	if v.secret.String() != "(set)" || v.tokens.String() != "(2 set)" {
		t.Errorf("secret prints as %q and %q", v.secret.String(), v.tokens.String())
	}
	if strings.Contains(s, "secret-") || strings.Contains(s, "hunter2") {
		t.Errorf("help shows a secret:\n%s", s)
	}
	// A second Parse does not add the variable twice.
	if _, err := fs.Parse(nil, nil); err != nil || strings.Count(fs.Lookup("wait").Usage, "(env ") != 1 {
		t.Errorf("usage %q (%v)", fs.Lookup("wait").Usage, err)
	}
}

func TestUsageKeepsTheMessage(t *testing.T) {
	base := errors.New("timezone \"Mars\": unknown")
	err := Usage(base)
	if err.Error() != base.Error() || !errors.Is(err, ErrUsage) || !errors.Is(err, base) {
		t.Errorf("Usage(%v) = %v", base, err)
	}
	if Usage(nil) != nil {
		t.Error("Usage(nil) is not nil")
	}
}

type exit3 struct{}

func (exit3) Error() string { return "changes pending" }
func (exit3) ExitCode() int { return 3 }

func TestProgramDispatchesAndMapsExitCodes(t *testing.T) {
	var ran []string
	cmd := func(name string, err error) *Command {
		return &Command{Name: name, Short: name + " [flags]", Run: func(_ context.Context, args []string, _ IO) error {
			ran = append(ran, name+" "+strings.Join(args, " "))
			return err
		}}
	}
	p := &Program{Name: "prog", Summary: "prog: a test.", Commands: []*Command{
		cmd("serve", nil), cmd("bad", Usagef("no such flag")), cmd("fail", errors.New("broker down")),
		cmd("drift", exit3{}), cmd("help-me", flag.ErrHelp),
	}}
	internal := cmd("internal-target", nil)
	internal.Hidden = true
	p.Commands = append(p.Commands, internal)
	for _, tc := range []struct {
		args       []string
		code       int
		ran, inErr string
	}{
		{nil, 0, "serve ", ""},
		{[]string{"--addr", ":1"}, 0, "serve --addr :1", ""},
		{[]string{"bad", "x"}, 2, "bad x", "prog bad: no such flag"},
		{[]string{"fail"}, 1, "fail ", "prog fail: broker down"},
		{[]string{"drift"}, 3, "drift ", ""},
		{[]string{"help-me"}, 0, "help-me ", ""},
		{[]string{"nope"}, 2, "", `unknown command "nope"`},
		{[]string{"help"}, 0, "", ""},
		{[]string{"internal-target", "noop"}, 0, "internal-target noop", ""},
	} {
		ran = nil
		var stdout, stderr bytes.Buffer
		code := p.Run(context.Background(), tc.args, IO{Stdout: &stdout, Stderr: &stderr})
		if code != tc.code || strings.Join(ran, "") != tc.ran || (tc.inErr == "") != (stderr.Len() == 0) || !strings.Contains(stderr.String(), tc.inErr) {
			t.Errorf("%q: code %d, ran %q, stderr %q", tc.args, code, ran, stderr.String())
		}
	}
	// A hidden command runs but is not offered.
	if u := p.Usage(); !strings.Contains(u, "  prog drift [flags]\n") || strings.Contains(u, "internal-target") {
		t.Errorf("usage:\n%s", u)
	}
}
