package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
)

const (
	adminToken  = "admin-token-0123456789abcdef"
	openPayload = `{"event_name":"message_open","data":{"account_id":1743199,"member_id":6160010079,"mailing_id":5012345678,"subject":"Hi","timestamp":"@D:2026-11-20T10:01:02"}}`
)

// consoleGet fetches path with the Authorization header auth ("" for none).
func consoleGet(t *testing.T, target, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestConsoleShowsTheGatewaysCallbacksAndDeadLetters(t *testing.T) {
	// The embedded broker, with webhook tokens: the console needs the
	// admin token (development mode, open, is without tokens).
	tg := startTestGatewayWith(t, []string{"--admin-token", adminToken}, nil)
	if code, _ := consoleGet(t, tg.url+"/console/api/state", ""); code != 401 {
		t.Fatalf("console of an embedded gateway with webhook tokens, no credential: %d, want 401", code)
	}
	auth := basic("oncall", adminToken)
	if code, _ := tg.callback(t, http.MethodPost, openPayload); code != 200 {
		t.Fatalf("callback: %d", code)
	}
	if code, _ := tg.callback(t, http.MethodGet, `{"event_name":"message_open","data":{"account_id":1}}`); code != 422 {
		t.Fatalf("invalid callback: %d", code)
	}
	code, body := consoleGet(t, tg.url+"/console/api/state", auth)
	if code != 200 {
		t.Fatalf("console state: %d %s", code, body)
	}
	var st struct {
		Recent []struct {
			Method, Event, Account, Outcome string
			EventID                         string `json:"event_id"`
			Status                          int
			Topic                           string
			Partition                       int32
			Offset                          int64
		} `json:"recent"`
		DeadLetters []struct {
			Event, Reason string
			Fields        []struct{ Field string }
		} `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Recent) != 2 || len(st.DeadLetters) != 1 {
		t.Fatalf("console state: %s", body)
	}
	ok, bad := st.Recent[1], st.Recent[0]
	if ok.Status != 200 || ok.Outcome != "accepted" || ok.Method != "POST" || ok.Account != "1743199" || ok.Topic != "emma.message_open" || ok.Partition < 0 || ok.Offset != 0 || len(ok.EventID) != 32 {
		t.Errorf("accepted row: %+v", ok)
	}
	if bad.Status != 422 || bad.Method != "GET" || bad.Topic != "emma.deadletter" || bad.Offset != 0 {
		t.Errorf("invalid row: %+v", bad)
	}
	if dl := st.DeadLetters[0]; dl.Reason != "invalid" || len(dl.Fields) == 0 || dl.Fields[0].Field == "" {
		t.Errorf("dead letter: %+v", dl)
	}
	for _, secret := range []string{testToken, "6160010079"} {
		if strings.Contains(body, secret) {
			t.Errorf("the console state holds %q", secret)
		}
	}
	if code, page := consoleGet(t, tg.url+"/console", auth); code != 200 || !strings.Contains(page, "emma.message_open") {
		t.Errorf("console page: %d", code)
	}
}

func TestConsoleAccessOutsideDevelopmentMode(t *testing.T) {
	b, err := devkafka.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	brokers := "--kafka-brokers=" + strings.Join(b.Addrs(), ",")
	closed := startTestGatewayWith(t, []string{brokers}, nil)
	if code, _ := consoleGet(t, closed.url+"/console", ""); code != 404 {
		t.Errorf("no admin token: /console answers %d, want 404", code)
	}
	if code, _ := consoleGet(t, closed.url+"/console", "Bearer "+testToken); code != 404 {
		t.Errorf("no admin token, a webhook token: /console answers %d, want 404", code)
	}

	open := startTestGatewayWith(t, []string{brokers, "--admin-token", adminToken}, nil)
	for _, c := range []struct {
		auth string
		want int
	}{
		{"", 401},
		{"Bearer " + testToken, 401},
		{basic("emma", testToken), 401},
		{"Bearer " + adminToken[:20], 401},
		{"Bearer " + adminToken, 200},
		{basic("oncall", adminToken), 200},
	} {
		if code, _ := consoleGet(t, open.url+"/console", c.auth); code != c.want {
			t.Errorf("Authorization %q: %d, want %d", c.auth, code, c.want)
		}
	}
	if strings.Contains(open.logs.String(), adminToken) {
		t.Error("the admin token is in the log")
	}
}

func basic(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

func TestServeRefusesABadAdminToken(t *testing.T) {
	for _, c := range []struct {
		name, token string
	}{
		{"too short", "short-token"},
		{"a webhook token", testToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"EMMA_GATEWAY_TOKENS": testToken, "EMMA_GATEWAY_ADMIN_TOKEN": c.token}
			_, err := gateway.Load(nil, func(k string) string { return env[k] })
			if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), "admin token") {
				t.Fatalf("Load: %v", err)
			}
			if strings.Contains(err.Error(), c.token) {
				t.Errorf("the token is in the error: %v", err)
			}
		})
	}
}
