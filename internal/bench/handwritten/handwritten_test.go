package handwritten

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// start runs the target on loopback with its in-process broker and returns
// its URL and brokers.
func start(t *testing.T) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, "127.0.0.1:0", "", w) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	sc := bufio.NewScanner(r)
	var url, brokers string
	for url == "" || brokers == "" {
		if !sc.Scan() {
			t.Fatal("the target printed no address")
		}
		line := sc.Text()
		if a, ok := strings.CutPrefix(line, "listening on "); ok {
			url = a
		} else if b, ok := strings.CutPrefix(line, "kafka brokers "); ok {
			brokers = b
		}
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	return url, brokers
}

func TestCallbackIsValidatedWrittenAndAnswered(t *testing.T) {
	url, brokers := start(t)
	body := `{"event_name":"message_open","data":{"account_id":1743199,"member_id":6160010079,"mailing_id":5,"timestamp":"@D:2026-11-20T10:01:02"}}`
	resp, err := http.Post(url+"/webhooks/emma/tok", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Status  string `json:"status"`
		EventID string `json:"event_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || answer.Status != "accepted" || len(answer.EventID) != 32 {
		t.Fatalf("answer %d %+v (%v), want 200 accepted with an event id", resp.StatusCode, answer, err)
	}
	bad, err := http.Post(url+"/webhooks/emma/tok", "application/json", strings.NewReader(`{"event_name":"message_open","data":{"member_id":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a callback without account_id and timestamp: %d, want 422", bad.StatusCode)
	}

	// The answer came after Kafka had the record, keyed by the member.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(brokers, ","), Topic: "emma.message_open", Partition: partitionOf("6160010079"), MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	m, err := rd.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(m.Value, &rec); err != nil || rec.EventID != answer.EventID || rec.Data.MemberID != 6160010079 || string(m.Key) != "6160010079" {
		t.Errorf("Kafka holds key %s value %s (%v), want the member's key and event %s", m.Key, m.Value, err, answer.EventID)
	}
}

func partitionOf(key string) int {
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(key)}, 0, 1, 2)
}
