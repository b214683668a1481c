package schemas_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/schemas"
	"github.com/emma-gateway/emma-gateway/schemas/internal/schemagen"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// TestCommittedFilesAreGenerated is the drift test: the committed files
// must be exactly what the Go types generate, and a difference that removes
// or retypes a field is reported as breaking.
func TestCommittedFilesAreGenerated(t *testing.T) {
	generated, err := schemagen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(generated) != len(events.Types())+4 {
		t.Fatalf("%d files generated, want one per event type + unrecognized, deadletter, headers and asyncapi", len(generated))
	}
	if err := schemagen.Drift(schemas.FS(), generated); err != nil {
		t.Fatal(err)
	}
}

func readCommitted(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The drift test's comparison, shown on schemas changed the way a careless
// edit of events/ would change them (rather than by editing events/).
func TestDriftDetectsChangedGoTypes(t *testing.T) {
	messageOpen, _ := events.Lookup("message_open")
	// A field added to MessageOpen without regenerating.
	type grown struct {
		events.MessageOpen
		Campaign *string `json:"campaign"`
	}
	added, err := schemagen.PayloadSchema("message_open", messageOpen.Description, reflect.TypeFor[grown](), true)
	if err != nil {
		t.Fatal(err)
	}
	// A field removed from MessageClick (link_id) and regenerated.
	type shrunk struct {
		events.Base
		MemberID  events.ID `json:"member_id"`
		MailingID events.ID `json:"mailing_id"`
		Subject   string    `json:"subject"`
	}
	removed, err := schemagen.PayloadSchema("message_click", "", reflect.TypeFor[shrunk](), true)
	if err != nil {
		t.Fatal(err)
	}
	// mailing_id retyped from an id to a string.
	type retyped struct {
		events.Base
		MailingID string `json:"mailing_id"`
		Subject   string `json:"subject"`
	}
	retypedSchema, err := schemagen.PayloadSchema("mailing_finish", "", reflect.TypeFor[retyped](), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		file     string
		schema   *schemagen.Schema
		want     string
		breaking bool
	}{
		{"field added without regenerating", "message_open.json", added, "message_open.json differs", false},
		{"field removed", "message_click.json", removed, ".link_id: removed", true},
		{"field retyped", "mailing_finish.json", retypedSchema, `.mailing_id: type changed from "integer" to "string"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			generated, err := schemagen.Generate()
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.MarshalIndent(tc.schema, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			generated[tc.file] = append(b, '\n')
			err = schemagen.Drift(schemas.FS(), generated)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Drift = %v, want an error with %q", err, tc.want)
			}
			// go generate refuses to write a breaking change (the generator
			// runs Compatible against the committed file first).
			if err := schemagen.Compatible(readCommitted(t, tc.file), generated[tc.file]); (err != nil) != tc.breaking {
				t.Fatalf("Compatible = %v, want breaking %v", err, tc.breaking)
			}
		})
	}
	// A schema file that is no longer generated (an event type removed).
	generated, err := schemagen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	delete(generated, "group_update.json")
	if err := schemagen.Drift(schemas.FS(), generated); err == nil || !strings.Contains(err.Error(), "group_update.json is committed but no longer generated") {
		t.Fatalf("Drift = %v", err)
	}
}

// TestCompatibleAllowsOnlyAdditions edits the committed member_add schema
// directly, the way a hand edit or a generator change could.
func TestCompatibleAllowsOnlyAdditions(t *testing.T) {
	committed := readCommitted(t, "member_add.json")
	for _, tc := range []struct {
		name   string
		edit   func(s map[string]any)
		breaks string // "" when compatible
	}{
		{"unchanged", func(map[string]any) {}, ""},
		{"property added", func(s map[string]any) {
			props(s)["campaign"] = map[string]any{"type": "string"}
			s["required"] = append(s["required"].([]any), "campaign")
		}, ""},
		{"description changed", func(s map[string]any) { s["description"] = "other words" }, ""},
		{"property removed", func(s map[string]any) { delete(props(s), "signup_form_id") }, ".signup_form_id: removed"},
		{"integer to string", func(s map[string]any) { prop(s, "member_id")["type"] = "string" }, ".member_id: type changed"},
		{"made nullable", func(s map[string]any) { prop(s, "member_id")["type"] = []any{"integer", "null"} }, ".member_id: type changed"},
		{"format changed", func(s map[string]any) { prop(s, "timestamp")["format"] = "date" }, ".timestamp: format changed"},
		{"items retyped", func(s map[string]any) { prop(s, "group_ids")["items"] = map[string]any{"type": "string"} }, ".group_ids[]: type changed"},
		{"no longer required", func(s map[string]any) {
			s["required"] = slices.DeleteFunc(s["required"].([]any), func(v any) bool { return v == "member_id" })
		}, ".member_id: no longer required"},
		{"event name changed", func(s map[string]any) { prop(s, "event_name")["const"] = "member_added" }, ".event_name: const changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s map[string]any
			if err := json.Unmarshal(committed, &s); err != nil {
				t.Fatal(err)
			}
			tc.edit(s)
			next, _ := json.Marshal(s)
			err := schemagen.Compatible(committed, next)
			if tc.breaks == "" && err != nil {
				t.Fatalf("compatible change refused: %v", err)
			}
			if tc.breaks != "" && (err == nil || !strings.Contains(err.Error(), tc.breaks)) {
				t.Fatalf("Compatible = %v, want %q", err, tc.breaks)
			}
		})
	}
}

func props(s map[string]any) map[string]any { return s["properties"].(map[string]any) }

func prop(s map[string]any, name string) map[string]any { return props(s)[name].(map[string]any) }

// compile compiles the committed schema called name with format assertions
// on (date-time, uri), resolving $ids to the embedded files.
func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(readCommitted(t, name+".json")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(schemas.URL(name), doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(schemas.URL(name))
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, value []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(v)
}

// goldenMessage is a golden file of the end-to-end tests: a real message the
// gateway produced.
type goldenMessage struct {
	Topic   string            `json:"topic"`
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
	Value   json.RawMessage   `json:"value"`
}

func readGolden(t *testing.T) map[string]goldenMessage {
	t.Helper()
	files, err := filepath.Glob("../cmd/emma-gateway/testdata/golden/*.json")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]goldenMessage{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var g goldenMessage
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = g
	}
	if len(out) != len(events.Types())+1 {
		t.Fatalf("%d golden files, want one per event type + unrecognized", len(out))
	}
	return out
}

// TestGoldenMessagesValidate validates the value and headers of every golden
// message (real messages produced by the end-to-end tests) against the
// schema its ce_dataschema names, and checks that the value has no field
// the schema does not declare.
func TestGoldenMessagesValidate(t *testing.T) {
	headers := compile(t, schemas.CloudEventsHeaders)
	for name, g := range readGolden(t) {
		t.Run(name, func(t *testing.T) {
			if g.Headers[kafkaevents.HeaderDataSchema] != schemas.URL(name) {
				t.Fatalf("ce_dataschema = %q, want %q", g.Headers[kafkaevents.HeaderDataSchema], schemas.URL(name))
			}
			hb, _ := json.Marshal(g.Headers)
			if err := validate(t, headers, hb); err != nil {
				t.Fatalf("headers: %v", err)
			}
			if err := validate(t, compile(t, name), g.Value); err != nil {
				t.Fatalf("value: %v", err)
			}
			var schema struct {
				Properties map[string]json.RawMessage `json:"properties"`
			}
			var value map[string]json.RawMessage
			if err := json.Unmarshal(readCommitted(t, name+".json"), &schema); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(g.Value, &value); err != nil {
				t.Fatal(err)
			}
			for k := range value {
				if _, ok := schema.Properties[k]; !ok {
					t.Errorf("value field %s is not in the schema", k)
				}
			}
		})
	}
}

// TestBrokenValuesFail breaks a real message_open value in each way a
// consumer would trip on, and expects the schema to refuse it.
func TestBrokenValuesFail(t *testing.T) {
	golden := readGolden(t)
	for _, tc := range []struct {
		name   string
		schema string
		edit   func(v map[string]any)
	}{
		{"id as a string", "message_open", func(v map[string]any) { v["member_id"] = "6160010079" }},
		{"id negative", "message_open", func(v map[string]any) { v["member_id"] = -1 }},
		{"id fractional", "message_open", func(v map[string]any) { v["mailing_id"] = 1.5 }},
		{"required field missing", "message_open", func(v map[string]any) { delete(v, "mailing_id") }},
		{"documented timestamp null", "message_open", func(v map[string]any) { v["timestamp"] = nil }},
		{"timestamp not RFC 3339", "message_open", func(v map[string]any) { v["timestamp"] = "@D:2017-12-21T11:01:11" }},
		{"another event's name", "message_open", func(v map[string]any) { v["event_name"] = "message_click" }},
		{"unknown delivery", "message_open", func(v map[string]any) { v["delivery"] = "PUT" }},
		{"event_id not a hash", "message_open", func(v map[string]any) { v["event_id"] = "abc" }},
		{"empty extra", "message_open", func(v map[string]any) { v["extra"] = map[string]any{} }},
		{"group ids as strings", "member_add", func(v map[string]any) { v["group_ids"] = []any{"3065183"} }},
		{"known name on the unrecognized topic", "unrecognized", func(v map[string]any) { v["event_name"] = "message_open" }},
		{"lenient field of the wrong type", "member_status_update", func(v map[string]any) { v["status"] = 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := compile(t, tc.schema)
			var v map[string]any
			if err := json.Unmarshal(golden[tc.schema].Value, &v); err != nil {
				t.Fatal(err)
			}
			ok, _ := json.Marshal(v)
			if err := validate(t, s, ok); err != nil {
				t.Fatalf("the unbroken value fails: %v", err)
			}
			tc.edit(v)
			broken, _ := json.Marshal(v)
			if err := validate(t, s, broken); err == nil {
				t.Fatalf("%s validates", broken)
			}
		})
	}
	// Headers: ce_dataschema is required, and must name a schema URL.
	s := compile(t, schemas.CloudEventsHeaders)
	for _, edit := range []func(h map[string]string){
		func(h map[string]string) { delete(h, kafkaevents.HeaderDataSchema) },
		func(h map[string]string) { h[kafkaevents.HeaderDataSchema] = "message_open" },
		func(h map[string]string) { h[kafkaevents.HeaderSpecVersion] = "0.3" },
		func(h map[string]string) { h[kafkaevents.HeaderSubject] = "member/x" },
	} {
		h := map[string]string{}
		for k, v := range golden["message_open"].Headers {
			h[k] = v
		}
		edit(h)
		b, _ := json.Marshal(h)
		if err := validate(t, s, b); err == nil {
			t.Errorf("headers %s validate", b)
		}
	}
}

// TestDeadLetterHeadersSchema validates the headers of both kinds of dead
// letter, as sinks writes them, and refuses a broken one.
func TestDeadLetterHeadersSchema(t *testing.T) {
	s := compile(t, schemas.DeadLetter)
	for _, tc := range []struct {
		headers map[string]string
		valid   bool
	}{
		{map[string]string{"emma_reason": "invalid", "emma_detail": "invalid message_open event: member_id must be an integer", "emma_delivery": "GET", "emma_content_type": "application/octet-stream", "emma_received_at": "2026-11-26T12:00:00Z", "emma_event_name": "message_open", "emma_errors": `[{"field":"member_id","rule":"type","message":"must be an integer"}]`}, true},
		{map[string]string{"emma_reason": "malformed", "emma_detail": "malformed callback: not a JSON object", "emma_delivery": "POST", "emma_content_type": "application/json", "emma_received_at": "2026-11-26T12:00:00.5Z"}, true},
		{map[string]string{"emma_reason": "lost", "emma_detail": "x", "emma_delivery": "POST", "emma_content_type": "text/plain", "emma_received_at": "2026-11-26T12:00:00Z"}, false},
		{map[string]string{"emma_reason": "invalid", "emma_detail": "x", "emma_delivery": "POST", "emma_content_type": "text/plain", "emma_received_at": "2026-11-26T12:00:00Z", "emma_errors": `[{"field":1}]`}, false},
		{map[string]string{"emma_reason": "malformed", "emma_delivery": "POST", "emma_content_type": "text/plain", "emma_received_at": "2026-11-26T12:00:00Z"}, false},
	} {
		b, _ := json.Marshal(tc.headers)
		if err := validate(t, s, b); (err == nil) != tc.valid {
			t.Errorf("%s: valid = %v, want %v (%v)", b, err == nil, tc.valid, err)
		}
	}
}

// TestAsyncAPINamesEveryTopic parses the AsyncAPI document and checks that
// its Kafka channels are exactly the topics the default gateway writes, that
// each message's payload and headers name a committed schema, and that its
// internal references resolve.
func TestAsyncAPINamesEveryTopic(t *testing.T) {
	var doc map[string]any
	if err := yaml.Unmarshal(readCommitted(t, schemas.AsyncAPI), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi = %v", doc["asyncapi"])
	}
	var topics []string
	for id, ch := range doc["channels"].(map[string]any) {
		ch := ch.(map[string]any)
		server := ch["servers"].([]any)[0].(map[string]any)["$ref"]
		switch server {
		case "#/servers/kafka":
			topics = append(topics, ch["address"].(string))
		case "#/servers/http":
			if ch["address"] != "/webhooks/emma" {
				t.Errorf("channel %s: address %v", id, ch["address"])
			}
		default:
			t.Errorf("channel %s: server %v", id, server)
		}
	}
	want := sinks.DefaultConfig().Topics()
	slices.Sort(topics)
	slices.Sort(want)
	if !slices.Equal(topics, want) {
		t.Fatalf("AsyncAPI topics\n%v\nwant\n%v", topics, want)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				refs = append(refs, r)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	files := 0
	for _, r := range refs {
		if file, ok := strings.CutPrefix(r, "./"); ok {
			files++
			if _, err := fs.Stat(schemas.FS(), file); err != nil {
				t.Errorf("$ref %s: %v", r, err)
			}
			continue
		}
		var at any = doc
		for _, part := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
			m, _ := at.(map[string]any)
			at = m[part]
		}
		if at == nil {
			t.Errorf("$ref %s does not resolve", r)
		}
	}
	if files < len(events.Types())*2 {
		t.Fatalf("%d schema file references", files)
	}
}

func TestHandlerServesTheFiles(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("", schemas.Handler()))
	defer srv.Close()
	get := func(path string) (int, string, []byte) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), b
	}
	status, ct, body := get("/schemas/")
	var idx struct {
		Schemas []struct{ Name, Path, ID string }
	}
	if err := json.Unmarshal(body, &idx); status != 200 || ct != "application/json" || err != nil {
		t.Fatalf("index: %d %s %v %s", status, ct, err, body)
	}
	if len(idx.Schemas) != len(events.Types())+3 || len(schemas.Names()) != len(idx.Schemas) {
		t.Fatalf("index lists %d schemas", len(idx.Schemas))
	}
	for _, s := range idx.Schemas {
		status, ct, body := get(s.Path)
		var doc struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(body, &doc); status != 200 || ct != "application/schema+json" || err != nil || doc.ID != s.ID || s.ID != schemas.URL(s.Name) {
			t.Fatalf("%s: %d %s %v $id %q, index id %q", s.Path, status, ct, err, doc.ID, s.ID)
		}
	}
	if status, ct, body := get("/schemas/asyncapi.yaml"); status != 200 || ct != "application/yaml" || !bytes.Equal(body, readCommitted(t, schemas.AsyncAPI)) {
		t.Fatalf("asyncapi: %d %s", status, ct)
	}
	for _, path := range []string{"/schemas/nope.json", "/schemas/../go.mod", "/schemas/internal/gen"} {
		if status, _, _ := get(path); status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, status)
		}
	}
}
