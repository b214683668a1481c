package emmaapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/emmaapi"
	"github.com/emma-gateway/emma-gateway/internal/emulator"
)

const (
	pub  = "PUBLIC-KEY-abc123"
	priv = "PRIVATE-KEY-xyz789"
)

// The sample responses of Emma's documentation, verbatim (tabs and all).
const (
	seedList = `[
	  {
		"url": "http://myemma.com", 
		"webhook_id": 100, 
		"method": "POST", 
		"account_id": 100, 
		"event": "mailing_finish"
	  }, 
	  {
		"url": "http://tech.myemma.com", 
		"webhook_id": 101, 
		"method": "POST", 
		"account_id": 100, 
		"event": "mailing_finish"
	  }
	]`
	seedGet = `{
	  "url": "http://myemma.com", 
	  "event": "mailing_finish", 
	  "method": "POST", 
	  "account_id": 100, 
	  "webhook_id": 100
	}`
	seedEvents = `[
	  {
		"event_name": "mailing_finish", 
		"webhook_event_id": 1, 
		"description": "Fired when a mailing is finished."
	  }, 
	  {
		"event_name": "mailing_start", 
		"webhook_event_id": 2, 
		"description": "Fired when a mailing starts."
	  }, 
	  {
		"event_name": "member_signup", 
		"webhook_event_id": 3, 
		"description": "Fired when a member signs up through a signup form."
	  }, 
	  {
		"event_name": "message_open", 
		"webhook_event_id": 4, 
		"description": "Fired when a message is opened."
	  }, 
	  {
		"event_name": "message_click", 
		"webhook_event_id": 5, 
		"description": "Fired when a link in a message is clicked."
	  }, 
	  {
		"event_name": "member_optout", 
		"webhook_event_id": 6, 
		"description": "Fired when a member opts out."
	  }, 
	  {
		"event_name": "message_share", 
		"webhook_event_id": 7, 
		"description": "Fired when a member shares a message."
	  }, 
	  {
		"event_name": "message_share_click", 
		"webhook_event_id": 8, 
		"description": "Fired when a someone follows a link a member has shared."
	  }, 
	  {
		"event_name": "import_finish", 
		"webhook_event_id": 9, 
		"description": "Fired when a member import completes."
	  }, 
	  {
		"event_name": "member_update", 
		"webhook_event_id": 10, 
		"description": "Fired when a member is updated."
	  }, 
	  {
		"event_name": "member_delete", 
		"webhook_event_id": 11, 
		"description": "Fired when a member is deleted."
	  }, 
	  {
		"event_name": "member_add_to_group", 
		"webhook_event_id": 12, 
		"description": "Fired when a member(s) is added to a group(s)."
	  }, 
	  {
		"event_name": "member_remove_from_group", 
		"webhook_event_id": 13, 
		"description": "Fired when a member(s) is removed from a group(s)."
	  }, 
	  {
		"event_name": "group_create", 
		"webhook_event_id": 14, 
		"description": "Fired when a group is created."
	  }, 
	  {
		"event_name": "group_delete", 
		"webhook_event_id": 15, 
		"description": "Fired when a group is deleted."
	  }, 
	  {
		"event_name": "group_update", 
		"webhook_event_id": 16, 
		"description": "Fired when a group is updated."
	  }, 
	  {
		"event_name": "member_status_update", 
		"webhook_event_id": 17, 
		"description": "Fired when a member's status changes."
	  }, 
	  {
		"event_name": "message_forward", 
		"webhook_event_id": 18, 
		"description": "Fired when a message is forwarded."
	  }
	]`
	seedCreate = "1024"
	seedUpdate = "100"
	seedDelete = "true"
)

// seedEventTypes is the documentation's list of event types, as the
// emulator also serves it.
func seedEventTypes() []emmaapi.EventType {
	var out []emmaapi.EventType
	for _, t := range events.Types() {
		if t.WebhookEventID > 0 {
			out = append(out, emmaapi.EventType{Name: t.Name, ID: t.WebhookEventID, Description: t.Description})
		}
	}
	return out
}

func config(base string) emmaapi.Config {
	c := emmaapi.DefaultConfig()
	c.BaseURL, c.AccountID, c.PublicKey, c.PrivateKey = base, "100", pub, priv
	c.RetryBackoff, c.MaxBackoff, c.MaxRetries = time.Millisecond, 4*time.Millisecond, 3
	c.Timeout = 5 * time.Second
	return c
}

func newClient(t *testing.T, cfg emmaapi.Config) *emmaapi.Client {
	t.Helper()
	c, err := emmaapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seedServer answers one request as the documentation's sample does and
// records what it received.
type seenRequest struct {
	method, path, user, pass, contentType string
	body                                  map[string]any
}

func seedServer(t *testing.T, answer string) (*httptest.Server, *seenRequest) {
	t.Helper()
	seen := &seenRequest{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.method, seen.path = r.Method, r.URL.Path
		seen.user, seen.pass, _ = r.BasicAuth()
		seen.contentType = r.Header.Get("Content-Type")
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &seen.body); err != nil {
				t.Errorf("body is not a JSON object: %s", b)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestClientReadsEverySampleResponseOfTheDocumentation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, answer, method, path string
		call                       func(*emmaapi.Client) (any, error)
		want                       any
		wantBody                   map[string]any
	}{
		{"list", seedList, "GET", "/100/webhooks",
			func(c *emmaapi.Client) (any, error) { return c.List(ctx) },
			[]emmaapi.Webhook{
				{ID: 100, AccountID: 100, Event: "mailing_finish", URL: "http://myemma.com", Method: "POST"},
				{ID: 101, AccountID: 100, Event: "mailing_finish", URL: "http://tech.myemma.com", Method: "POST"},
			}, nil},
		{"get", seedGet, "GET", "/100/webhooks/100",
			func(c *emmaapi.Client) (any, error) { return c.Get(ctx, 100) },
			emmaapi.Webhook{ID: 100, AccountID: 100, Event: "mailing_finish", URL: "http://myemma.com", Method: "POST"}, nil},
		{"events", seedEvents, "GET", "/100/webhooks/events",
			func(c *emmaapi.Client) (any, error) { return c.EventTypes(ctx) },
			seedEventTypes(), nil},
		{"create", seedCreate, "POST", "/100/webhooks",
			func(c *emmaapi.Client) (any, error) {
				return c.Create(ctx, emmaapi.WebhookParams{URL: "http://myemma.com/blog/", Event: "mailing_finish"})
			},
			int64(1024), map[string]any{"url": "http://myemma.com/blog/", "event": "mailing_finish", "public_key": pub}},
		{"update", seedUpdate, "PUT", "/100/webhooks/100",
			func(c *emmaapi.Client) (any, error) {
				return c.Update(ctx, 100, emmaapi.WebhookParams{URL: "http://tech.myemma.com/"})
			},
			int64(100), map[string]any{"url": "http://tech.myemma.com/"}},
		{"delete", seedDelete, "DELETE", "/100/webhooks/101",
			func(c *emmaapi.Client) (any, error) { return nil, c.Delete(ctx, 101) },
			nil, nil},
		{"delete all", seedDelete, "DELETE", "/100/webhooks",
			func(c *emmaapi.Client) (any, error) { return nil, c.DeleteAll(ctx) },
			nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := seedServer(t, tt.answer)
			got, err := tt.call(newClient(t, config(srv.URL)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
			if seen.method != tt.method || seen.path != tt.path {
				t.Fatalf("sent %s %s, want %s %s", seen.method, seen.path, tt.method, tt.path)
			}
			if seen.user != pub || seen.pass != priv {
				t.Fatalf("Basic auth %q:%q", seen.user, seen.pass)
			}
			if !reflect.DeepEqual(seen.body, tt.wantBody) {
				t.Fatalf("body %v, want %v", seen.body, tt.wantBody)
			}
			if tt.wantBody != nil && seen.contentType != "application/json" {
				t.Fatalf("Content-Type %q", seen.contentType)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		status   int
		answer   string
		call     func(*emmaapi.Client) error
		want     error
		attempts int32
	}{
		{"401 is bad credentials", 401, `{"error":"Unauthorized"}`, func(c *emmaapi.Client) error { _, err := c.List(ctx); return err }, emmaapi.ErrUnauthorized, 1},
		{"404 on get", 404, `Not found`, func(c *emmaapi.Client) error { _, err := c.Get(ctx, 7); return err }, emmaapi.ErrNotFound, 1},
		{"404 on update", 404, `Not found`, func(c *emmaapi.Client) error {
			_, err := c.Update(ctx, 7, emmaapi.WebhookParams{URL: "http://x"})
			return err
		}, emmaapi.ErrNotFound, 1},
		{"404 on delete", 404, `Not found`, func(c *emmaapi.Client) error { return c.Delete(ctx, 7) }, emmaapi.ErrNotFound, 1},
		{"403 retried then rate limited", 403, `Rate limit`, func(c *emmaapi.Client) error { _, err := c.List(ctx); return err }, emmaapi.ErrRateLimited, 4},
		{"403 on create retried too", 403, ``, func(c *emmaapi.Client) error {
			_, err := c.Create(ctx, emmaapi.WebhookParams{Event: "x", URL: "http://x"})
			return err
		}, emmaapi.ErrRateLimited, 4},
		{"500 on get retried", 500, `oops`, func(c *emmaapi.Client) error { _, err := c.List(ctx); return err }, emmaapi.ErrUnavailable, 4},
		{"500 on create not retried", 500, `oops`, func(c *emmaapi.Client) error {
			_, err := c.Create(ctx, emmaapi.WebhookParams{Event: "x", URL: "http://x"})
			return err
		}, emmaapi.ErrUnavailable, 1},
		{"400 is a bad request", 400, `{"error":"bad"}`, func(c *emmaapi.Client) error {
			_, err := c.Create(ctx, emmaapi.WebhookParams{Event: "x", URL: "http://x"})
			return err
		}, emmaapi.ErrBadRequest, 1},
		{"update answered false", 200, `false`, func(c *emmaapi.Client) error {
			_, err := c.Update(ctx, 7, emmaapi.WebhookParams{URL: "http://x"})
			return err
		}, emmaapi.ErrRefused, 1},
		{"delete answered false", 200, `false`, func(c *emmaapi.Client) error { return c.Delete(ctx, 7) }, emmaapi.ErrRefused, 1},
		{"answer not JSON", 200, `<html>`, func(c *emmaapi.Client) error { _, err := c.List(ctx); return err }, emmaapi.ErrBadResponse, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.answer)
			}))
			t.Cleanup(srv.Close)
			err := tt.call(newClient(t, config(srv.URL)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if got := n.Load(); got != tt.attempts {
				t.Fatalf("%d attempts, want %d", got, tt.attempts)
			}
			if strings.Contains(err.Error(), pub) || strings.Contains(err.Error(), priv) {
				t.Fatalf("the error shows a key: %v", err)
			}
			var apiErr *emmaapi.Error
			if tt.status != 200 && (!errors.As(err, &apiErr) || apiErr.Status != tt.status) {
				t.Fatalf("want an *Error with status %d, got %#v", tt.status, err)
			}
		})
	}
}

func TestClientRetriesRateLimitUntilEmmaAccepts(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		fmt.Fprint(w, "1024")
	}))
	t.Cleanup(srv.Close)
	id, err := newClient(t, config(srv.URL)).Create(context.Background(), emmaapi.WebhookParams{Event: "mailing_finish", URL: "http://x"})
	if err != nil || id != 1024 || n.Load() != 3 {
		t.Fatalf("id %d err %v after %d calls", id, err, n.Load())
	}
}

func TestClientDeadAPIIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more: connections are refused
	_, err = newClient(t, config("http://"+addr)).List(context.Background())
	if !errors.Is(err, emmaapi.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), priv) || strings.Contains(err.Error(), pub) {
		t.Fatalf("the error shows a key: %v", err)
	}
}

func TestClientTimesOutASilentAPI(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	cfg := config(srv.URL)
	cfg.Timeout, cfg.MaxRetries = 50*time.Millisecond, 1
	_, err := newClient(t, cfg).List(context.Background())
	if !errors.Is(err, emmaapi.ErrUnavailable) || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("error %v", err)
	}
}

func TestClientStopsWithItsContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	cfg := config(srv.URL)
	cfg.RetryBackoff, cfg.MaxBackoff, cfg.MaxRetries = time.Hour, time.Hour, 5
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := newClient(t, cfg).List(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, emmaapi.ErrRateLimited) {
		t.Fatalf("error %v", err)
	}
}

func TestConfigValidateReportsEveryProblemWithoutKeys(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*emmaapi.Config)
		want   []string
	}{
		{"valid", func(*emmaapi.Config) {}, nil},
		{"all missing", func(c *emmaapi.Config) { c.BaseURL, c.AccountID, c.PublicKey, c.PrivateKey = "", "", "", "" },
			[]string{"API URL is empty", "account id is empty", "public API key is empty", "private API key is empty"}},
		{"bad values", func(c *emmaapi.Config) { c.BaseURL, c.AccountID, c.Timeout = "ftp://x", "12a", 0 },
			[]string{"absolute http(s) URL", "positive integer", "timeout"}},
		{"credentials in URL", func(c *emmaapi.Config) { c.BaseURL = "https://u:" + priv + "@api.e2ma.net" },
			[]string{"must not carry credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config("https://api.e2ma.net")
			tt.mutate(&c)
			err := c.Validate()
			if (err == nil) != (tt.want == nil) {
				t.Fatalf("error %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), priv) {
				t.Fatalf("the error shows the key: %v", err)
			}
		})
	}
}

func TestKeysNeverPrinted(t *testing.T) {
	cfg := config("https://api.e2ma.net")
	c := newClient(t, cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(c), fmt.Sprintf("%v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", *c)} {
		if strings.Contains(s, pub) || strings.Contains(s, priv) {
			t.Fatalf("printed a key: %s", s)
		}
	}
}

// TestClientAgainstEmulator runs every call against the emulator, which
// keeps state, so that the calls are checked together.
func TestClientAgainstEmulator(t *testing.T) {
	ecfg := emulator.DefaultConfig()
	ecfg.PublicKey, ecfg.PrivateKey, ecfg.AccountID = pub, priv, 100
	em, err := emulator.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	c := newClient(t, config(srv.URL))
	ctx := context.Background()

	types, err := c.EventTypes(ctx)
	if err != nil || !reflect.DeepEqual(types, seedEventTypes()) || len(types) != 18 {
		t.Fatalf("event types %v %v", types, err)
	}
	id, err := c.Create(ctx, emmaapi.WebhookParams{Event: "mailing_finish", URL: "http://myemma.com/blog/"})
	if err != nil || id != 1024 {
		t.Fatalf("create: %d %v", id, err)
	}
	id2, err := c.Create(ctx, emmaapi.WebhookParams{Event: "message_open", URL: "http://gw/x", Method: "GET"})
	if err != nil || id2 != 1025 {
		t.Fatalf("create: %d %v", id2, err)
	}
	got, err := c.Get(ctx, id)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if diff := cmp.Diff(emmaapi.Webhook{ID: 1024, AccountID: 100, Event: "mailing_finish", URL: "http://myemma.com/blog/", Method: "POST"}, got); diff != "" {
		t.Fatalf("get (-want +got):\n%s", diff)
	}
	if uid, err := c.Update(ctx, id, emmaapi.WebhookParams{URL: "http://tech.myemma.com/"}); err != nil || uid != id {
		t.Fatalf("update: %d %v", uid, err)
	}
	if _, err := c.Update(ctx, id, emmaapi.WebhookParams{Method: "PATCH"}); !errors.Is(err, emmaapi.ErrRefused) {
		t.Fatalf("invalid update: %v", err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 2 || list[0].URL != "http://tech.myemma.com/" || list[1].Method != "GET" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		func() error { _, err := c.Get(ctx, id); return err }(),
		func() error { _, err := c.Update(ctx, id, emmaapi.WebhookParams{URL: "http://x/"}); return err }(),
		c.Delete(ctx, id),
	} {
		if !errors.Is(err, emmaapi.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	}
	if _, err := c.Create(ctx, emmaapi.WebhookParams{Event: "no_such_event", URL: "http://x/"}); !errors.Is(err, emmaapi.ErrBadRequest) {
		t.Fatalf("unknown event: %v", err)
	}
	if err := c.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if list, err := c.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after delete all: %v %v", list, err)
	}

	bad := config(srv.URL)
	bad.PrivateKey = "wrong"
	if _, err := newClient(t, bad).List(ctx); !errors.Is(err, emmaapi.ErrUnauthorized) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestEmulatorRateLimitIsRetriedThenReported(t *testing.T) {
	ecfg := emulator.DefaultConfig()
	ecfg.PublicKey, ecfg.PrivateKey, ecfg.CallsPerMinute, ecfg.AccountID = pub, priv, 1, 100
	em, err := emulator.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	c := newClient(t, config(srv.URL))
	if _, err := c.List(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = c.List(context.Background())
	if !errors.Is(err, emmaapi.ErrRateLimited) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("error %v", err)
	}
	if n := em.Calls()["GET /webhooks"]; n != 5 {
		t.Fatalf("%d calls, want 1 + 1 + 3 retries", n)
	}
}

// TestClientPacesItself: with one call a minute allowed, the second call
// must wait for the pacer, which a short context does not allow; Emma is
// never called for it.
func TestClientPacesItself(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fmt.Fprint(w, "[]")
	}))
	t.Cleanup(srv.Close)
	cfg := config(srv.URL)
	cfg.CallsPerMinute, cfg.Burst = 1, 1
	c := newClient(t, cfg)
	if _, err := c.List(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.List(ctx); err == nil {
		t.Fatal("a second call within the minute went through")
	}
	if n.Load() != 1 {
		t.Fatalf("Emma was called %d times, want 1", n.Load())
	}
}
