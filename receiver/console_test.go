package receiver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/console"
)

func TestRecorderGetsEveryAnswerAndDeadLetter(t *testing.T) {
	for _, placing := range []bool{true, false} {
		name := "a sink that says where"
		var sink Sink = placingDiscard{}
		if !placing {
			name = "a plain sink"
			sink = &recorder{}
		}
		t.Run(name, func(t *testing.T) {
			rec := console.NewRecorder(console.DefaultRecorderConfig())
			cfg := DefaultConfig()
			cfg.Tokens = []string{token}
			set := testSettings(t)
			s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: sink, Recorder: rec}, set)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			t.Cleanup(ts.Close)
			hook := ts.URL + "/webhooks/emma/" + token
			for _, c := range []struct {
				req  *http.Request
				want int
			}{
				{post(t, hook, "application/json", openEvent), 200},
				{post(t, hook, "application/json", `{"event_name":"message_open","data":{"account_id":1}}`), 422},
				{post(t, ts.URL+"/webhooks/emma/wrong-token-0123456789", "application/json", openEvent), 401},
			} {
				if a := doRaw(t, c.req); a.status != c.want {
					t.Fatalf("status %d, want %d", a.status, c.want)
				}
			}
			snap := rec.Snapshot()
			if len(snap.Recent) != 3 {
				t.Fatalf("recorded %d callbacks, want 3: %+v", len(snap.Recent), snap.Recent)
			}
			unauth, invalid, ok := snap.Recent[0], snap.Recent[1], snap.Recent[2]
			if ok.Status != 200 || ok.Outcome != "accepted" || ok.Method != "POST" || ok.Event != "message_open" || ok.Account != 1743199 || len(ok.EventID) != 32 || ok.Latency <= 0 {
				t.Errorf("accepted callback: %+v", ok)
			}
			if invalid.Status != 422 || invalid.Outcome != "invalid" || invalid.Account != 1 {
				t.Errorf("invalid callback: %+v", invalid)
			}
			if unauth.Status != 401 || unauth.Event != "" || unauth.EventID != "" {
				t.Errorf("unauthorized callback: %+v", unauth)
			}
			wantOK, wantDL := Placement{Topic: "emma.message_open", Partition: 1, Offset: 42}, Placement{Topic: "emma.deadletter", Partition: 0, Offset: 7}
			if !placing {
				wantOK, wantDL = Placement{Partition: -1, Offset: -1}, Placement{Partition: -1, Offset: -1}
			}
			if got := (Placement{ok.Topic, ok.Partition, ok.Offset, ok.Spooled}); got != wantOK {
				t.Errorf("accepted callback placed %+v, want %+v", got, wantOK)
			}
			if got := (Placement{invalid.Topic, invalid.Partition, invalid.Offset, invalid.Spooled}); got != wantDL {
				t.Errorf("invalid callback placed %+v, want %+v", got, wantDL)
			}
			if len(snap.DeadLetters) != 1 {
				t.Fatalf("dead letters: %+v", snap.DeadLetters)
			}
			dl := snap.DeadLetters[0]
			if dl.Reason != "invalid" || dl.Event != "message_open" || dl.Account != 1 || dl.Method != "POST" || len(dl.Fields) == 0 || dl.Offset != wantDL.Offset {
				t.Errorf("dead letter: %+v", dl)
			}
			for _, c := range snap.Recent {
				if strings.Contains(c.EventID+c.Event+c.Topic, token) {
					t.Errorf("a token in the record: %+v", c)
				}
			}
		})
	}
}
