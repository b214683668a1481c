package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
	"github.com/emma-gateway/emma-gateway/sinks"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const testToken = "e2e-token-0123456789abcdef"

// fixedNow is the receive time of every callback in these tests, so that
// received_at is stable in the golden files.
var fixedNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testGateway runs the real gateway (Echo server, kafka-go sink, embedded
// kfake broker) on loopback ports chosen by the system.
type testGateway struct {
	*gateway.Gateway
	url     string
	brokers []string
	broker  *devkafka.Broker // nil when the test brings its own cluster
	kafka   *sinks.Kafka
	logs    *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startTestGateway(t *testing.T, mutate func(*gateway.Config), settings ...func(*telemetry.Settings)) *testGateway {
	t.Helper()
	return startTestGatewayWith(t, nil, mutate, settings...)
}

// startTestGatewayWith starts a gateway configured as serve would be by
// args (and no environment), on loopback ports the system chooses, then
// changed by mutate. A test that names brokers in args brings its own
// cluster; otherwise the gateway starts its embedded one.
func startTestGatewayWith(t *testing.T, args []string, mutate func(*gateway.Config), settings ...func(*telemetry.Settings)) *testGateway {
	t.Helper()
	args = append([]string{"--addr", "127.0.0.1:0", "--tokens", testToken, "--embedded-kafka-addr", "127.0.0.1:0", "--shutdown-timeout", "5s"}, args...)
	cfg, err := gateway.Load(args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = func() time.Time { return fixedNow }
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &lockedBuffer{}
	tp := sdktrace.NewTracerProvider()
	set := telemetry.Settings{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), TracerProvider: tp}
	for _, f := range settings {
		f(&set)
	}
	g, err := gateway.Start(context.Background(), cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Stop()
		_ = tp.Shutdown(context.Background())
		if t.Failed() {
			t.Log("gateway log:\n" + logs.String())
		}
	})
	return &testGateway{Gateway: g, url: g.URL(), brokers: g.Config().Kafka.Brokers, broker: g.Broker(), kafka: g.Kafka(), logs: logs}
}

// callback sends payload by POST (a JSON body) or GET (the payload query
// parameter) and returns the status and answer.
func (tg *testGateway) callback(t *testing.T, method, payload string) (int, map[string]any) {
	t.Helper()
	target := tg.url + "/webhooks/emma/" + testToken
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, target+"?payload="+url.QueryEscape(payload), nil)
	} else {
		req, err = http.NewRequest(method, target, strings.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("answer is not JSON: %s", b)
	}
	return res.StatusCode, body
}

// consume reads every message on topic, across its partitions, with a
// kafka-go reader, and returns them in offset order per partition.
func consume(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, p := range md.Topics[0].Partitions {
		req[topic] = append(req[topic], kafka.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		if po.LastOffset <= 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: po.Partition, MaxWait: 100 * time.Millisecond})
		for i := int64(0); i < po.LastOffset; i++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d offset %d: %v", topic, po.Partition, i, err)
			}
			out = append(out, m)
		}
		r.Close()
	}
	return out
}

// golden is what the golden files hold for one callback: the Kafka message
// the gateway produced for it by POST.
type golden struct {
	Topic   string            `json:"topic"`
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
	Value   json.RawMessage   `json:"value"`
}

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`)

func headerMap(t *testing.T, m kafka.Message) map[string]string {
	t.Helper()
	h := map[string]string{}
	for _, kv := range m.Headers {
		if _, dup := h[kv.Key]; dup {
			t.Fatalf("header %s twice", kv.Key)
		}
		h[kv.Key] = string(kv.Value)
	}
	return h
}

// TestEveryEventTypeByPostAndGetLandsOnKafka is the contract test: for each
// of the 19 event types and an unrecognized one, a callback sent by POST and
// by GET is answered 200 and lands on its topic with the key, headers and
// normalized value of its golden file; both copies share one event_id.
func TestEveryEventTypeByPostAndGetLandsOnKafka(t *testing.T) {
	t.Parallel()
	// The GET is the POST's duplicate: with the dedup window on it would be
	// answered without a publish (TestDuplicateCallbackIsPublishedOnce),
	// and this test reads both copies.
	tg := startTestGateway(t, func(c *gateway.Config) { c.Dedup.Window = 0 })
	files, err := filepath.Glob("testdata/callbacks/*.json")
	if err != nil || len(files) != 20 {
		t.Fatalf("want 20 callbacks (19 types + 1 unrecognized), found %d: %v", len(files), err)
	}
	covered := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			payload, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []any
			for _, method := range []string{http.MethodPost, http.MethodGet} {
				status, body := tg.callback(t, method, string(payload))
				if status != http.StatusOK || body["status"] != "accepted" {
					t.Fatalf("%s: %d %v", method, status, body)
				}
				ids = append(ids, body["event_id"])
			}
			if ids[0] != ids[1] {
				t.Fatalf("POST and GET ids differ: %v", ids)
			}
			var envelope struct {
				EventName string `json:"event_name"`
			}
			_ = json.Unmarshal(payload, &envelope)
			topic := "emma." + envelope.EventName
			if name == "unrecognized" {
				topic = "emma.unrecognized"
			}
			covered[envelope.EventName] = true
			msgs := consume(t, tg.brokers, topic)
			if len(msgs) != 2 {
				t.Fatalf("%s holds %d messages, want 2", topic, len(msgs))
			}
			sort.Slice(msgs, func(i, j int) bool { return msgs[i].Offset < msgs[j].Offset })
			if msgs[0].Partition != msgs[1].Partition {
				t.Fatalf("the two copies landed on partitions %d and %d: the key must pin one", msgs[0].Partition, msgs[1].Partition)
			}
			var got [2]golden
			for i, m := range msgs {
				h := headerMap(t, m)
				if !traceparentRE.MatchString(h["traceparent"]) {
					t.Fatalf("traceparent %q", h["traceparent"])
				}
				delete(h, "traceparent")
				got[i] = golden{Topic: m.Topic, Key: string(m.Key), Headers: h, Value: m.Value}
			}
			// Copy 0 is the POST: it must match the golden file.
			path := filepath.Join("testdata/golden", name+".json")
			if *update {
				writeGolden(t, path, got[0])
			}
			want := readGolden(t, path)
			if got[0].Topic != want.Topic || got[0].Key != want.Key || !reflect.DeepEqual(got[0].Headers, want.Headers) {
				t.Fatalf("message\n got %s %q %v\nwant %s %q %v", got[0].Topic, got[0].Key, got[0].Headers, want.Topic, want.Key, want.Headers)
			}
			assertJSONEqual(t, got[0].Value, want.Value)
			// Copy 1 is the GET: the same but for delivery.
			var v map[string]any
			_ = json.Unmarshal(got[1].Value, &v)
			if v["delivery"] != "GET" {
				t.Fatalf("GET copy has delivery %v", v["delivery"])
			}
			v["delivery"] = "POST"
			b, _ := json.Marshal(v)
			assertJSONEqual(t, b, want.Value)
			if got[1].Key != want.Key || !reflect.DeepEqual(got[1].Headers, want.Headers) {
				t.Fatalf("GET copy: key %q headers %v", got[1].Key, got[1].Headers)
			}
			if v["event_id"] != ids[0] || want.Headers["ce_id"] != ids[0] {
				t.Fatalf("event_id %v, ce_id %v, answered %v", v["event_id"], want.Headers["ce_id"], ids[0])
			}
		})
	}
	for _, typ := range events.Types() {
		if !covered[typ.Name] {
			t.Errorf("no callback in testdata for %s", typ.Name)
		}
	}
}

// TestDuplicateCallbackIsPublishedOnce: with the default dedup window, the
// same callback by POST and again by GET is answered 200 both times, the
// second with the same event_id and "duplicate": true, and Kafka holds it
// once.
func TestDuplicateCallbackIsPublishedOnce(t *testing.T) {
	tg := startTestGateway(t, nil)
	payload, err := os.ReadFile("testdata/callbacks/message_open.json")
	if err != nil {
		t.Fatal(err)
	}
	var answers []map[string]any
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodPost} {
		status, body := tg.callback(t, method, string(payload))
		if status != http.StatusOK || body["status"] != "accepted" {
			t.Fatalf("%s: %d %v", method, status, body)
		}
		answers = append(answers, body)
	}
	if answers[0]["duplicate"] != nil || answers[1]["duplicate"] != true || answers[2]["duplicate"] != true ||
		answers[1]["event_id"] != answers[0]["event_id"] || answers[2]["event_id"] != answers[0]["event_id"] {
		t.Fatalf("answers %v", answers)
	}
	if msgs := consume(t, tg.brokers, "emma.message_open"); len(msgs) != 1 {
		t.Fatalf("emma.message_open holds %d messages, want 1", len(msgs))
	}
	if !strings.Contains(tg.logs.String(), `"outcome":"duplicate"`) {
		t.Fatal("no log line with outcome duplicate")
	}
}

func TestGoldenValuesKeepLargeIDsTimesAndExtras(t *testing.T) {
	// The golden files are the contract; check what they promise so that a
	// careless -update cannot weaken it.
	want := map[string][]string{
		"message_click.json":        {`"member_id":6160010079`, `"link_id":7000000123`, `"timestamp":"2026-11-20T10:02:03Z"`, `"extra":{"link_url":"https://example.com/sale"}`},
		"member_add.json":           {`"timestamp":"2017-12-21T17:01:11Z"`, `"emma_timestamp":"@D:2017-12-21T11:01:11"`, `"signup_form_id":null`, `"resource_url":"https://api.e2ma.net/1743199/members/1160010079"`},
		"member_optout.json":        {`"member_id":6160010079`},
		"group_delete.json":         {`"member_group_id":4300000003`},
		"member_status_update.json": {`"status":"opt-out"`, `"extra":{"old_status":"active"}`},
		"unrecognized.json":         {`"event_name":"member_birthday"`, `"member_id":6160010079`, `"score":0.5`},
	}
	for file, parts := range want {
		g := readGolden(t, filepath.Join("testdata/golden", file))
		var compact bytes.Buffer
		if err := json.Compact(&compact, g.Value); err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			if !strings.Contains(compact.String(), p) {
				t.Errorf("%s: value lacks %s\n%s", file, p, compact.String())
			}
		}
	}
}

func TestRejectedCallbacksLandOnDeadLetterTopic(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, nil)
	invalid := `{"event_name":"message_open","data":{"account_id":1743199,"member_id":"12x"}}`
	status, body := tg.callback(t, http.MethodGet, invalid)
	if status != http.StatusUnprocessableEntity || len(body["errors"].([]any)) != 3 {
		t.Fatalf("invalid: %d %v", status, body)
	}
	status, _ = tg.callback(t, http.MethodPost, `not json`)
	if status != http.StatusBadRequest {
		t.Fatalf("malformed: %d", status)
	}
	msgs := consume(t, tg.brokers, "emma.deadletter")
	if len(msgs) != 2 {
		t.Fatalf("dead letters: %d", len(msgs))
	}
	byReason := map[string]kafka.Message{}
	for _, m := range msgs {
		byReason[headerMap(t, m)["emma_reason"]] = m
	}
	inv, mal := byReason["invalid"], byReason["malformed"]
	h := headerMap(t, inv)
	if string(inv.Value) != invalid || h["emma_delivery"] != "GET" || h["emma_event_name"] != "message_open" || !strings.Contains(h["emma_errors"], `"member_id"`) {
		t.Fatalf("invalid dead letter %s %v", inv.Value, h)
	}
	h = headerMap(t, mal)
	if string(mal.Value) != "not json" || h["emma_delivery"] != "POST" || h["emma_content_type"] != "application/json" {
		t.Fatalf("malformed dead letter %s %v", mal.Value, h)
	}
	for _, m := range msgs {
		if bytes.Contains(m.Value, []byte(testToken)) || strings.Contains(headersText(m), testToken) {
			t.Fatal("a dead letter carries the token")
		}
	}
}

func headersText(m kafka.Message) string {
	var b strings.Builder
	for _, h := range m.Headers {
		b.WriteString(h.Key + "=" + string(h.Value) + "\n")
	}
	return b.String()
}

func TestTopicsAreCreatedAtStart(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, func(c *gateway.Config) { c.Kafka.Partitions = 2 })
	client := &kafka.Client{Addr: kafka.TCP(tg.brokers...)}
	md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: tg.kafka.Topics()})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 21 {
		t.Fatalf("%d topics, want 19 event topics + unrecognized + deadletter", len(md.Topics))
	}
	for _, topic := range md.Topics {
		if topic.Error != nil || len(topic.Partitions) != 2 {
			t.Errorf("%s: %v, %d partitions", topic.Name, topic.Error, len(topic.Partitions))
		}
	}
	res, err := http.Get(tg.url + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", err, res)
	}
	res.Body.Close()
}

func TestLogsNeverCarryTokenOrPayload(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, nil)
	payload := `{"event_name":"message_open","data":{"account_id":1,"member_id":2,"mailing_id":3,"subject":"SECRET-SUBJECT-TEXT","timestamp":"@D:2026-01-01T00:00:00"}}`
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		if status, _ := tg.callback(t, m, payload); status != 200 {
			t.Fatalf("%s: %d", m, status)
		}
	}
	tg.callback(t, http.MethodGet, strings.Replace(payload, `"member_id":2`, `"member_id":"x"`, 1))
	logs := tg.logs.String()
	if !strings.Contains(logs, `"outcome":"accepted"`) || !strings.Contains(logs, `"outcome":"invalid"`) {
		t.Fatalf("the access log lacks the requests:\n%s", logs)
	}
	for _, secret := range []string{testToken, "SECRET-SUBJECT-TEXT", "payload="} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
}

func readGolden(t *testing.T, path string) golden {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s ./cmd/emma-gateway -update to create it)", err, t.Name())
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return g
}

func writeGolden(t *testing.T, path string, g golden) {
	t.Helper()
	var v any
	_ = json.Unmarshal(g.Value, &v)
	g.Value, _ = json.MarshalIndent(v, "  ", "  ")
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func assertJSONEqual(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	dg := json.NewDecoder(bytes.NewReader(got))
	dg.UseNumber()
	dw := json.NewDecoder(bytes.NewReader(want))
	dw.UseNumber()
	if err := dg.Decode(&g); err != nil {
		t.Fatalf("got is not JSON: %v: %s", err, got)
	}
	if err := dw.Decode(&w); err != nil {
		t.Fatalf("want is not JSON: %v: %s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("value\n got %s\nwant %s", got, want)
	}
}
