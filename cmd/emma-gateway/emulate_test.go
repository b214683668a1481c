package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/emulate"
	"github.com/emma-gateway/emma-gateway/internal/emulator"
	"github.com/emma-gateway/emma-gateway/internal/testutil"
)

// fireCLI runs emma-gateway emulate fire against the emulator at url.
func fireCLI(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	return runCLI(t, append([]string{"emulate", "fire", "--emulator-url", url}, args...)...)
}

func TestEmulateCommandServesPrintsItsSettingsAndFires(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &lockedBuffer{}
	var stderr bytes.Buffer
	env := map[string]string{"EMMA_GATEWAY_EMULATE_ADDR": "127.0.0.1:0", "EMMA_GATEWAY_EMULATE_ACCOUNT_ID": "4242"}
	done := make(chan error, 1)
	go func() {
		done <- emulate.Run(ctx, nil, cli.IO{Stdout: stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("emulate returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("emulate did not stop")
		}
	})
	apiRE := regexp.MustCompile(`EMMA_API_URL=(http://127\.0\.0\.1:\d+)\n`)
	var api string
	testutil.Eventually(t, 10*time.Second, "printing its banner", func() bool {
		if m := apiRE.FindStringSubmatch(stdout.String()); m != nil {
			api = m[1]
		}
		return api != ""
	})
	for _, w := range []string{"EMMA_ACCOUNT_ID=4242", "EMMA_PUBLIC_API_KEY=" + emulator.DefaultPublicKey, "EMMA_PRIVATE_API_KEY=" + emulator.DefaultPrivateKey} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("banner lacks %q:\n%s", w, stdout.String())
		}
	}

	code, out, errOut := fireCLI(t, api, "message_open")
	if code != 0 || !strings.Contains(out, "no webhook is registered for message_open") {
		t.Fatalf("fire with no webhook: %d %s %s", code, out, errOut)
	}

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"accepted"}`)) }))
	t.Cleanup(ok.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }))
	t.Cleanup(broken.Close)
	for _, h := range []struct{ event, url string }{{"message_open", ok.URL + "/webhooks/emma/TKN"}, {"group_create", broken.URL + "/x"}} {
		code, _, errOut := runCLI(t, "webhooks", "create", "--api-url", api, "--account-id", "4242",
			"--public-key", emulator.DefaultPublicKey, "--private-key", emulator.DefaultPrivateKey, "--event", h.event, "--url", h.url)
		if code != 0 {
			t.Fatalf("create: %s", errOut)
		}
	}
	code, out, errOut = fireCLI(t, api, "message_open", "--data", `{"subject":"Hi"}`)
	if code != 0 || !strings.Contains(out, `"subject":"Hi"`) || !strings.Contains(out, `"account_id":4242`) ||
		!regexp.MustCompile(`1024\s+POST\s+200\s+http://127\.0\.0\.1:\d+/webhooks/emma/\*\*\*\s+\{"status":"accepted"\}`).MatchString(out) {
		t.Fatalf("fire: %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, "TKN") {
		t.Fatalf("fire printed the token:\n%s", out)
	}
	code, _, errOut = fireCLI(t, api, "group_create")
	if code != 1 || !strings.Contains(errOut, "1 of 1 deliveries of group_create failed") {
		t.Fatalf("fire to a failing receiver: %d %s", code, errOut)
	}
	code, _, errOut = fireCLI(t, api, "member_birthday")
	if code != 1 || !strings.Contains(errOut, `the emulator refused: 400 unknown event "member_birthday"`) {
		t.Fatalf("unknown event: %d %s", code, errOut)
	}
	code, _, errOut = fireCLI(t, api)
	if code != 2 || !strings.Contains(errOut, "fire takes one event name") {
		t.Fatalf("no event: %d %s", code, errOut)
	}
}

// TestEmulatorSyncAndFireEveryEventLandsOnKafka is the local demo as a
// test: an emulated Emma, the real gateway, webhooks sync registering the
// gateway for the 19 events (GET for the first ten, POST for the rest),
// then each event fired: each lands on its topic, as sent.
func TestEmulatorSyncAndFireEveryEventLandsOnKafka(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, nil)
	em, api := startEmulator(t, func(c *emulator.Config) { c.Now = func() time.Time { return fixedNow } })
	hook := tg.url + "/webhooks/emma/" + testToken
	types := events.Types()
	var names []string
	for _, typ := range types {
		names = append(names, typ.Name)
	}
	if len(names) != 19 {
		t.Fatalf("%d event types", len(names))
	}
	method := map[string]string{}
	for i, n := range names {
		method[n] = map[bool]string{true: "GET", false: "POST"}[i < 10]
	}
	for _, half := range []struct {
		method string
		events []string
	}{{"GET", names[:10]}, {"POST", names[10:]}} {
		code, out, errOut := webhooksCLI(t, api, "sync", "--url", hook, "--method", half.method, "--events", strings.Join(half.events, ","))
		if code != 0 {
			t.Fatalf("sync: %d %s %s", code, out, errOut)
		}
	}
	hooks := em.Webhooks()
	if len(hooks) != 19 {
		t.Fatalf("%d webhooks registered", len(hooks))
	}
	for _, wh := range hooks {
		if wh.URL != hook || wh.Method != method[wh.Event] {
			t.Fatalf("registration %+v", wh)
		}
	}

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := fireCLI(t, api, name)
			if code != 0 {
				t.Fatalf("fire: %d %s %s", code, out, errOut)
			}
			ds := em.Deliveries()
			d := ds[len(ds)-1]
			if d.Event != name || d.Method != method[name] || d.Status != 200 || !strings.Contains(d.Response, `"status":"accepted"`) {
				t.Fatalf("delivery %+v", d)
			}
			msgs := consume(t, tg.brokers, "emma."+name)
			if len(msgs) != 1 {
				t.Fatalf("emma.%s holds %d messages", name, len(msgs))
			}
			var sent struct {
				ResourceURL string         `json:"resource_url"`
				Data        map[string]any `json:"data"`
			}
			var value map[string]any
			decodeNumbers(t, d.Payload, &sent)
			decodeNumbers(t, msgs[0].Value, &value)
			if value["event_name"] != name || value["delivery"] != method[name] || value["timestamp"] != "2026-11-26T12:00:00Z" {
				t.Fatalf("value %v", value)
			}
			if sent.ResourceURL != "" && value["resource_url"] != sent.ResourceURL {
				t.Fatalf("resource_url %v, sent %s", value["resource_url"], sent.ResourceURL)
			}
			// Every field sent arrives typed, unchanged (ids above 2^32
			// included), nothing in extra.
			for k, v := range sent.Data {
				if k != "timestamp" && !reflect.DeepEqual(value[k], v) {
					t.Errorf("%s: value has %v, sent %v", k, value[k], v)
				}
			}
			if value["extra"] != nil && len(value["extra"].(map[string]any)) != 0 {
				t.Errorf("extra %v", value["extra"])
			}
			var wantKey any
			for _, k := range []string{"member_id", "mailing_id", "import_id", "member_group_id"} {
				if v, ok := sent.Data[k]; ok && v != nil {
					wantKey = v
					break
				}
			}
			if string(msgs[0].Key) != wantKey.(json.Number).String() || len(msgs[0].Key) < 10 {
				t.Fatalf("key %s, want %v", msgs[0].Key, wantKey)
			}
		})
	}
}

func decodeNumbers(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
