package kafkait

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

// TestEveryEventTypeEndToEnd sends a callback of each of the 19 types and
// an unrecognized one through the binary to a cluster whose brokers create
// no topic on their own, with a routes file that also fans every event out
// to a per-account topic (created on first use) and the message_* events to
// a structured-mode topic. It reads every topic back with kafka-go, decodes
// each message with events/kafkaevents, checks the topics the gateway
// created (3 partitions, replication factor 3, min.insync.replicas 2), runs
// the README's consumer-group example on two of them, and finally hands the
// same topics to the Python consumers (TestPython... below runs them).
func TestEveryEventTypeEndToEnd(t *testing.T) {
	c := needCluster(t)
	c.ensureAllUp(t)
	prefix := topicPrefix(t)
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte(`routes:
  - events: ["*"]
    topics: ["`+prefix+`.{event}"]
  - events: ["message_*"]
    topics: ["`+prefix+`.structured"]
    content_mode: structured
  - events: ["*"]
    accounts: [1743199, 1743200]
    topics: ["`+prefix+`.account.{account}"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, c.brokers, prefix, true, []string{"--routes-file", routes})

	// Automatic topic creation is off on every broker: what exists below
	// was created by the gateway.
	checkBrokerConfig(t, c, "auto.create.topics.enable", "false")
	checkBrokerConfig(t, c, "unclean.leader.election.enable", "false")

	ids := map[string]string{} // event name -> event_id answered
	for _, name := range eventNames(t) {
		a := g.post(callback(t, name))
		if a.err != nil || a.status != 200 || a.eventID == "" {
			t.Fatalf("%s: %+v", name, a)
		}
		ids[name] = a.eventID
	}
	// One more account's event: its topic is created on first use.
	other := bytes.ReplaceAll(callback(t, "message_click"), []byte("1743199"), []byte("1743200"))
	a := g.post(other)
	if a.status != 200 {
		t.Fatalf("account 1743200's click: %+v", a)
	}
	otherID := a.eventID
	// A callback that fails validation is kept on the dead-letter topic.
	if a := g.post([]byte(`{"event_name":"message_open","data":{"account_id":1743199,"member_id":"not a number"}}`)); a.status != 422 {
		t.Fatalf("invalid callback: %+v", a)
	}

	var topics []string
	for name := range ids {
		if name != "unrecognized" {
			topics = append(topics, g.topic(name))
		}
	}
	created := append([]string{g.topic("unrecognized"), g.topic("deadletter"), prefix + ".structured",
		prefix + ".account.1743199", prefix + ".account.1743200"}, topics...)
	checkTopics(t, c, created)

	// Every event type, decoded as a Go consumer would.
	msgs := c.consume(t, append(topics, g.topic("unrecognized"))...)
	if len(msgs) != 21 {
		t.Fatalf("%d messages on the event topics, want 21 (each type once, and account 1743200's click): %v", len(msgs), msgTopics(msgs))
	}
	for _, m := range msgs {
		ev, err := kafkaevents.Decode(m)
		if err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		name := strings.TrimPrefix(m.Topic, prefix+".")
		if name != "unrecognized" && ev.Name != name {
			t.Errorf("%s holds a %s event", m.Topic, ev.Name)
		}
		if want := ids[name]; (ev.ID != want && ev.ID != otherID) || header(m, "ce_id") != ev.ID {
			t.Errorf("%s: event_id %s, ce_id %s, answered %s", m.Topic, ev.ID, header(m, "ce_id"), ids[name])
		}
		if (name == "unrecognized") == ev.Recognized() {
			t.Errorf("%s: recognized %v", m.Topic, ev.Recognized())
		}
	}

	// The fan-out copies: per account, and structured for message_*.
	perAccount := c.consume(t, prefix+".account.1743199")
	if len(perAccount) != 19 {
		t.Errorf("account 1743199's topic holds %d messages, want the 19 recognized events", len(perAccount))
	}
	if got := c.consume(t, prefix+".account.1743200"); len(got) != 1 || header(got[0], "ce_id") != otherID {
		t.Errorf("account 1743200's topic: %v", msgTopics(got))
	}
	structured := c.consume(t, prefix+".structured")
	wantStructured := 1 // account 1743200's click
	for name := range ids {
		if strings.HasPrefix(name, "message_") {
			wantStructured++
		}
	}
	if len(structured) != wantStructured {
		t.Errorf("structured topic holds %d messages, want %d", len(structured), wantStructured)
	}
	for _, m := range structured {
		ev, err := kafkaevents.Decode(m)
		if err != nil || !strings.HasPrefix(ev.Name, "message_") {
			t.Errorf("structured %s/%d@%d: %v %v", m.Topic, m.Partition, m.Offset, ev, err)
		}
	}
	dead := c.consume(t, g.topic("deadletter"))
	if len(dead) != 1 || !errors.Is(func() error { _, err := kafkaevents.Decode(dead[0]); return err }(), kafkaevents.ErrDeadLetter) {
		t.Errorf("dead letters: %v", msgTopics(dead))
	}
	t.Logf("every event type: 21 callbacks answered 200, 21 on their topics, 19+1 per-account copies, %d structured, 1 dead letter",
		len(structured))

	t.Run("README consumer group", func(t *testing.T) {
		readmeConsumerGroup(t, c, prefix, []string{ids["message_open"], ids["message_click"], otherID})
	})
	t.Run("Python", func(t *testing.T) {
		runPython(t, c, prefix, append(topics, g.topic("unrecognized")), len(msgs), prefix+".structured", len(structured))
	})
}

// readmeConsumerGroup runs the README's consumer-group loop
// (events/kafkaevents Example_consumerGroup) on two of the gateway's topics:
// a kafka-go group reader, FetchMessage, Decode, a type switch, commit.
func readmeConsumerGroup(t *testing.T, c *cluster, prefix string, want []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     c.brokers,
		GroupID:     prefix + ".engagement-scores",
		GroupTopics: []string{prefix + ".message_open", prefix + ".message_click"},
		StartOffset: kafka.FirstOffset,
		MaxWait:     250 * time.Millisecond,
	})
	defer r.Close()
	var seen []string
	for len(seen) < len(want) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage after %d messages: %v", len(seen), err)
		}
		ev, err := kafkaevents.Decode(m)
		if err != nil {
			t.Fatalf("Decode %s: %v", m.Topic, err)
		}
		switch p := ev.Payload.(type) {
		case *events.MessageOpen:
			if p.MemberID == 0 || p.MailingID == 0 {
				t.Errorf("open without ids: %+v", p)
			}
		case *events.MessageClick:
			if p.LinkID == 0 {
				t.Errorf("click without a link: %+v", p)
			}
		default:
			t.Fatalf("unexpected payload %T", p)
		}
		seen = append(seen, ev.ID)
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	slices.Sort(seen)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Errorf("the group read %v, the gateway answered %v", seen, want)
	}
	// The commits reached the group coordinator: a new reader of the group
	// starts after them.
	offs, err := c.client().OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: prefix + ".engagement-scores",
		Topics: map[string][]int{prefix + ".message_open": {0, 1, 2}, prefix + ".message_click": {0, 1, 2}}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	committed := 0
	for _, ps := range offs.Topics {
		for _, p := range ps {
			if p.CommittedOffset > 0 {
				committed++
			}
		}
	}
	if committed < 2 {
		t.Errorf("%d partitions have a committed offset, want 2 or 3: %+v", committed, offs.Topics)
	}
}

// checkTopics asserts that each topic exists with 3 partitions, 3 replicas
// each, and min.insync.replicas 2.
func checkTopics(t *testing.T, c *cluster, topics []string) {
	t.Helper()
	for _, tp := range topics {
		parts := c.partitions(t, tp)
		if len(parts) != 3 {
			t.Errorf("%s: %d partitions, want 3", tp, len(parts))
		}
		for _, p := range parts {
			if len(p.Replicas) != 3 {
				t.Errorf("%s/%d: %d replicas, want 3", tp, p.ID, len(p.Replicas))
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var res []kafka.DescribeConfigRequestResource
	for _, tp := range topics {
		res = append(res, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: tp, ConfigNames: []string{"min.insync.replicas"}})
	}
	out, err := c.client().DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: res})
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	for _, r := range out.Resources {
		if r.Error != nil || len(r.ConfigEntries) != 1 || r.ConfigEntries[0].ConfigValue != "2" {
			t.Errorf("%s: min.insync.replicas %+v %v", r.ResourceName, r.ConfigEntries, r.Error)
		}
	}
}

// checkBrokerConfig asserts that every broker has name=want.
func checkBrokerConfig(t *testing.T, c *cluster, name, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i := range c.brokers {
		out, err := c.client().DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
			{ResourceType: kafka.ResourceTypeBroker, ResourceName: strings.TrimSpace(string(rune('1' + i))), ConfigNames: []string{name}}}})
		if err != nil || len(out.Resources) != 1 || len(out.Resources[0].ConfigEntries) != 1 {
			t.Fatalf("broker %d %s: %v %+v", i+1, name, err, out)
		}
		if got := out.Resources[0].ConfigEntries[0].ConfigValue; got != want {
			t.Errorf("broker %d: %s=%s, want %s", i+1, name, got, want)
		}
	}
}

func msgTopics(msgs []kafka.Message) []string {
	var s []string
	for _, m := range msgs {
		s = append(s, m.Topic)
	}
	return s
}
