package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/internal/testutil"
	"github.com/emma-gateway/emma-gateway/sinks"
)

const fanOutRoutes = `
routes:
  - events: ["*"]
    topics: ["emma.{event}"]
  - events: ["*"]
    topics: ["emma.events"]
    key: member_id
  - events: ["*"]
    topics: ["emma.account.{account}"]
`

func writeRoutes(t *testing.T, y string) *sinks.Routes {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := sinks.LoadRoutes(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ceIDs(t *testing.T, brokers []string, topic string) map[string]string {
	t.Helper()
	ids := map[string]string{} // ce_id -> key
	for _, m := range consume(t, brokers, topic) {
		id := headerMap(t, m)["ce_id"]
		if _, dup := ids[id]; dup {
			t.Fatalf("%s holds %s twice", topic, id)
		}
		ids[id] = string(m.Key)
	}
	return ids
}

// TestFanOutPutsEveryCallbackOnceOnEachDestination routes every event to
// its own topic, a firehose keyed by member and a per-account topic
// created on first use.
func TestFanOutPutsEveryCallbackOnceOnEachDestination(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, func(c *gateway.Config) { c.Kafka.Routes = writeRoutes(t, fanOutRoutes) })
	files, _ := filepath.Glob("testdata/callbacks/*.json")
	byEvent := map[string]string{} // event name -> id
	for _, f := range files {
		if strings.HasSuffix(f, "unrecognized.json") {
			continue
		}
		payload, _ := os.ReadFile(f)
		status, body := tg.callback(t, http.MethodPost, string(payload))
		if status != 200 {
			t.Fatalf("%s: %d %v", f, status, body)
		}
		byEvent[body["event"].(string)] = body["event_id"].(string)
	}
	if len(byEvent) != 19 {
		t.Fatalf("%d event types sent", len(byEvent))
	}
	firehose := ceIDs(t, tg.brokers, "emma.events")
	// member_add's account (1743199) is the one of every other callback.
	account := ceIDs(t, tg.brokers, "emma.account.1743199")
	if len(firehose) != 19 || len(account) != 19 {
		t.Fatalf("firehose %d, account topic %d messages; want 19 each", len(firehose), len(account))
	}
	for name, id := range byEvent {
		own := ceIDs(t, tg.brokers, "emma."+name)
		if len(own) != 1 {
			t.Fatalf("emma.%s holds %d messages", name, len(own))
		}
		key, ok := own[id]
		if !ok {
			t.Fatalf("emma.%s lacks %s", name, id)
		}
		if account[id] != key {
			t.Errorf("%s: key %q on the account topic, %q on its own", name, account[id], key)
		}
		fk, ok := firehose[id]
		if !ok {
			t.Fatalf("the firehose lacks %s", name)
		}
		// The firehose is keyed by member_id where the event has one.
		var v map[string]any
		for _, m := range consume(t, tg.brokers, "emma."+name) {
			_ = json.Unmarshal(m.Value, &v)
		}
		if member, ok := v["member_id"].(float64); ok && member != 0 {
			if want := strconv.FormatInt(int64(member), 10); fk != want {
				t.Errorf("%s: firehose key %q, want member id %s", name, fk, want)
			}
		} else if fk != key {
			t.Errorf("%s: firehose key %q, want the default key %q", name, fk, key)
		}
	}
}

// TestFailedDestinationIsNever200WithACopyMissing fails one of three
// destinations: without a spool the callback is 503; with one it is spooled
// and arrives once the topic heals.
func TestFailedDestinationIsNever200WithACopyMissing(t *testing.T) {
	t.Parallel()
	for _, spool := range []bool{false, true} {
		name := "no spool"
		if spool {
			name = "spool"
		}
		t.Run(name, func(t *testing.T) {
			tg := startTestGateway(t, func(c *gateway.Config) {
				c.Kafka.Routes = writeRoutes(t, fanOutRoutes)
				c.Kafka.MaxAttempts = 1
				if spool {
					c.Kafka.Spool.Dir = t.TempDir()
					// Long enough that the healthy copies reach Kafka under a
					// loaded, race-instrumented run; only the failing one spools.
					c.Kafka.Spool.After = 2 * time.Second
				}
			})
			failing := &atomic.Bool{}
			failing.Store(true)
			devkafka.FailProduce(tg.broker.Cluster(), failing, "emma.events")
			status, body := tg.callback(t, http.MethodPost, openCallback(1))
			if !spool {
				if status != http.StatusServiceUnavailable {
					t.Fatalf("status %d with a destination failing and no spool", status)
				}
				if n := len(ceIDs(t, tg.brokers, "emma.events")); n != 0 {
					t.Fatalf("the failing topic holds %d messages", n)
				}
				return
			}
			if status != 200 {
				t.Fatalf("status %d with a spool", status)
			}
			id := body["event_id"].(string)
			if st := tg.kafka.Spool().Stats(); st.Records != 1 {
				t.Fatalf("spooled %d records, want the one missing copy", st.Records)
			}
			failing.Store(false)
			testutil.Eventually(t, 20*time.Second, "the spool drained", func() bool { return !tg.kafka.Spool().Pending() })
			for _, topic := range []string{"emma.message_open", "emma.events", "emma.account.1743199"} {
				ids := ceIDs(t, tg.brokers, topic)
				if _, ok := ids[id]; !ok || len(ids) != 1 {
					t.Fatalf("%s holds %v, want exactly %s", topic, ids, id)
				}
			}
		})
	}
}

// TestOneTokenCannotFloodTheClusterWithTopics: one valid token (not bound
// to accounts) sends callbacks for 3,000 made-up account ids to a gateway
// whose routes give every account its own topic. Every callback is
// answered 200 and is on the firehose; --max-account-topics of the
// accounts get their topic, no more are created, and the others' copies
// are on the event's template topic.
func TestOneTokenCannotFloodTheClusterWithTopics(t *testing.T) {
	t.Parallel()
	const (
		accounts  = 3000
		maxTopics = 20
	)
	tg := startTestGateway(t, func(c *gateway.Config) {
		c.Kafka.Routes = writeRoutes(t, "routes:\n  - events: [\"*\"]\n    topics: [\"emma.events\"]\n  - events: [\"*\"]\n    topics: [\"emma.account.{account}\"]\n")
		c.Kafka.MaxAccountTopics = maxTopics
	})
	next := make(chan int)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for a := range next {
				body := `{"event_name": "message_open", "data": {"account_id": ` + strconv.Itoa(a) + `, "member_id": 6160010079, "mailing_id": 5012345678, "subject": "Hi", "timestamp": "@D:2026-11-20T10:01:02"}}`
				res, err := http.Post(tg.url+"/webhooks/emma/"+testToken, "application/json", strings.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					failed.Add(1)
				}
			}
		})
	}
	for a := 1; a <= accounts; a++ {
		next <- a
	}
	close(next)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d callbacks not answered 200", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(tg.brokers...)}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var perAccount int
	for _, tp := range md.Topics {
		if strings.HasPrefix(tp.Name, "emma.account.") {
			perAccount++
		}
	}
	if perAccount != maxTopics {
		t.Fatalf("%d per-account topics created, want the bound %d", perAccount, maxTopics)
	}
	held := func(topic string) int64 {
		t.Helper()
		var req []kafka.OffsetRequest
		for _, tp := range md.Topics {
			if tp.Name == topic {
				for _, p := range tp.Partitions {
					req = append(req, kafka.LastOffsetOf(p.ID))
				}
			}
		}
		res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, p := range res.Topics[topic] {
			if p.Error != nil {
				t.Fatalf("%s/%d: %v", topic, p.Partition, p.Error)
			}
			n += p.LastOffset
		}
		return n
	}
	if n := held("emma.events"); n != accounts {
		t.Fatalf("the firehose holds %d events, want %d", n, accounts)
	}
	if n := held("emma.message_open"); n != accounts-maxTopics {
		t.Fatalf("the template topic holds %d copies, want %d", n, accounts-maxTopics)
	}
}
