package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

const exampleRoutes = `
routes:
  # every event on its own topic, and all of them on a firehose keyed by member
  - events: ["*"]
    topics: ["emma.{event}"]
  - events: ["*"]
    topics: ["emma.events"]
    key: member_id
  # engagement to analytics, as CloudEvents JSON
  - events: ["message_*"]
    topics: ["analytics.engagement"]
    content_mode: structured
  # one agency account gets its own topic
  - events: ["*"]
    accounts: [42]
    topics: ["emma.account.{account}"]
  # nobody wants member_update, except...
  - events: ["member_update"]
    drop: true
`

func mustParse(t *testing.T, y string) *Routes {
	t.Helper()
	r, err := ParseRoutes([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func topicsOf(ds []Destination) []string {
	var ts []string
	for _, d := range ds {
		ts = append(ts, d.Topic)
	}
	return ts
}

func TestRoutesMatch(t *testing.T) {
	r := mustParse(t, exampleRoutes)
	tests := []struct {
		event   string
		account int64
		want    []string
		dropped bool
	}{
		{"mailing_finish", 1, []string{"emma.mailing_finish", "emma.events"}, false},
		{"message_open", 1, []string{"emma.message_open", "emma.events", "analytics.engagement"}, false},
		{"message_share_click", 1, []string{"emma.message_share_click", "emma.events", "analytics.engagement"}, false},
		{"message_open", 42, []string{"emma.message_open", "emma.events", "analytics.engagement", "emma.account.42"}, false},
		{"member_add", 42, []string{"emma.member_add", "emma.events", "emma.account.42"}, false},
		{"member_update", 1, nil, true},
		{"member_update", 42, nil, true}, // a drop wins over every other match
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.event, tt.account), func(t *testing.T) {
			ds, dropped := r.Route(tt.event, tt.account, "emma."+tt.event)
			if dropped != tt.dropped || !reflect.DeepEqual(topicsOf(ds), tt.want) {
				t.Fatalf("Route = %v dropped %v, want %v dropped %v", topicsOf(ds), dropped, tt.want, tt.dropped)
			}
		})
	}
	ds, _ := r.Route("message_open", 1, "x")
	if ds[1].Key != "member_id" || ds[0].Key != KeyDefault || ds[2].ContentMode != ContentStructured || ds[0].ContentMode != ContentBinary {
		t.Fatalf("key and mode not carried: %+v", ds)
	}
}

func TestRoutesDefault(t *testing.T) {
	// No rule matches: the file's default, else the gateway's template.
	r := mustParse(t, "routes:\n  - events: [message_open]\n    topics: [opens]\n")
	if ds, _ := r.Route("member_add", 1, "emma.member_add"); !reflect.DeepEqual(topicsOf(ds), []string{"emma.member_add"}) {
		t.Fatalf("fallback %v", topicsOf(ds))
	}
	r = mustParse(t, "routes:\n  - events: [message_open]\n    topics: [opens]\ndefault:\n  topics: [\"emma.other.{event}\"]\n")
	if ds, _ := r.Route("member_add", 1, "emma.member_add"); !reflect.DeepEqual(topicsOf(ds), []string{"emma.other.member_add"}) {
		t.Fatalf("default %v", topicsOf(ds))
	}
	if ds, _ := r.Route("message_open", 1, "emma.message_open"); !reflect.DeepEqual(topicsOf(ds), []string{"opens"}) {
		t.Fatalf("a matching rule must win over the default: %v", topicsOf(ds))
	}
	r = mustParse(t, "default:\n  drop: true\nroutes:\n  - events: [member_add]\n    topics: [adds]\n")
	if _, dropped := r.Route("message_open", 1, "x"); !dropped {
		t.Fatal("a drop default must drop what no rule takes")
	}
}

func TestRoutesValidationReportsEveryProblem(t *testing.T) {
	bad := `
routes:
  - events: [mesage_open]
    topics: [ok]
  - events: ["[x"]
    topics: [ok]
  - events: ["zz_*"]
    topics: [ok]
  - events: ["*"]
  - events: ["*"]
    topics: [ok]
    drop: true
  - events: ["*"]
    topics: ["bad topic/{event}", "emma.{evnt}"]
  - events: ["*"]
    topics: [ok]
    key: email
    content_mode: json
  - events: ["*"]
    accounts: [0]
    topics: [ok]
  - topics: [ok]
`
	_, err := ParseRoutes([]byte(bad))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`routes[0]: unknown event "mesage_open"`,
		`routes[1]: event pattern "[x" is not a valid glob`,
		`routes[2]: event pattern "zz_*" matches no known event`,
		`routes[3]: no topics`,
		`routes[4]: a drop rule has no topics`,
		`routes[5]: topic "bad topic/{event}"`,
		`routes[5]: topic "emma.{evnt}"`,
		`routes[6]: key "email"`,
		`routes[6]: content_mode "json"`,
		`routes[7]: account id 0`,
		`routes[8]: no events`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	for _, y := range []string{"routs: []", "routes:\n  - events: [x]\n    topic: [a]\n", "", "default:\n  events: [\"*\"]\n  topics: [a]\n"} {
		if _, err := ParseRoutes([]byte(y)); err == nil {
			t.Errorf("%q: no error", y)
		}
	}
}

func TestRoutesTopicsCreatedAtStart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Routes = mustParse(t, exampleRoutes)
	ts := cfg.Topics()
	for _, want := range []string{"emma.message_open", "emma.events", "analytics.engagement", "emma.unrecognized", "emma.deadletter"} {
		if !contains(ts, want) {
			t.Errorf("topics lack %s: %v", want, ts)
		}
	}
	for _, t2 := range ts {
		if t2 == "emma.member_update" {
			t.Errorf("the topic of a dropped event would be created")
		}
		if strings.Contains(t2, "{") || strings.Contains(t2, "account") && t2 != "emma.account.42" {
			t.Errorf("a topic no listed account names would be created at start: %s", t2)
		}
	}
	// The rule lists its account: its one topic is known in advance.
	if !contains(ts, "emma.account.42") {
		t.Errorf("topics lack the listed account's emma.account.42: %v", ts)
	}
	if cfg.Routes.perAccount() {
		t.Error("routes whose {account} rules list their accounts are bounded by the cap")
	}
}

// TestUnlistedAccountTopicsHaveTheirFallbackAtStart: a rule naming
// {account} topics without accounts creates none at start, but the
// template topic of each event it matches, where copies beyond
// MaxAccountTopics go.
func TestUnlistedAccountTopicsHaveTheirFallbackAtStart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Routes = mustParse(t, "routes:\n  - events: [\"message_*\"]\n    topics: [\"acct.{account}\"]\n  - events: [\"*\"]\n    topics: [firehose]\n")
	if !cfg.Routes.perAccount() {
		t.Fatal("an unlisted {account} rule is not bounded")
	}
	ts := cfg.Topics()
	for _, want := range []string{"firehose", "emma.message_open", "emma.message_share_click"} {
		if !contains(ts, want) {
			t.Errorf("topics lack %s: %v", want, ts)
		}
	}
	for _, t2 := range ts {
		if strings.HasPrefix(t2, "acct.") || t2 == "emma.member_add" {
			t.Errorf("topic %s created at start", t2)
		}
	}
}

func TestStructuredRouteWritesACloudEventsEnvelope(t *testing.T) {
	t.Parallel() // its own broker on a free port
	e := startEmbedded(t)
	k := newSink(t, e.Addrs(), func(c *Config) {
		c.Routes = mustParse(t, "routes:\n  - events: [\"message_*\"]\n    topics: [analytics]\n    content_mode: structured\n    key: mailing_id\n")
	})
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := testEvent(t)
	if err := k.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.Addrs(), Topic: "analytics", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(m.Value, &env); err != nil {
		t.Fatal(err)
	}
	if string(m.Key) != "3" || env["specversion"] != "1.0" || env["id"] != ev.ID || env["type"] != "com.myemma.message_open" ||
		env["source"] != "https://api.e2ma.net/1" || env["subject"] != "member/6160010079" ||
		!strings.HasSuffix(env["dataschema"].(string), "/message_open.json") || env["data"].(map[string]any)["event_id"] != ev.ID {
		t.Fatalf("key %s envelope %v", m.Key, env)
	}
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	if h["content-type"] != kafkaevents.ContentTypeStructured || h["traceparent"] == "" || h[kafkaevents.HeaderID] != "" {
		t.Fatalf("headers %v", h)
	}
	got, err := kafkaevents.Decode(m)
	if err != nil || got.ID != ev.ID || got.Name != "message_open" {
		t.Fatalf("kafkaevents.Decode: %v %+v", err, got)
	}
}
