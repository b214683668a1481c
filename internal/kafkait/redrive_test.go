package kafkait

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

// listedLetter is one JSON line of `deadletter list --json` or
// `deadletter replay --json` (Replay is the outcome, replay only).
type listedLetter struct {
	Topic      string       `json:"topic"`
	Partition  int          `json:"partition"`
	Offset     int64        `json:"offset"`
	ReceivedAt time.Time    `json:"received_at"`
	Event      string       `json:"event"`
	Reason     string       `json:"reason"`
	Detail     string       `json:"detail"`
	Errors     []fieldError `json:"errors"`
	Delivery   string       `json:"delivery"`
	Replay     string       `json:"replay"`
}

// fieldError is one failing field of a listed letter.
type fieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

func (l listedLetter) from() string { return fmt.Sprintf("%s/%d/%d", l.Topic, l.Partition, l.Offset) }

// deadletterRun is what one `emma-gateway deadletter ...` run did.
type deadletterRun struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// letters parses stdout's JSON lines.
func (r deadletterRun) letters(t *testing.T) []listedLetter {
	t.Helper()
	var out []listedLetter
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var l listedLetter
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("deadletter output line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// runDeadletter runs `emma-gateway deadletter args...` with env added to
// the environment, bounded by 90 s (a hang fails the test with what the
// command printed), and returns its exit code and output.
func runDeadletter(t *testing.T, env []string, args ...string) deadletterRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatewayBinary(t), append([]string{"deadletter"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := deadletterRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("deadletter %s did not end within 90 s:\n%s%s", strings.Join(args, " "), r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// deadletterArgs are the topic flags of a gateway whose topics are under
// prefix, as `deadletter` needs them.
func deadletterArgs(prefix string) []string {
	return []string{
		"--topic-template", prefix + ".{event}",
		"--unrecognized-topic", prefix + ".unrecognized",
		"--deadletter-topic", prefix + ".deadletter",
	}
}

// TestDeadletterReplayAgainstApacheKafka redrives dead letters on the
// three-broker cluster with the binary. The dead-letter topic holds three
// letters: a callback the real gateway answered 422 (still failing today);
// a GET click with every header today's gateway writes, rejected by a rule
// since fixed (a failing field today's validator does not have); and an
// open as an older gateway wrote it (reason, detail and event name only,
// its receive time only the message's timestamp). `list` shows all three
// with their reasons and failing fields; `replay --dry-run` publishes
// nothing and exits 3; `replay` publishes the two that pass today, each
// once, on its topic, with the event_id a fresh callback of the same
// payload gets, the original received_at and delivery, a new traceparent
// and emma_redriven_from naming the letter, and lists the still-failing
// one with its reason; a second replay reads and publishes nothing (the
// group's offsets are on the cluster's group coordinator).
func TestDeadletterReplayAgainstApacheKafka(t *testing.T) {
	c := needCluster(t)
	c.ensureAllUp(t)
	prefix := topicPrefix(t)
	g := startGateway(t, c.brokers, prefix, true, nil)
	if a := g.post([]byte(`{"event_name":"message_open","data":{"account_id":1}}`)); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid callback: %+v", a)
	}
	open, click := callback(t, "message_open"), callback(t, "message_click")
	clickAt := time.Date(2026, 11, 20, 16, 1, 5, 250_000_000, time.UTC)
	openAt := time.Date(2026, 11, 20, 16, 5, 1, 0, time.UTC)
	// The gateway created the dead-letter topic at start; after a broker
	// restart (an earlier test) its leaders may still be settling, and a
	// kafka-go Writer keeps its stale metadata: wait for the replicas, and
	// write again with fresh metadata while Kafka says the topic is not
	// there yet.
	c.waitFullISR(t, 30*time.Second, prefix+".deadletter")
	w := &kafka.Writer{Addr: kafka.TCP(c.brokers...), RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: c.transport}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := writeRetrying(ctx, c, w,
		kafka.Message{Topic: prefix + ".deadletter", Value: click, Headers: []kafka.Header{
			{Key: kafkaevents.HeaderDeadReason, Value: []byte("invalid")},
			{Key: kafkaevents.HeaderDeadDetail, Value: []byte("invalid message_click event: link_id must be at most 3 digits")},
			{Key: kafkaevents.HeaderDeadErrors, Value: []byte(`[{"field":"link_id","rule":"max","message":"must be at most 999"}]`)},
			{Key: kafkaevents.HeaderDeadEventName, Value: []byte("message_click")},
			{Key: kafkaevents.HeaderDeadDelivery, Value: []byte("GET")},
			{Key: kafkaevents.HeaderDeadReceivedAt, Value: []byte(clickAt.Format(time.RFC3339Nano))},
		}},
		kafka.Message{Topic: prefix + ".deadletter", Value: open, Time: openAt, Headers: []kafka.Header{
			{Key: kafkaevents.HeaderDeadReason, Value: []byte("invalid")},
			{Key: kafkaevents.HeaderDeadDetail, Value: []byte("invalid message_open event: an old rule")},
			{Key: kafkaevents.HeaderDeadEventName, Value: []byte("message_open")},
		}},
	); err != nil {
		t.Fatal(err)
	}
	// The ids fresh callbacks of the same payloads are answered with (by
	// GET or POST alike).
	freshOpen, freshClick := g.post(open), g.post(click)
	if freshOpen.status != 200 || freshClick.status != 200 {
		t.Fatalf("fresh callbacks: %+v %+v", freshOpen, freshClick)
	}
	brokers := []string{"--kafka-brokers", strings.Join(c.brokers, ",")}

	list := runDeadletter(t, nil, append(append([]string{"list", "--json"}, brokers...), deadletterArgs(prefix)...)...)
	if list.code != 0 {
		t.Fatalf("list: exit %d:\n%s%s", list.code, list.stdout, list.stderr)
	}
	all := list.letters(t)
	if len(all) != 3 || !strings.Contains(list.stderr, "3 letters") {
		t.Fatalf("list: %d letters, want 3:\n%s%s", len(all), list.stdout, list.stderr)
	}
	var gw, oldClick, oldOpen listedLetter
	for _, l := range all {
		switch {
		case l.Event == "message_click":
			oldClick = l
		case l.Event == "message_open" && l.ReceivedAt.Equal(openAt):
			oldOpen = l
		default:
			gw = l
		}
	}
	if gw.Reason != "invalid" || len(gw.Errors) == 0 {
		t.Errorf("the gateway's 422 listed as %+v, want reason invalid and its failing fields", gw)
	}
	if oldClick.Reason != "invalid" || len(oldClick.Errors) != 1 || oldClick.Errors[0].Field != "link_id" || !oldClick.ReceivedAt.Equal(clickAt) || oldClick.Delivery != "GET" {
		t.Errorf("today's-format letter listed as %+v", oldClick)
	}
	if oldOpen.Reason != "invalid" || !oldOpen.ReceivedAt.Equal(openAt) || oldOpen.Detail == "" {
		t.Errorf("older gateway's letter listed as %+v, want received at its timestamp %s", oldOpen, openAt)
	}
	if strings.Contains(list.stdout, "November news") || strings.Contains(list.stdout, "6160010079") {
		t.Errorf("list shows a payload:\n%s", list.stdout)
	}

	replayArgs := append(append(append([]string{"replay", "--json"}, brokers...), deadletterArgs(prefix)...),
		"--topic-replication-factor", "3", "--group", prefix+".replay")
	dry := runDeadletter(t, nil, append(replayArgs, "--dry-run")...)
	if dry.code != 3 || !strings.Contains(dry.stderr, "3 letters read, 2 pass today, 0 published, 1 still fail") {
		t.Fatalf("replay --dry-run: exit %d, want 3:\n%s%s", dry.code, dry.stdout, dry.stderr)
	}
	before := redriven(t, c, g)
	if len(before) != 0 {
		t.Fatalf("the dry run published %d messages", len(before))
	}

	first := runDeadletter(t, nil, replayArgs...)
	if first.code != 0 || !strings.Contains(first.stderr, "3 letters read, 2 pass today, 2 published, 1 still fail") {
		t.Fatalf("replay: exit %d:\n%s%s", first.code, first.stdout, first.stderr)
	}
	outcomes := map[string]listedLetter{}
	for _, l := range first.letters(t) {
		outcomes[l.from()] = l
	}
	if outcomes[oldClick.from()].Replay != "published" || outcomes[oldOpen.from()].Replay != "published" || outcomes[gw.from()].Replay != "still fails" {
		t.Errorf("replay outcomes %+v", outcomes)
	}
	// The still-failing letter is listed with today's reasons.
	if still := outcomes[gw.from()]; !strings.Contains(still.Detail, "member_id is required") || !slices.ContainsFunc(still.Errors, func(e fieldError) bool { return e.Field == "member_id" && e.Rule == "required" }) {
		t.Errorf("the still-failing letter is listed without today's failing field: %+v", still)
	}

	got := redriven(t, c, g)
	if len(got) != 2 {
		t.Fatalf("%d redriven messages, want 2: %v", len(got), msgTopics(got))
	}
	want := map[string]struct {
		letter     listedLetter
		id         string
		receivedAt time.Time
		delivery   string
	}{
		g.topic("message_click"): {oldClick, freshClick.eventID, clickAt, "GET"},
		g.topic("message_open"):  {oldOpen, freshOpen.eventID, openAt, "POST"},
	}
	for _, m := range got {
		w, ok := want[m.Topic]
		if !ok {
			t.Errorf("a redriven message on %s", m.Topic)
			continue
		}
		ev, err := kafkaevents.Decode(m)
		if err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		if from := header(m, kafkaevents.HeaderRedrivenFrom); from != w.letter.from() {
			t.Errorf("%s: emma_redriven_from %q, want %q", m.Topic, from, w.letter.from())
		}
		if ev.ID != w.id || header(m, kafkaevents.HeaderID) != w.id {
			t.Errorf("%s: event_id %s, ce_id %s, a fresh callback's %s", m.Topic, ev.ID, header(m, kafkaevents.HeaderID), w.id)
		}
		if !ev.ReceivedAt.Equal(w.receivedAt) || string(ev.Delivery) != w.delivery {
			t.Errorf("%s: received_at %s delivery %s, want the letter's %s %s", m.Topic, ev.ReceivedAt, ev.Delivery, w.receivedAt, w.delivery)
		}
		if header(m, kafkaevents.HeaderTraceparent) == "" {
			t.Errorf("%s: no traceparent", m.Topic)
		}
	}

	second := runDeadletter(t, nil, replayArgs...)
	if second.code != 0 || !strings.Contains(second.stderr, "0 letters read, 0 pass today, 0 published") {
		t.Fatalf("second replay: exit %d:\n%s%s", second.code, second.stdout, second.stderr)
	}
	if again := redriven(t, c, g); len(again) != 2 {
		t.Errorf("after a second replay %d redriven messages, want still 2", len(again))
	}
	t.Logf("deadletter: list 3 letters in %v; replay --dry-run exit 3 in %v; replay published 2, 1 still fails, in %v; second replay read 0 in %v",
		list.took.Round(time.Millisecond), dry.took.Round(time.Millisecond), first.took.Round(time.Millisecond), second.took.Round(time.Millisecond))
}

// redriven returns the messages on g's message_open and message_click
// topics that carry emma_redriven_from.
func redriven(t *testing.T, c *cluster, g *gateway) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for _, m := range c.consume(t, g.topic("message_open"), g.topic("message_click")) {
		if header(m, kafkaevents.HeaderRedrivenFrom) != "" {
			out = append(out, m)
		}
	}
	return out
}

// writeRetrying writes msgs with w one at a time, each again (at most 20
// times, 500 ms apart, with the transport's metadata dropped) while Kafka
// answers that the topic or its leader is not known yet; one at a time, so
// that a retry never writes a message twice.
func writeRetrying(ctx context.Context, c *cluster, w *kafka.Writer, msgs ...kafka.Message) error {
	for _, m := range msgs {
		for attempt := 1; ; attempt++ {
			err := w.WriteMessages(ctx, m)
			var werrs kafka.WriteErrors
			if errors.As(err, &werrs) && len(werrs) == 1 {
				err = werrs[0]
			}
			if err == nil {
				break
			}
			if attempt == 20 || !(errors.Is(err, kafka.UnknownTopicOrPartition) || errors.Is(err, kafka.NotLeaderForPartition) || errors.Is(err, kafka.LeaderNotAvailable)) {
				return err
			}
			c.transport.CloseIdleConnections()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}
