package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/tail"
	"github.com/emma-gateway/emma-gateway/internal/testutil"
	"github.com/emma-gateway/emma-gateway/schemas"
)

// runTail runs tail with args against tg's broker until it has printed
// want lines, then a little longer (to catch lines it should not print),
// and returns its output.
func runTail(t *testing.T, tg *testGateway, want int, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan error, 1)
	args = append([]string{"--kafka-brokers", strings.Join(tg.brokers, ","), "--from-beginning"}, args...)
	go func() {
		done <- tail.Run(ctx, args, cli.IO{Stdout: out, Stderr: errOut, Getenv: func(string) string { return "" }})
	}()
	lines := func() []string {
		s := strings.TrimSuffix(out.String(), "\n")
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	testutil.Poll(30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("tail %v returned early: %v\n%s", args, err, errOut.String())
		default:
		}
		return len(lines()) >= want
	})
	// A negative check has no event to wait for: give tail a moment to
	// print a line it should not.
	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail: %v", err)
	}
	got := lines()
	if len(got) != want {
		t.Fatalf("tail %v printed %d lines, want %d:\n%s\nstderr: %s", args, len(got), want, strings.Join(got, "\n"), errOut.String())
	}
	return got
}

// schemaFor compiles the committed schema a header names (ce_dataschema's
// URL, or the dead-letter schema), with format assertions on.
func schemaFor(t *testing.T, url string) *jsonschema.Schema {
	t.Helper()
	name := strings.TrimPrefix(url, schemas.BaseURL)
	b, err := fs.ReadFile(schemas.FS(), name)
	if err != nil {
		t.Fatalf("schema %s: %v", url, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validates(t *testing.T, s *jsonschema.Schema, b []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(v)
}

// TestTailDecodesFiltersAndValidates sends every test callback (and one of
// another account, and a rejected one) through the real gateway, reads them
// back with tail, and checks its filters, its table, and that every value
// and header set the gateway produced validates against its schema.
func TestTailDecodesFiltersAndValidates(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, nil)
	files, err := filepath.Glob("testdata/callbacks/*.json")
	if err != nil || len(files) != 20 {
		t.Fatalf("%d callbacks: %v", len(files), err)
	}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		method := http.MethodPost
		if i%2 == 1 {
			method = http.MethodGet
		}
		if status, body := tg.callback(t, method, string(b)); status != http.StatusOK {
			t.Fatalf("%s: %d %v", f, status, body)
		}
	}
	if status, _ := tg.callback(t, http.MethodPost, `{"event_name":"message_open","data":{"account_id":42,"member_id":7,"mailing_id":8,"subject":"s","timestamp":"@D:2026-11-20T14:00:00"}}`); status != http.StatusOK {
		t.Fatalf("account 42: %d", status)
	}
	if status, _ := tg.callback(t, http.MethodGet, `{"event_name":"message_open","data":{"account_id":1743199,"member_id":"12x"}}`); status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid: %d", status)
	}

	t.Run("every message, validated", func(t *testing.T) {
		headers := schemaFor(t, schemas.URL(schemas.CloudEventsHeaders))
		deadletter := schemaFor(t, schemas.URL(schemas.DeadLetter))
		seen := map[string]int{}
		for _, line := range runTail(t, tg, 22) {
			var l tail.Line
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			hb, _ := json.Marshal(l.Headers)
			if l.Topic == "emma.deadletter" {
				if err := validates(t, deadletter, hb); err != nil {
					t.Errorf("dead letter headers %s: %v", hb, err)
				}
				seen["deadletter"]++
				continue
			}
			if err := validates(t, headers, hb); err != nil {
				t.Errorf("%s headers: %v", l.Topic, err)
			}
			if err := validates(t, schemaFor(t, l.Headers[kafkaevents.HeaderDataSchema]), l.Value); err != nil {
				t.Errorf("%s value %s: %v", l.Topic, l.Value, err)
			}
			seen[l.Event]++
		}
		if len(seen) != 21 || seen["message_open"] != 2 || seen["deadletter"] != 1 || seen["member_birthday"] != 1 {
			t.Fatalf("events seen: %v", seen)
		}
	})

	for _, tc := range []struct {
		name   string
		args   []string
		want   int
		accept func(l tail.Line) bool
	}{
		// A dead letter passes by the event_name it had.
		{"by event name", []string{"--events", "member_add,message_open"}, 4, func(l tail.Line) bool {
			return l.Event == "member_add" || l.Event == "message_open" && (l.Topic == "emma.message_open" || l.Headers["emma_reason"] == "invalid")
		}},
		{"by account", []string{"--accounts", "42"}, 1, func(l tail.Line) bool { return strings.Contains(string(l.Value), `"account_id":42,`) }},
		// Twelve typed events name member 6160010079; the unrecognized one
		// has it only in extra, and the dead letter has no typed event.
		{"by member", []string{"--members", "6160010079,5"}, 12, func(l tail.Line) bool {
			return strings.Contains(string(l.Value), `"member_id":6160010079,`) && l.Topic != "emma.unrecognized"
		}},
		{"by event, account and member", []string{"--events", "message_open", "--accounts", "1743199", "--members", "6160010079"}, 1, func(l tail.Line) bool {
			return l.Event == "message_open" && strings.Contains(string(l.Value), `"account_id":1743199,`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, line := range runTail(t, tg, tc.want, tc.args...) {
				var l tail.Line
				if err := json.Unmarshal([]byte(line), &l); err != nil || !tc.accept(l) {
					t.Errorf("unexpected line (%v): %s", err, line)
				}
			}
		})
	}

	t.Run("table", func(t *testing.T) {
		lines := runTail(t, tg, 3, "--format", "table", "--events", "member_add,message_open", "--accounts", "1743199")
		if !strings.HasPrefix(lines[0], "RECEIVED") || !strings.Contains(lines[0], "MEMBER") {
			t.Fatalf("header %q", lines[0])
		}
		var memberAdd string
		for _, l := range lines[1:] {
			if strings.Contains(l, "member_add") {
				memberAdd = l
			}
		}
		f := strings.Fields(memberAdd)
		if len(f) != 7 || f[0] != "2026-11-26T12:00:00Z" || f[1] != "member_add" || f[2] != "1743199" || f[3] != "1160010079" || f[4] != "1160010079" || !strings.HasPrefix(f[5], "emma.member_add/") || len(f[6]) != 32 {
			t.Fatalf("member_add row %q", memberAdd)
		}
	})
}

// TestGatewayServesSchemas reads the contract from a running gateway: the
// index lists every schema, and each is served as committed, without a
// token (the contract is public; it holds no data).
func TestGatewayServesSchemas(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, nil)
	res, err := http.Get(tg.url + "/schemas/")
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Schemas []struct{ Name, Path string }
	}
	err = json.NewDecoder(res.Body).Decode(&idx)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || len(idx.Schemas) != len(schemas.Names()) || len(idx.Schemas) < 22 {
		t.Fatalf("index: %d %v %+v", res.StatusCode, err, idx)
	}
	for _, s := range append(idx.Schemas, struct{ Name, Path string }{"asyncapi", "/schemas/" + schemas.AsyncAPI}) {
		res, err := http.Get(tg.url + s.Path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		res.Body.Close()
		want, _ := fs.ReadFile(schemas.FS(), strings.TrimPrefix(s.Path, "/schemas/"))
		if res.StatusCode != http.StatusOK || len(want) == 0 || !bytes.Equal(b.Bytes(), want) {
			t.Fatalf("%s: %d, %d bytes", s.Path, res.StatusCode, b.Len())
		}
	}
	res, err = http.Get(tg.url + "/schemas/nope.json")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown schema: %d", res.StatusCode)
	}
}
