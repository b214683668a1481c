package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/emmaapi"
	"github.com/emma-gateway/emma-gateway/internal/emulator"
)

const (
	emuPublic  = "test-public-key"
	emuPrivate = "test-private-key-SECRET"
)

// startEmulator serves an emulator on loopback and returns it with its URL.
func startEmulator(t *testing.T, mutate func(*emulator.Config)) (*emulator.Emulator, string) {
	t.Helper()
	cfg := emulator.DefaultConfig()
	cfg.PublicKey, cfg.PrivateKey, cfg.AccountID = emuPublic, emuPrivate, 100
	if mutate != nil {
		mutate(&cfg)
	}
	em, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	return em, srv.URL
}

// runCLI runs emma-gateway with args, as main does, and returns the exit code
// and outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	p := &cli.Program{Name: "emma-gateway", Commands: []*cli.Command{{Name: "webhooks", Run: Run}}}
	code := p.Run(context.Background(), args, cli.IO{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }})
	return code, stdout.String(), stderr.String()
}

// webhooksCLI runs emma-gateway webhooks SUB against the API at api with
// the emulator's credentials, and fast retries.
func webhooksCLI(t *testing.T, api, sub string, args ...string) (int, string, string) {
	t.Helper()
	all := append([]string{"webhooks", sub, "--api-url", api, "--account-id", "100",
		"--public-key", emuPublic, "--private-key", emuPrivate, "--retries", "1", "--retry-backoff", "1ms"}, args...)
	code, stdout, stderr := runCLI(t, all...)
	if strings.Contains(stdout+stderr, emuPrivate) {
		t.Fatalf("the private key was printed:\n%s\n%s", stdout, stderr)
	}
	return code, stdout, stderr
}

// writes counts the API calls that change registrations.
func writes(em *emulator.Emulator) int {
	c := em.Calls()
	return c["POST /webhooks"] + c["PUT /webhooks/{id}"] + c["DELETE /webhooks/{id}"] + c["DELETE /webhooks"]
}

func TestWebhooksCommandsAgainstEmulator(t *testing.T) {
	t.Parallel()
	em, api := startEmulator(t, nil)
	const hook = "https://gw.example.com/webhooks/emma/SECRET-TOKEN"
	steps := []struct {
		sub  string
		args []string
		want []string // in stdout
	}{
		{"create", []string{"--event", "message_open", "--url", hook}, []string{"created webhook 1024: message_open POST https://gw.example.com/webhooks/emma/***"}},
		{"create", []string{"--event", "message_click", "--url", hook + "?x=1", "--method", "get", "--json"}, []string{`"webhook_id": 1025`}},
		{"list", nil, []string{"ID    EVENT          METHOD  URL", "1024  message_open   POST    https://gw.example.com/webhooks/emma/***", "1025  message_click  GET     https://gw.example.com/webhooks/emma/***?x=1"}},
		{"list", []string{"--show-tokens"}, []string{hook + "?x=1"}},
		{"get", []string{"1025", "--json"}, []string{`"webhook_id": 1025`, `"method": "GET"`, `"url": "https://gw.example.com/webhooks/emma/***?x=1"`}},
		{"update", []string{"1025", "--method", "POST"}, []string{"updated webhook 1025"}},
		{"get", []string{"1025"}, []string{"1025  message_click  POST"}},
		{"events", nil, []string{"1   mailing_finish            Fired when a mailing is finished.", "18  message_forward"}},
		{"events", []string{"--json"}, []string{`"event_name": "member_status_update"`}},
		{"delete", []string{"1024"}, []string{"deleted webhook 1024"}},
		{"list", []string{"--json"}, []string{`"webhook_id": 1025`}},
		{"delete", []string{"--all", "--yes"}, []string{"deleted every webhook of the account"}},
		{"list", []string{"--json"}, []string{"[]"}},
	}
	for _, s := range steps {
		code, stdout, stderr := webhooksCLI(t, api, s.sub, s.args...)
		if code != 0 {
			t.Fatalf("%s %v: exit %d: %s", s.sub, s.args, code, stderr)
		}
		for _, w := range s.want {
			if !strings.Contains(stdout, w) {
				t.Fatalf("%s %v: output lacks %q:\n%s", s.sub, s.args, w, stdout)
			}
		}
		if !slices.Contains(s.args, "--show-tokens") && strings.Contains(stdout, "SECRET-TOKEN") {
			t.Fatalf("%s %v printed the gateway token:\n%s", s.sub, s.args, stdout)
		}
	}
	if n := len(em.Webhooks()); n != 0 {
		t.Fatalf("%d webhooks left", n)
	}
}

func TestWebhooksErrorsAreClearAndExitNonZero(t *testing.T) {
	t.Parallel()
	_, api := startEmulator(t, nil)
	_, limited := startEmulator(t, func(c *emulator.Config) { c.CallsPerMinute = 1 })
	if code, _, stderr := webhooksCLI(t, limited, "list"); code != 0 {
		t.Fatalf("first call: %d %s", code, stderr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		name      string
		api, sub  string
		args      []string
		code      int
		wantInErr []string
	}{
		{"wrong credentials", api, "list", []string{"--private-key", "wrong"}, 1, []string{"401 Unauthorized", "bad credentials"}},
		{"unknown webhook", api, "get", []string{"999"}, 1, []string{"GET /webhooks/999", "404 Not Found", "not found"}},
		{"unknown webhook on delete", api, "delete", []string{"999"}, 1, []string{"404", "not found"}},
		{"rate limited", limited, "list", nil, 1, []string{"403 Forbidden", "rate limited", "180 calls a minute"}},
		{"dead API", dead, "list", nil, 1, []string{"the API is unavailable", "connection refused"}},
		{"missing keys", api, "list", []string{"--public-key", "", "--private-key", ""}, 2, []string{"public API key is empty", "private API key is empty"}},
		{"bad method", api, "create", []string{"--event", "message_open", "--url", "https://x/", "--method", "PUT"}, 2, []string{"--method must be GET or POST"}},
		{"create without url", api, "create", []string{"--event", "message_open"}, 2, []string{"--event and --url"}},
		{"bad id", api, "get", []string{"abc"}, 2, []string{`"abc" is not a webhook id`}},
		{"delete all without yes", api, "delete", []string{"--all"}, 2, []string{"add --yes"}},
		{"sync without url", api, "sync", nil, 2, []string{"needs --url"}},
		{"sync unknown event", api, "sync", []string{"--url", "https://x/", "--events", "member_birthday"}, 2, []string{`unknown event "member_birthday"`}},
		{"unknown command", api, "frobnicate", nil, 2, []string{`unknown command "frobnicate"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := webhooksCLI(t, tt.api, tt.sub, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			for _, w := range tt.wantInErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestWebhooksReadEmmaVariables(t *testing.T) {
	t.Parallel()
	_, api := startEmulator(t, nil)
	env := map[string]string{"EMMA_API_URL": api, "EMMA_ACCOUNT_ID": "100", "EMMA_PUBLIC_API_KEY": emuPublic, "EMMA_PRIVATE_API_KEY": emuPrivate, "EMMA_GATEWAY_WEBHOOKS_JSON": "true"}
	var stdout, stderr bytes.Buffer
	if err := Run(t.Context(), []string{"list"}, cli.IO{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}); err != nil {
		t.Fatalf("%v %s", err, stderr.String())
	}
	if strings.TrimSpace(stdout.String()) != "[]" {
		t.Fatalf("output %q", stdout.String())
	}
}

// syncState registers what a sync test starts from.
func register(t *testing.T, api string, hooks ...emmaapi.WebhookParams) {
	t.Helper()
	cfg := emmaapi.DefaultConfig()
	cfg.BaseURL, cfg.AccountID, cfg.PublicKey, cfg.PrivateKey = api, "100", emuPublic, emuPrivate
	c, err := emmaapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hooks {
		if _, err := c.Create(t.Context(), h); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSync(t *testing.T) {
	t.Parallel()
	const (
		gw    = "https://gw.example.com/webhooks/emma/NEW-TOKEN"
		oldGw = "https://gw.example.com/webhooks/emma/OLD-TOKEN"
		other = "https://crm.example.com/emma"
	)
	type hook = emmaapi.WebhookParams
	tests := []struct {
		name     string
		before   []hook
		args     []string
		code     int
		writes   map[string]int
		after    []hook // sorted by event then URL
		wantPlan []string
	}{
		{
			name:   "creates what is missing",
			args:   []string{"--events", "message_open,message_click", "--method", "GET"},
			writes: map[string]int{"POST /webhooks": 2},
			after:  []hook{{Event: "message_click", URL: gw, Method: "GET"}, {Event: "message_open", URL: gw, Method: "GET"}},
			wantPlan: []string{"create  message_click  1024  GET     https://gw.example.com/webhooks/emma/***",
				"2 created, 0 updated, 0 deleted, 0 unchanged"},
		},
		{
			name:   "updates a rotated token or a wrong method, leaves other URLs alone",
			before: []hook{{Event: "message_open", URL: oldGw, Method: "GET"}, {Event: "message_open", URL: other}, {Event: "message_click", URL: gw + "?token=x"}},
			args:   []string{"--events", "message_open,message_click"},
			writes: map[string]int{"PUT /webhooks/{id}": 2},
			after:  []hook{{Event: "message_click", URL: gw, Method: "POST"}, {Event: "message_open", URL: other, Method: "POST"}, {Event: "message_open", URL: gw, Method: "POST"}},
			wantPlan: []string{"update  message_open   1024  POST    https://gw.example.com/webhooks/emma/*** (was GET https://gw.example.com/webhooks/emma/***)",
				"0 created, 2 updated, 0 deleted, 0 unchanged"},
		},
		{
			name:   "without --prune keeps unwanted events and duplicates",
			before: []hook{{Event: "group_create", URL: gw}, {Event: "message_open", URL: gw}, {Event: "message_open", URL: oldGw}},
			args:   []string{"--events", "message_open"},
			writes: map[string]int{},
			after:  []hook{{Event: "group_create", URL: gw, Method: "POST"}, {Event: "message_open", URL: gw, Method: "POST"}, {Event: "message_open", URL: oldGw, Method: "POST"}},
		},
		{
			name:   "--prune deletes this gateway's unwanted events and duplicates only",
			before: []hook{{Event: "group_create", URL: gw}, {Event: "message_open", URL: oldGw}, {Event: "message_open", URL: gw}, {Event: "group_create", URL: other}},
			args:   []string{"--events", "message_open,message_click", "--prune"},
			writes: map[string]int{"POST /webhooks": 1, "DELETE /webhooks/{id}": 2},
			after:  []hook{{Event: "group_create", URL: other, Method: "POST"}, {Event: "message_click", URL: gw, Method: "POST"}, {Event: "message_open", URL: gw, Method: "POST"}},
			wantPlan: []string{"delete  group_create   1024", "delete  message_open   1025", "keep    message_open   1026",
				"1 created, 0 updated, 2 deleted, 1 unchanged"},
		},
		{
			name:     "--dry-run changes nothing and exits 3",
			before:   []hook{{Event: "group_create", URL: gw}},
			args:     []string{"--events", "message_open", "--prune", "--dry-run"},
			code:     3,
			writes:   map[string]int{},
			after:    []hook{{Event: "group_create", URL: gw, Method: "POST"}},
			wantPlan: []string{"create  message_open", "delete  group_create", "dry run, nothing changed: 1 to create, 0 to update, 1 to delete, 0 unchanged"},
		},
		{
			name:     "--dry-run with nothing to change exits 0",
			before:   []hook{{Event: "message_open", URL: gw, Method: "POST"}},
			args:     []string{"--events", "message_open", "--dry-run"},
			writes:   map[string]int{},
			after:    []hook{{Event: "message_open", URL: gw, Method: "POST"}},
			wantPlan: []string{"keep    message_open  1024"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			em, api := startEmulator(t, nil)
			register(t, api, tt.before...)
			before := em.Calls()
			code, stdout, stderr := webhooksCLI(t, api, "sync", append([]string{"--url", gw}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, stdout, stderr)
			}
			after := em.Calls()
			for _, k := range []string{"POST /webhooks", "PUT /webhooks/{id}", "DELETE /webhooks/{id}", "DELETE /webhooks"} {
				if got := after[k] - before[k]; got != tt.writes[k] {
					t.Errorf("%d calls %s, want %d", got, k, tt.writes[k])
				}
			}
			var got []hook
			for _, wh := range em.Webhooks() {
				got = append(got, hook{Event: wh.Event, URL: wh.URL, Method: wh.Method})
			}
			slices.SortFunc(got, func(a, b hook) int { return strings.Compare(a.Event+" "+a.URL, b.Event+" "+b.URL) })
			if !slices.Equal(got, tt.after) {
				t.Errorf("registrations\n got %v\nwant %v", got, tt.after)
			}
			for _, w := range tt.wantPlan {
				if !strings.Contains(stdout, w) {
					t.Errorf("plan lacks %q:\n%s", w, stdout)
				}
			}
			if strings.Contains(stdout, "TOKEN") {
				t.Errorf("the plan shows a gateway token:\n%s", stdout)
			}
			if tt.code != 0 {
				return
			}
			// A second run finds nothing to do and makes no write call.
			n := writes(em)
			code, stdout, stderr = webhooksCLI(t, api, "sync", append([]string{"--url", gw}, tt.args...)...)
			nothing := strings.Contains(stdout, "0 created, 0 updated, 0 deleted") || strings.Contains(stdout, "0 to create, 0 to update, 0 to delete")
			if code != 0 || writes(em) != n || !nothing {
				t.Fatalf("second run: exit %d, %d writes\n%s%s", code, writes(em)-n, stdout, stderr)
			}
		})
	}
}

func TestSyncAllAsksEmmaForItsEvents(t *testing.T) {
	t.Parallel()
	em, api := startEmulator(t, nil)
	code, stdout, stderr := webhooksCLI(t, api, "sync", "--url", "http://127.0.0.1:8080/webhooks/emma/t", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var plan struct {
		DryRun  bool                 `json:"dry_run"`
		Changes int                  `json:"changes"`
		Actions []emmaapi.SyncAction `json:"actions"`
	}
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if plan.Changes != 18 || len(plan.Actions) != 18 || len(em.Webhooks()) != 18 || em.Calls()["GET /webhooks/events"] != 1 {
		t.Fatalf("plan %+v, %d webhooks", plan, len(em.Webhooks()))
	}
	for _, a := range plan.Actions {
		if a.Action != "create" || a.WebhookID < 1024 || a.URL != "http://127.0.0.1:8080/webhooks/emma/***" {
			t.Fatalf("action %+v", a)
		}
	}
}

func TestSyncStopsClearlyWhenEmmaFails(t *testing.T) {
	t.Parallel()
	// Emma accepts the list, then refuses the create with 500: sync
	// reports which step failed, and exits 1.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Write([]byte(`[]`))
			return
		}
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	code, _, stderr := webhooksCLI(t, srv.URL, "sync", "--url", "https://gw/webhooks/emma/t", "--events", "message_open")
	if code != 1 || !strings.Contains(stderr, "sync stopped at create of message_open") || !strings.Contains(stderr, "500") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
