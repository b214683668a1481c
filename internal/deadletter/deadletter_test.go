package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/emma-gateway/emma-gateway/events"
	ke "github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
	"github.com/emma-gateway/emma-gateway/receiver"
	"github.com/emma-gateway/emma-gateway/sinks"
)

const (
	// openEvent passes today's validation.
	openEvent = `{"event_name":"message_open","data":{"account_id":1743199,"member_id":6160010079,"mailing_id":5012345678,"subject":"Hi","timestamp":"@D:2026-11-20T10:01:02"}}`
	// clickEvent passes too; it is the old-style letter's.
	clickEvent = `{"event_name":"message_click","data":{"account_id":1743199,"member_id":6160010080,"mailing_id":5012345678,"link_id":7,"timestamp":"@D:2026-11-20T10:05:00"}}`
	// invalidOpen fails today's validation (no member_id, no mailing_id).
	invalidOpen = `{"event_name":"message_open","data":{"account_id":1}}`
)

// env is a broker, the gateway's sink on it, and a receiver in front, so
// that letters are written by the real code that writes them in production.
type env struct {
	brokers []string
	sink    *sinks.Kafka
	hook    string
	dec     *events.Decoder
	src     Source
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b, err := devkafka.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	e := &env{brokers: b.Addrs(), dec: events.NewDecoder(events.DecoderConfig{})}
	e.sink = newSink(t, e.brokers)
	rcfg := receiver.DefaultConfig()
	rcfg.AllowUnauthenticated = true
	srv, err := receiver.New(rcfg, receiver.Deps{Decoder: e.dec, Sink: e.sink}, telemetry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e.hook = hs.URL + "/webhooks/emma"
	kcfg := sinks.DefaultConfig()
	transport, dialer, err := kcfg.Connection()
	if err != nil {
		t.Fatal(err)
	}
	e.src = Source{Brokers: e.brokers, Topic: ke.DefaultDeadLetterTopic, Transport: transport, Dialer: dialer, ReadTimeout: 5 * time.Second}
	return e
}

func newSink(t *testing.T, brokers []string) *sinks.Kafka {
	t.Helper()
	cfg := sinks.DefaultConfig()
	cfg.Brokers, cfg.Partitions, cfg.ReplicationFactor = brokers, 1, 1
	// A recording tracer, as the command sets up: the producer span is the
	// redriven message's new traceparent.
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	k, err := sinks.NewKafka(cfg, telemetry.Settings{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = k.Shutdown(ctx)
	})
	waitReady(t, k)
	return k
}

func waitReady(t *testing.T, k *sinks.Kafka) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for k.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("sink not ready: %v", k.Ready(context.Background()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) post(t *testing.T, body string, want int) {
	t.Helper()
	resp, err := http.Post(e.hook, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: status %d, want %d", body, resp.StatusCode, want)
	}
}

// Original receive times of the letters that pass today.
var (
	fixedAt = time.Date(2026, 11, 20, 16, 1, 5, 250_000_000, time.UTC)
	oldAt   = time.Date(2026, 11, 20, 16, 5, 1, 0, time.UTC)
)

// letters writes four dead letters: a 422 and a 400 by the receiver (still
// failing today), a GET callback rejected by a rule since fixed (the sink's
// own DeadLetter, all of today's headers), and a letter of an older gateway
// with only its reason, detail and event name headers, both passing today.
func (e *env) letters(t *testing.T) {
	t.Helper()
	e.post(t, invalidOpen, http.StatusUnprocessableEntity)
	e.post(t, "not json", http.StatusBadRequest)
	ev, err := e.dec.Parse([]byte(openEvent), events.DeliveryGET, fixedAt)
	if err != nil {
		t.Fatal(err)
	}
	verr := &events.ValidationError{Event: "message_open", Errors: []events.FieldError{{Field: "subject", Rule: "max", Message: "must be at most 1 character"}}}
	if err := e.sink.DeadLetter(context.Background(), events.NewRejection([]byte(openEvent), events.DeliveryGET, "", fixedAt, ev, verr)); err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	err = w.WriteMessages(context.Background(), kafka.Message{
		Topic: ke.DefaultDeadLetterTopic, Value: []byte(clickEvent), Time: oldAt,
		Headers: []kafka.Header{
			{Key: ke.HeaderDeadReason, Value: []byte("invalid")},
			{Key: ke.HeaderDeadDetail, Value: []byte("invalid message_click event: link_id is required")},
			{Key: ke.HeaderDeadEventName, Value: []byte("message_click")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// published reads every message of topic.
func (e *env) published(t *testing.T, topic string) []kafka.Message {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 5 * time.Second}
	res, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	end := res.Topics[topic][0].LastOffset
	src := e.src
	src.Topic = topic
	var out []kafka.Message
	if err := src.read(context.Background(), span{partition: 0, to: end}, func(m kafka.Message) error {
		out = append(out, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func header(m kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestListReadsEveryLetterWithFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.letters(t)
	list := func(f Filter) []Letter {
		var got []Letter
		if err := List(context.Background(), e.src, f, func(l Letter) error {
			l.Payload = nil
			got = append(got, l)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	all := list(Filter{})
	if len(all) != 4 {
		t.Fatalf("List: %d letters, want 4: %+v", len(all), all)
	}
	inv := all[0]
	if inv.Reason != events.ReasonInvalid || inv.Event != "message_open" || inv.Delivery != events.DeliveryPOST || inv.ContentType != "application/json" || len(inv.Errors) == 0 {
		t.Errorf("the receiver's 422 letter: %+v", inv)
	}
	if all[1].Reason != events.ReasonMalformed || all[1].Event != "" {
		t.Errorf("the receiver's 400 letter: %+v", all[1])
	}
	want := Letter{Topic: ke.DefaultDeadLetterTopic, Partition: 0, Offset: 2, ReceivedAt: fixedAt, Event: "message_open", Reason: "invalid",
		Detail: "invalid message_open event: subject must be at most 1 character", Errors: []events.FieldError{{Field: "subject", Rule: "max", Message: "must be at most 1 character"}}, Delivery: events.DeliveryGET}
	if d := cmp.Diff(want, all[2]); d != "" {
		t.Errorf("the sink's letter (-want +got):\n%s", d)
	}
	// An older gateway's letter: no delivery, content type or receive
	// time header; the message's timestamp stands in.
	old := Letter{Topic: ke.DefaultDeadLetterTopic, Partition: 0, Offset: 3, ReceivedAt: oldAt, Event: "message_click", Reason: "invalid",
		Detail: "invalid message_click event: link_id is required", Delivery: events.DeliveryPOST}
	if d := cmp.Diff(old, all[3]); d != "" {
		t.Errorf("the old-style letter (-want +got):\n%s", d)
	}
	if got := list(Filter{Reason: events.ReasonMalformed}); len(got) != 1 || got[0].Offset != 1 {
		t.Errorf("--reason malformed: %+v", got)
	}
	if got := list(Filter{Event: "message_click"}); len(got) != 1 || got[0].Offset != 3 {
		t.Errorf("--event message_click: %+v", got)
	}
	// The receiver's letters were received now, the others in the past.
	if got := list(Filter{Since: time.Now().Add(-time.Hour)}); len(got) != 2 || got[0].Offset != 0 || got[1].Offset != 1 {
		t.Errorf("--since an hour ago: %+v", got)
	}

	var table, lines bytes.Buffer
	pt, pj := NewPrinter(&table, false), NewPrinter(&lines, true)
	for _, l := range all {
		if err := pt.Print(l, ""); err != nil {
			t.Fatal(err)
		}
		_ = pj.Print(l, "")
	}
	if !strings.Contains(table.String(), "FIELD ERRORS") || !strings.Contains(table.String(), "subject max") {
		t.Errorf("table:\n%s", table.String())
	}
	if n := strings.Count(lines.String(), "\n"); n != 4 {
		t.Errorf("JSON lines: %d lines:\n%s", n, lines.String())
	}
	for _, s := range []string{"6160010079", "Hi"} {
		if strings.Contains(table.String(), s) || strings.Contains(lines.String(), `"`+s) {
			t.Errorf("a payload field (%q) is printed", s)
		}
	}
}

func TestReplayPublishesWhatPassesTodayOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.letters(t)
	var outs []Outcome
	cfg := ReplayConfig{Decoder: e.dec, Publisher: e.sink, Handled: func(o Outcome) { outs = append(outs, o) }}

	// A dry run publishes and commits nothing.
	dry := cfg
	dry.DryRun = true
	rep, err := Replay(context.Background(), e.src, dry)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Report{Letters: 4, Passed: 2, Failing: 2}, rep); d != "" {
		t.Errorf("dry run (-want +got):\n%s", d)
	}
	if n := len(e.published(t, "emma.message_open")) + len(e.published(t, "emma.message_click")); n != 0 {
		t.Fatalf("the dry run published %d messages", n)
	}

	outs = nil
	rep, err = Replay(context.Background(), e.src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Report{Letters: 4, Passed: 2, Published: 2, Failing: 2}, rep); d != "" {
		t.Errorf("replay (-want +got):\n%s", d)
	}
	var ve *events.ValidationError
	var me *events.MalformedError
	if len(outs) != 4 || !errors.As(outs[0].Err, &ve) || !errors.As(outs[1].Err, &me) || !outs[2].Published || !outs[3].Published {
		t.Fatalf("outcomes: %+v", outs)
	}
	for _, c := range []struct {
		topic, from string
		payload     string
		delivery    events.Delivery
		receivedAt  time.Time
		key         string
	}{
		{"emma.message_open", "emma.deadletter/0/2", openEvent, events.DeliveryGET, fixedAt, "6160010079"},
		{"emma.message_click", "emma.deadletter/0/3", clickEvent, events.DeliveryPOST, oldAt, "6160010080"},
	} {
		msgs := e.published(t, c.topic)
		if len(msgs) != 1 {
			t.Fatalf("%s: %d messages, want 1", c.topic, len(msgs))
		}
		m := msgs[0]
		fresh, err := e.dec.Decode([]byte(c.payload), c.delivery, c.receivedAt)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != c.key {
			t.Errorf("%s: key %q, want %q", c.topic, m.Key, c.key)
		}
		if v, _ := header(m, ke.HeaderRedrivenFrom); v != c.from {
			t.Errorf("%s: %s = %q, want %q", c.topic, ke.HeaderRedrivenFrom, v, c.from)
		}
		if v, _ := header(m, ke.HeaderID); v != fresh.ID {
			t.Errorf("%s: ce_id %q, want the fresh callback's event_id %q", c.topic, v, fresh.ID)
		}
		if v, ok := header(m, ke.HeaderTraceparent); !ok || v == "" {
			t.Errorf("%s: no traceparent", c.topic)
		}
		got, err := ke.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != fresh.ID || !got.ReceivedAt.Equal(c.receivedAt) || got.Delivery != c.delivery {
			t.Errorf("%s: event_id %s received_at %s delivery %s, want %s %s %s", c.topic, got.ID, got.ReceivedAt, got.Delivery, fresh.ID, c.receivedAt, c.delivery)
		}
		var value map[string]any
		_ = json.Unmarshal(m.Value, &value)
		if value["received_at"] != c.receivedAt.Format(time.RFC3339Nano) {
			t.Errorf("%s: received_at %v in the value, want %s", c.topic, value["received_at"], c.receivedAt.Format(time.RFC3339Nano))
		}
	}

	// Again: every letter is handled, nothing is published twice.
	rep, err = Replay(context.Background(), e.src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Report{}, rep); d != "" {
		t.Errorf("second replay (-want +got):\n%s", d)
	}
	// A new letter is the only one the next run reads.
	e.post(t, invalidOpen, http.StatusUnprocessableEntity)
	if rep, err = Replay(context.Background(), e.src, cfg); err != nil || rep != (Report{Letters: 1, Failing: 1}) {
		t.Errorf("replay after a new letter: %+v, %v", rep, err)
	}
	// --from-beginning reconsiders them all, and publishes again.
	fb := cfg
	fb.FromBeginning = true
	if rep, err = Replay(context.Background(), e.src, fb); err != nil || rep != (Report{Letters: 5, Passed: 2, Published: 2, Failing: 3}) {
		t.Errorf("replay --from-beginning: %+v, %v", rep, err)
	}
	if n := len(e.published(t, "emma.message_open")); n != 2 {
		t.Errorf("after --from-beginning: %d message_open events, want 2", n)
	}
}

// failing publishes through the sink until it is told to fail.
type failing struct {
	next Publisher
	left int
}

func (f *failing) Redrive(ctx context.Context, ev *events.Event, from string) error {
	if f.left == 0 {
		return sinks.ErrUnavailable
	}
	f.left--
	return f.next.Redrive(ctx, ev, from)
}

func TestReplayStoppedHalfWayResumesWithoutLoss(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.letters(t)
	// Kafka fails on the second letter that passes: the first is
	// published and committed, the second is neither.
	rep, err := Replay(context.Background(), e.src, ReplayConfig{Decoder: e.dec, Publisher: &failing{next: e.sink, left: 1}})
	if !errors.Is(err, sinks.ErrUnavailable) {
		t.Fatalf("replay with a failing publish: %v", err)
	}
	if d := cmp.Diff(Report{Letters: 4, Passed: 2, Published: 1, Failing: 2}, rep); d != "" {
		t.Errorf("stopped replay (-want +got):\n%s", d)
	}
	rep, err = Replay(context.Background(), e.src, ReplayConfig{Decoder: e.dec, Publisher: e.sink})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Report{Letters: 1, Passed: 1, Published: 1}, rep); d != "" {
		t.Errorf("resumed replay (-want +got):\n%s", d)
	}
	if a, b := len(e.published(t, "emma.message_open")), len(e.published(t, "emma.message_click")); a != 1 || b != 1 {
		t.Errorf("published %d message_open and %d message_click, want one each", a, b)
	}
}

func TestReplayOfAnEmptyTopicEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rep, err := Replay(context.Background(), e.src, ReplayConfig{Decoder: e.dec, Publisher: e.sink})
	if err != nil || rep != (Report{}) {
		t.Errorf("replay of an empty topic: %+v, %v", rep, err)
	}
}
