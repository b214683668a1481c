package receiver

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

var update = flag.Bool("update", false, "rewrite the golden values in testdata/emma")

// emmaReceivedAt is the receive time of the Emma-layout tests, so that
// received_at is stable in their golden files.
var emmaReceivedAt = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// compactLayout finds what json.dumps never writes: a key's colon or an
// item's comma not followed by a space.
var compactLayout = regexp.MustCompile(`":[^ ]|",[^ ]|[0-9el],"`)

// TestEmmaLayoutCallbacks feeds each documented payload (SPEC section 2's
// table and member_add) as Emma's Python writes it, testdata/emma/*.json
// (made with python3's json.dumps: ", " and ": " separators, keys in no
// fixed order, null for missing ids, \u escapes for non-ASCII), through the
// real handler by POST and by GET, with and without a byte-order mark, and
// checks the normalized value against its golden file: the timestamp read
// in Central time on both sides of both 2026 daylight-saving transitions,
// emma_timestamp verbatim, and one event_id for every delivery and for the
// compact form of the same callback.
func TestEmmaLayoutCallbacks(t *testing.T) {
	tests := []struct {
		name      string
		timestamp string // UTC; Emma's @D: time read in America/Chicago
		account   events.ID
	}{
		{"member_add", "2017-12-21T17:01:11Z", 1743199},                    // CST, the real captured callback
		{"member_signup", "2026-03-08T07:59:59Z", 1743199},                 // 01:59:59 CST, the last second before spring forward
		{"message_open", "2026-03-08T08:30:00Z", 1743199},                  // 02:30 never happens: read as CST, = 03:30 CDT
		{"message_click", "2026-03-08T08:00:00Z", 1743199},                 // 03:00 CDT, the first second after it
		{"member_optout", "2026-07-04T17:00:00Z", 1743199},                 // CDT
		{"message_share", "2026-11-01T05:59:59Z", 1743199},                 // 00:59:59 CDT, before fall back
		{"message_forward", "2026-11-01T06:30:00Z", 1743199},               // 01:30 happens twice: the first, CDT
		{"mailing_finish", "2026-11-01T08:00:00Z", 1743199},                // 02:00 CST, after it
		{"import_finish", "2026-11-20T16:01:02Z", 1743199},                 // CST
		{"member_add_without_account_id", "2026-03-08T08:00:00Z", 1743199}, // account from resource_url; 02:00 skipped = 03:00 CDT
	}
	sink := &recorder{}
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	srv, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: sink, Now: func() time.Time { return emmaReceivedAt }}, testSettings(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	hook := ts.URL + "/webhooks/emma/" + token
	bom := "\uFEFF"

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata/emma", tt.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			body := string(raw)
			if compactLayout.MatchString(body) || !strings.Contains(body, `": `) {
				t.Fatalf("testdata is not in json.dumps layout: %s", body)
			}
			var emmaTS string
			var env struct {
				Data struct {
					Timestamp string `json:"timestamp"`
				} `json:"data"`
			}
			if err := json.Unmarshal(raw, &env); err != nil {
				t.Fatal(err)
			}
			emmaTS = env.Data.Timestamp

			deliveries := []struct {
				name string
				req  *http.Request
				via  events.Delivery
			}{
				{"POST", post(t, hook, "application/json", body), events.DeliveryPOST},
				{"POST without content type", post(t, hook, "", body), events.DeliveryPOST},
				{"GET", get(t, withPayload(hook, body)), events.DeliveryGET},
				{"POST with byte-order mark", post(t, hook, "application/json", bom+body), events.DeliveryPOST},
				{"GET with byte-order mark", get(t, withPayload(hook, bom+body)), events.DeliveryGET},
				{"form field payload", post(t, hook, "application/x-www-form-urlencoded", url.Values{"payload": {body}}.Encode()), events.DeliveryPOST},
				{"curl -d (JSON under a form content type) with byte-order mark", post(t, hook, "application/x-www-form-urlencoded", bom+body), events.DeliveryPOST},
			}
			var id string
			for _, d := range deliveries {
				a := do(t, d.req)
				if a.status != 200 || a.body["status"] != "accepted" {
					t.Fatalf("%s: status %d %v", d.name, a.status, a.body)
				}
				sink.mu.Lock()
				ev := sink.events[len(sink.events)-1]
				sink.mu.Unlock()
				if a.body["event_id"] != ev.ID || id != "" && ev.ID != id {
					t.Fatalf("%s: event_id %v (event %s), want %s", d.name, a.body["event_id"], ev.ID, id)
				}
				id = ev.ID
				if ev.Delivery != d.via {
					t.Fatalf("%s: delivery %s", d.name, ev.Delivery)
				}
				if got := ev.Time().Format(time.RFC3339); got != tt.timestamp {
					t.Fatalf("%s: timestamp %s, want %s (Emma wrote %s)", d.name, got, tt.timestamp, emmaTS)
				}
				if ev.EmmaTimestamp() != emmaTS || ev.AccountID() != tt.account {
					t.Fatalf("%s: emma_timestamp %q account %d", d.name, ev.EmmaTimestamp(), ev.AccountID())
				}
				value, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				if d.via == events.DeliveryGET {
					value = bytes.Replace(value, []byte(`"delivery":"GET"`), []byte(`"delivery":"POST"`), 1)
				}
				checkGolden(t, filepath.Join("testdata/emma", tt.name+".golden.json"), value)
			}

			// The compact form of the same callback (Go's encoding: no
			// spaces, sorted keys, UTF-8 and HTML escapes) has the same id.
			var v any
			_ = json.Unmarshal(raw, &v)
			compact, _ := json.Marshal(v)
			a := do(t, post(t, hook, "application/json", string(compact)))
			if a.status != 200 || a.body["event_id"] != id {
				t.Fatalf("compact form %s: %v, want event_id %s", compact, a.body, id)
			}
		})
	}
}

// checkGolden compares a normalized value with its golden file, both
// indented, or rewrites the file with -update.
func checkGolden(t *testing.T, path string, value []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, value, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./receiver -run %s -update writes it)", err, t.Name())
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("normalized value differs from %s:\n%s\nwant\n%s", path, pretty.Bytes(), want)
	}
}

// TestAnswersSayWhatArrived: every 400 names what the sender sent, and
// what already worked (curl -d with raw JSON) keeps working.
func TestAnswersSayWhatArrived(t *testing.T) {
	sink := &recorder{}
	ts := newTestServer(t, nil, sink)
	hook := ts.URL + "/webhooks/emma/" + token
	const form = "application/x-www-form-urlencoded"
	bom := "\uFEFF"
	tests := []struct {
		name       string
		req        *http.Request
		status     int
		detail     string // the whole detail of a 400
		deadLetter bool
	}{
		{"JSON array body", post(t, hook, "application/json", `[{"event_name":"message_open"}]`), 400,
			"the body is not an Emma callback: a JSON array, not an object", true},
		{"JSON string body", post(t, hook, "application/json", `"message_open"`), 400,
			"the body is not an Emma callback: a JSON string, not an object", true},
		{"JSON number body", post(t, hook, "", `42`), 400,
			"the body is not an Emma callback: a JSON number, not an object", true},
		{"JSON null body", post(t, hook, "", `null`), 400,
			"the body is not an Emma callback: JSON null, not an object", true},
		{"not JSON", post(t, hook, "text/plain", `hello`), 400,
			"the body is not an Emma callback: not JSON: invalid character 'h' looking for beginning of value (at byte 1)", true},
		{"JSON array under a form content type", post(t, hook, form, `[{"event_name":"message_open"}]`), 400,
			"the body (JSON sent as application/x-www-form-urlencoded) is not an Emma callback: a JSON array, not an object", true},
		{"JSON array with BOM under a form content type", post(t, hook, form, bom+`[1]`), 400,
			"the body (JSON sent as application/x-www-form-urlencoded) is not an Emma callback: a JSON array, not an object", true},
		{"broken JSON under a form content type", post(t, hook, form, `{"event_name":`), 400,
			"the body (JSON sent as application/x-www-form-urlencoded) is not an Emma callback: not JSON: unexpected end of JSON input (at byte 14)", true},
		{"form without payload", post(t, hook, form, "other=1&token=x"), 400,
			"no payload: the body is a form (application/x-www-form-urlencoded) with 2 field(s), none named payload; send the callback's JSON in the form field payload, or as the body", false},
		{"form with an empty payload", post(t, hook, form, "payload=&x=1"), 400,
			"no payload: the form's payload field is empty", false},
		{"form neither form nor JSON", post(t, hook, form, "%zz"), 400,
			"the body is sent as application/x-www-form-urlencoded but is neither form data nor JSON; send the callback's JSON in the form field payload, or as the body", false},
		{"form field payload holding an array", post(t, hook, form, url.Values{"payload": {`[1]`}}.Encode()), 400,
			"the form field payload is not an Emma callback: a JSON array, not an object", true},
		{"GET payload holding a number", get(t, withPayload(hook, `42`)), 400,
			"the payload query parameter is not an Emma callback: a JSON number, not an object", true},
		{"body of only a byte-order mark", post(t, hook, "application/json", bom), 400,
			"no payload: send the JSON as the POST body or the payload query parameter", false},

		// What works.
		{"curl -d: JSON under a form content type", post(t, hook, form, openEvent), 200, "", false},
		{"curl -d with a byte-order mark", post(t, hook, form, bom+openEvent), 200, "", false},
		{"curl -d with a form-looking string inside the JSON", post(t, hook, form, strings.Replace(openEvent, `"Hi"`, `"a&payload=b"`, 1)), 200, "", false},
		{"JSON body with a byte-order mark", post(t, hook, "application/json", bom+openEvent), 200, "", false},
		{"GET payload with a byte-order mark", get(t, withPayload(hook, bom+openEvent)), 200, "", false},
		{"form field payload with a byte-order mark", post(t, hook, form, url.Values{"payload": {bom + openEvent}}.Encode()), 200, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink.mu.Lock()
			nDead, nEvents := len(sink.dead), len(sink.events)
			sink.mu.Unlock()
			a := do(t, tt.req)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %v", a.status, tt.status, a.body)
			}
			if tt.status != 200 && a.body["detail"] != tt.detail {
				t.Fatalf("detail\n %q\nwant\n %q", a.body["detail"], tt.detail)
			}
			sink.mu.Lock()
			defer sink.mu.Unlock()
			if got := len(sink.dead) - nDead; got != map[bool]int{true: 1}[tt.deadLetter] {
				t.Fatalf("%d dead letters, want dead letter %v", got, tt.deadLetter)
			}
			if tt.status == 200 {
				if len(sink.events) != nEvents+1 {
					t.Fatal("accepted but not published")
				}
				if ev := sink.events[len(sink.events)-1]; strings.Contains(tt.name, "form-looking") && ev.Payload.(*events.MessageOpen).Subject != "a&payload=b" {
					t.Fatalf("subject %q", ev.Payload.(*events.MessageOpen).Subject)
				}
			}
		})
	}
}

func TestDisagreeingAccountsAreLogged(t *testing.T) {
	logs := &syncBuffer{}
	cfg := DefaultConfig()
	cfg.Tokens = []string{token}
	sink := &recorder{}
	srv, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: sink}, telemetry.Settings{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	hook := ts.URL + "/webhooks/emma/" + token
	agree := `{"event_name": "member_add", "resource_url": "https://api.e2ma.net/1743199/members/1", "data": {"account_id": 1743199, "member_id": 1, "timestamp": "@D:2026-11-20T10:01:02"}}`
	if a := do(t, post(t, hook, "", agree)); a.status != 200 || strings.Contains(logs.String(), "resource_url_account_id") {
		t.Fatalf("agreeing accounts: %d, log %s", a.status, logs.String())
	}
	disagree := strings.Replace(agree, "api.e2ma.net/1743199/", "api.e2ma.net/999/", 1)
	if a := do(t, post(t, hook, "", disagree)); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	if ev := sink.events[1]; ev.AccountID() != 1743199 {
		t.Fatalf("account %d, want data's", ev.AccountID())
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, "resource_url_account_id") {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	if line["level"] != "WARN" || line["account_id"] != float64(1743199) || line["resource_url_account_id"] != float64(999) || line["event_id"] != sink.events[1].ID {
		t.Fatalf("warning %v in\n%s", line, logs.String())
	}
}
