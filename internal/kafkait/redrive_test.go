package kafkait

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

// TestDeadletterReplayAgainstApacheKafka redrives dead letters on the
// three-broker cluster with the binary: a 422 the gateway wrote (still
// failing today) and a letter as an older gateway wrote it (reason, detail
// and event name only) whose callback passes today. replay --dry-run exits
// 3, replay publishes the passing one once with emma_redriven_from and the
// callback's event_id, and a second replay finds nothing (the group's
// offsets are committed on the cluster's group coordinator).
func TestDeadletterReplayAgainstApacheKafka(t *testing.T) {
	c := needCluster(t)
	c.ensureAllUp(t)
	prefix := topicPrefix(t)
	g := startGateway(t, c.brokers, prefix, true, nil)
	if a := g.post([]byte(`{"event_name":"message_open","data":{"account_id":1}}`)); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid callback: %+v", a)
	}
	open := callback(t, "message_open")
	w := &kafka.Writer{Addr: kafka.TCP(c.brokers...), RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Topic: prefix + ".deadletter", Value: open, Headers: []kafka.Header{
		{Key: kafkaevents.HeaderDeadReason, Value: []byte("invalid")},
		{Key: kafkaevents.HeaderDeadDetail, Value: []byte("invalid message_open event: an old rule")},
		{Key: kafkaevents.HeaderDeadEventName, Value: []byte("message_open")},
	}}); err != nil {
		t.Fatal(err)
	}
	// The id a fresh callback of the same payload is answered with.
	fresh := g.post(open)
	if fresh.status != 200 {
		t.Fatalf("fresh callback: %+v", fresh)
	}

	replay := func(extra ...string) (int, string) {
		t.Helper()
		args := append([]string{"deadletter", "replay",
			"--kafka-brokers", strings.Join(c.brokers, ","),
			"--topic-template", prefix + ".{event}",
			"--unrecognized-topic", prefix + ".unrecognized",
			"--deadletter-topic", prefix + ".deadletter",
			"--topic-replication-factor", "3",
			"--group", prefix + ".replay",
		}, extra...)
		cmd := exec.Command(gatewayBinary(t), args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String()
	}
	if code, out := replay("--dry-run"); code != 3 || !strings.Contains(out, "1 pass today, 0 published, 1 still fail") {
		t.Fatalf("replay --dry-run: exit %d, want 3:\n%s", code, out)
	}
	if code, out := replay(); code != 0 || !strings.Contains(out, "1 published") {
		t.Fatalf("replay: exit %d:\n%s", code, out)
	}
	if code, out := replay(); code != 0 || !strings.Contains(out, "0 letters read") {
		t.Fatalf("second replay: exit %d:\n%s", code, out)
	}
	var redriven []kafka.Message
	for _, m := range c.consume(t, g.topic("message_open")) {
		if header(m, kafkaevents.HeaderRedrivenFrom) != "" {
			redriven = append(redriven, m)
		}
	}
	if len(redriven) != 1 {
		t.Fatalf("%d redriven messages, want 1", len(redriven))
	}
	m := redriven[0]
	if !strings.HasPrefix(header(m, kafkaevents.HeaderRedrivenFrom), prefix+".deadletter/") || header(m, kafkaevents.HeaderID) != fresh.eventID || header(m, kafkaevents.HeaderTraceparent) == "" {
		t.Errorf("redriven message headers: from %q, ce_id %q (want %q), traceparent %q", header(m, kafkaevents.HeaderRedrivenFrom), header(m, kafkaevents.HeaderID), fresh.eventID, header(m, kafkaevents.HeaderTraceparent))
	}
}
