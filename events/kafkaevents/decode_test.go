package kafkaevents

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
)

// goldenMessage reads a real message the gateway produced (the end-to-end
// tests' golden files) back into a kafka.Message.
func goldenMessage(t *testing.T, name string) kafka.Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../cmd/emma-gateway/testdata/golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Topic   string            `json:"topic"`
		Key     string            `json:"key"`
		Headers map[string]string `json:"headers"`
		Value   json.RawMessage   `json:"value"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	m := kafka.Message{Topic: g.Topic, Key: []byte(g.Key), Value: g.Value}
	keys := make([]string, 0, len(g.Headers))
	for k := range g.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(g.Headers[k])})
	}
	return m
}

func TestDecodeGivesTheTypedEvent(t *testing.T) {
	for _, tc := range []struct {
		golden  string
		payload any
		check   func(t *testing.T, ev *events.Event)
	}{
		{"message_open", &events.MessageOpen{}, func(t *testing.T, ev *events.Event) {
			p := ev.Payload.(*events.MessageOpen)
			if p.MemberID == 0 || p.MailingID == 0 || p.Subject == "" || p.Timestamp == nil {
				t.Fatalf("payload %+v", p)
			}
		}},
		{"member_add", &events.MemberAdd{}, func(t *testing.T, ev *events.Event) {
			p := ev.Payload.(*events.MemberAdd)
			if p.MemberID != 1160010079 || p.AccountID != 1743199 || !reflect.DeepEqual(p.GroupIDs, []events.ID{3065183}) || p.SignupFormID != nil {
				t.Fatalf("payload %+v", p)
			}
			if ev.ResourceURL != "https://api.e2ma.net/1743199/members/1160010079" || ev.Delivery != events.DeliveryPOST {
				t.Fatalf("event %+v", ev)
			}
			// Emma's own string travels beside the UTC timestamp.
			if ev.EmmaTimestamp() != "@D:2017-12-21T11:01:11" || p.Timestamp.Emma() != ev.EmmaTimestamp() {
				t.Fatalf("emma_timestamp %q", ev.EmmaTimestamp())
			}
		}},
		{"member_status_update", &events.MemberStatusUpdate{}, func(t *testing.T, ev *events.Event) {
			p := ev.Payload.(*events.MemberStatusUpdate)
			if p.Status == nil || *p.Status != "opt-out" || string(ev.Extra["old_status"]) != `"active"` {
				t.Fatalf("payload %+v extra %v", p, ev.Extra)
			}
		}},
		{"unrecognized", &events.Unrecognized{}, func(t *testing.T, ev *events.Event) {
			if ev.Recognized() || ev.Name != "member_birthday" || string(ev.Extra["member_id"]) != "6160010079" {
				t.Fatalf("event %+v", ev)
			}
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			m := goldenMessage(t, tc.golden)
			ev, err := Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.TypeOf(ev.Payload) != reflect.TypeOf(tc.payload) {
				t.Fatalf("payload %T, want %T", ev.Payload, tc.payload)
			}
			// The message's key and CloudEvents attributes agree with the
			// decoded event.
			h := Headers{&m.Headers}
			if ev.ID != h.Get("ce_id") || ev.Key() != string(m.Key) || ev.Subject() != h.Get("ce_subject") {
				t.Fatalf("id %s key %s subject %s, message %v", ev.ID, ev.Key(), ev.Subject(), m.Headers)
			}
			again, _ := json.Marshal(ev)
			var a, b any
			_ = json.Unmarshal(again, &a)
			_ = json.Unmarshal(m.Value, &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("re-encoded %s\nwant %s", again, m.Value)
			}
			tc.check(t, ev)
		})
	}
}

func TestDecodeEveryGoldenMessage(t *testing.T) {
	files, _ := filepath.Glob("../../cmd/emma-gateway/testdata/golden/*.json")
	if len(files) != len(events.Types())+1 {
		t.Fatalf("%d golden files", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f[:len(f)-len(".json")])
		ev, err := Decode(goldenMessage(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want, _ := events.Lookup(name); ev.Type.Name != want.Name {
			t.Errorf("%s: decoded as %q", name, ev.Type.Name)
		}
	}
}

func TestDecodeStructuredMode(t *testing.T) {
	m := goldenMessage(t, "message_open")
	m.Value = []byte(`{"specversion":"1.0","id":"x","data":` + string(m.Value) + `}`)
	m.Headers = []kafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	ev, err := Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ev.Payload.(*events.MessageOpen); !ok {
		t.Fatalf("payload %T", ev.Payload)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    kafka.Message
		want error
	}{
		{"dead letter", kafka.Message{Topic: "emma.deadletter", Value: []byte("not json"), Headers: []kafka.Header{{Key: "emma_reason", Value: []byte("malformed")}}}, ErrDeadLetter},
		{"not JSON", kafka.Message{Topic: "emma.message_open", Value: []byte("nope")}, events.ErrNotNormalized},
		{"no event_name", kafka.Message{Topic: "emma.message_open", Value: []byte(`{"account_id":1}`)}, events.ErrNotNormalized},
		{"structured without data", kafka.Message{Topic: "emma.events", Value: []byte(`{"specversion":"1.0"}`), Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}}, events.ErrNotNormalized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.m); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
