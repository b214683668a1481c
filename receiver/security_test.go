package receiver

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

const (
	// boundToken may post for account 1743199 only (openEvent's).
	boundToken = "bound-token-1743199-abcdef"
	// marker is planted in payloads and queries: no answer may echo it.
	marker = "PLANTED-MARKER-7f3a"
)

// rawAnswer is an answer with its body as bytes.
type rawAnswer struct {
	status int
	header http.Header
	body   string
}

func doRaw(t *testing.T, req *http.Request) rawAnswer {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawAnswer{status: res.StatusCode, header: res.Header, body: string(b)}
}

// TestBadInputMatrix sends what a hostile or broken client might, checks
// each answer's status, that no 4xx answer echoes a token, the query or the
// payload, and that the gateway stays healthy after each.
func TestBadInputMatrix(t *testing.T) {
	sink := &recorder{}
	ts := newTestServer(t, func(c *Config) {
		c.Tokens = append(c.Tokens, boundToken+":1743199|42")
	}, sink)
	hook := ts.URL + "/webhooks/emma/" + token
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rnd.UintN(256))
	}
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	event := func(data string) string {
		return `{"event_name":"message_open","data":{"account_id":1743199,"mailing_id":5012345678,"timestamp":"@D:2026-11-20T10:01:02",` + data + `}}`
	}
	otherAccount := strings.Replace(openEvent, "1743199", "1743200", 1)
	tests := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"random bytes", post(t, hook, "application/json", string(random)), 400},
		{"random bytes by GET", get(t, withPayload(hook, string(random[:512]))), 400},
		{"huge JSON", post(t, hook, "application/json", `{"event_name":"message_open","pad":"`+strings.Repeat(marker, 1<<17)+`"}`), 413},
		{"100,000-deep array", post(t, hook, "application/json", deep), 400},
		{"deep JSON inside data", post(t, hook, "", event(`"member_id":1,"x":`+strings.Repeat("[", 65)+strings.Repeat("]", 65))), 400},
		{"1e400 as an id", post(t, hook, "", event(`"member_id":1e400`)), 422},
		{"1e400 in an unknown field", post(t, hook, "", event(`"member_id":1,"score":1e400`)), 200},
		{"1e400 in a lenient field", post(t, hook, "", `{"event_name":"member_update","data":{"account_id":1743199,"member_id":1e400}}`), 200},
		{"id overflowing int64", post(t, hook, "", event(`"member_id":99999999999999999999`)), 422},
		{`member_id "12x"`, post(t, hook, "", event(`"member_id":"12x"`)), 422},
		{"event_name a number", post(t, hook, "", `{"event_name":7,"data":{}}`), 400},
		{"data an array", post(t, hook, "", `{"event_name":"message_open","data":[1,2]}`), 400},
		{"top level an array", post(t, hook, "", `[{"event_name":"message_open"}]`), 400},
		{"subject a number", post(t, hook, "", event(`"member_id":1,"subject":12`)), 422},
		{"duplicate keys: the last wins", post(t, hook, "", `{"event_name":"message_open","event_name":"member_birthday","data":{"account_id":1743199}}`), 200},
		{"invalid UTF-8", post(t, hook, "", "{\"event_name\":\"message_open\",\"data\":{\"subject\":\"\xff\xfe"+marker+"\"}}"), 400},
		{"NUL bytes", post(t, hook, "", "\x00\x00{}"), 400},
		{"100 KB query string", get(t, withPayload(hook+"?pad="+strings.Repeat("a", 100_000), openEvent)), 200},
		{"query string over the limit", get(t, withPayload(hook+"?pad="+strings.Repeat(marker, 30_000), openEvent)), 414},
		{"absent token", post(t, ts.URL+"/webhooks/emma", "", openEvent), 401},
		{"wrong token", post(t, ts.URL+"/webhooks/emma/"+strings.Repeat("x", 24), "", openEvent), 401},
		{"token in another parameter", post(t, ts.URL+"/webhooks/emma?tok="+token, "", openEvent), 401},
		{"bound token, its account", post(t, ts.URL+"/webhooks/emma/"+boundToken, "", openEvent), 200},
		{"bound token, another account", post(t, ts.URL+"/webhooks/emma/"+boundToken, "", otherAccount), 403},
		{"bound token, no account", post(t, ts.URL+"/webhooks/emma/"+boundToken, "", `{"event_name":"member_birthday","data":{}}`), 403},
		{"bound token, invalid event of another account", post(t, ts.URL+"/webhooks/emma/"+boundToken, "", `{"event_name":"message_open","data":{"account_id":7}}`), 403},
		{"unbound token, another account", post(t, hook, "", otherAccount), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink.mu.Lock()
			nEvents, nDead := len(sink.events), len(sink.dead)
			sink.mu.Unlock()
			a := doRaw(t, tt.req)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %.300s", a.status, tt.status, a.body)
			}
			if a.status >= 400 {
				if a.header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("content type %q", a.header.Get("Content-Type"))
				}
				for _, secret := range []string{token, boundToken, marker, "1743199", "pad="} {
					if strings.Contains(a.body, secret) {
						t.Fatalf("the answer echoes %q: %.300s", secret, a.body)
					}
				}
			}
			sink.mu.Lock()
			gotEvents, gotDead := len(sink.events)-nEvents, len(sink.dead)-nDead
			sink.mu.Unlock()
			if (a.status == 200) != (gotEvents == 1) {
				t.Fatalf("%d events published for status %d", gotEvents, a.status)
			}
			if a.status == 403 && gotDead != 0 {
				t.Fatalf("a forbidden account's callback was dead-lettered")
			}
			if h := doRaw(t, get(t, ts.URL+"/healthz")); h.status != 200 {
				t.Fatalf("healthz %d after the request", h.status)
			}
		})
	}
	// The refusals are counted by outcome.
	m := doRaw(t, get(t, ts.URL+"/metrics"))
	for _, outcome := range []string{outcomeForbiddenAccount, outcomeTooLarge, outcomeMalformed, outcomeInvalid, outcomeUnauthorized} {
		if !strings.Contains(m.body, `outcome="`+outcome+`"`) {
			t.Errorf("metrics lack outcome %q", outcome)
		}
	}
}

func TestConfigValidateSecuritySettings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tokens = []string{"good-token-0123456789:12|x", "other-token-0123456789:"}
	cfg.AllowedCIDRs = []string{"10.0.0.0/8", "not-a-net"}
	cfg.TrustedProxies = []string{"192.0.2.1", "300.1.1.1"}
	cfg.MaxQueryBytes = 0
	cfg.TLSCertFile = "cert.pem"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"token #1", "token #2", `allowed CIDR "not-a-net"`, `trusted proxy "300.1.1.1"`, "max query bytes", "TLS needs both"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "good-token") {
		t.Errorf("error quotes a token: %v", err)
	}
	cfg = DefaultConfig()
	cfg.TokensFile = "tokens.txt"
	if err := cfg.Validate(); err != nil {
		t.Errorf("a tokens file alone is enough: %v", err)
	}
}

func TestAllowedCIDRsAndTrustedProxies(t *testing.T) {
	// httptest's clients connect from 127.0.0.1.
	tests := []struct {
		name    string
		proxies []string
		xff     []string
		status  int
	}{
		{"direct client outside the list", nil, nil, 403},
		{"forwarded header from an untrusted peer is ignored", nil, []string{"10.1.2.3"}, 403},
		{"client behind a trusted proxy", []string{"127.0.0.1"}, []string{"10.1.2.3"}, 200},
		{"right-most untrusted address counts", []string{"127.0.0.1"}, []string{"10.1.2.3, 192.0.2.7"}, 403},
		{"a spoofed left-most address does not help", []string{"127.0.0.1"}, []string{"192.0.2.7, 10.1.2.3"}, 200},
		{"several proxies are skipped", []string{"127.0.0.0/8", "172.16.0.0/12"}, []string{"10.9.9.9, 172.16.0.5", "172.16.0.6"}, 200},
		{"an address beyond the client is not believed", []string{"127.0.0.1"}, []string{"10.1.2.3, 192.0.2.7, 172.16.0.5"}, 403},
		{"garbage in the header is not believed", []string{"127.0.0.1"}, []string{"10.1.2.3, nonsense"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) {
				c.AllowedCIDRs = []string{"10.0.0.0/8"}
				c.TrustedProxies = tt.proxies
			}, &recorder{})
			req := post(t, ts.URL+"/webhooks/emma/"+token, "", openEvent)
			req.Header["X-Forwarded-For"] = tt.xff
			if a := doRaw(t, req); a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
				if a := doRaw(t, get(t, ts.URL+p)); a.status != 200 {
					t.Fatalf("%s %d from outside the allow-list", p, a.status)
				}
			}
		})
	}
}

func TestRateLimitKeysOnTheForwardedClientIP(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.RatePerIP, c.RateBurst = 0.001, 1
		c.TrustedProxies = []string{"127.0.0.1"}
	}, &recorder{})
	send := func(client string) int {
		req := post(t, ts.URL+"/webhooks/emma/"+token, "", openEvent)
		req.Header.Set("X-Forwarded-For", client)
		return doRaw(t, req).status
	}
	if s := send("192.0.2.1"); s != 200 {
		t.Fatalf("first request %d", s)
	}
	if s := send("192.0.2.1"); s != 429 {
		t.Fatalf("second request from the same client %d, want 429", s)
	}
	if s := send("192.0.2.2"); s != 200 {
		t.Fatalf("another client behind the same proxy %d, want 200", s)
	}
}

// writeFile replaces path atomically (as secret managers do: a reader
// never sees a half-written file), with modification time mod, so that a
// change is seen even within the file system's time resolution.
func writeFile(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never: %s", what)
}

func startTokensFileServer(t *testing.T, file string, interval time.Duration) (*Server, *syncBuffer) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.TokensFile = file
	cfg.TokensReloadInterval = interval
	logs := &syncBuffer{}
	set := telemetry.Settings{Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: &recorder{}}, set)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s, logs
}

func TestTokensFileRotation(t *testing.T) {
	const a, b = "first-token-0000000000", "second-token-111111111"
	base := time.Now().Add(-time.Hour)
	statusWith := func(s *Server, tok string) int {
		return doRaw(t, post(t, "http://"+s.Addr().String()+"/webhooks/emma/"+tok, "", openEvent)).status
	}

	t.Run("reread on change", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "tokens")
		writeFile(t, file, "# Emma production\n"+a+"\n\n", base)
		s, logs := startTokensFileServer(t, file, 20*time.Millisecond)
		if st := statusWith(s, a); st != 200 {
			t.Fatalf("token from the file: %d", st)
		}
		writeFile(t, file, a+"\n"+b+":1743199\n", base.Add(time.Second))
		eventually(t, "the added token is accepted", func() bool { return statusWith(s, b) == 200 })
		writeFile(t, file, b+"\n", base.Add(2*time.Second))
		eventually(t, "the removed token is refused", func() bool { return statusWith(s, a) == 401 && statusWith(s, b) == 200 })

		// A broken file keeps the tokens in force and says so, without the token.
		writeFile(t, file, b+"\nshort\n", base.Add(3*time.Second))
		eventually(t, "the broken file is reported", func() bool { return strings.Contains(logs.String(), "line 2") })
		if st := statusWith(s, b); st != 200 {
			t.Fatalf("token in force after a broken file: %d", st)
		}
		if strings.Contains(logs.String(), b) || strings.Contains(logs.String(), "short") {
			t.Fatalf("the log quotes a token:\n%s", logs.String())
		}
		// An empty file shuts everyone out: a tokens file always means
		// authentication.
		writeFile(t, file, "# nobody\n", base.Add(4*time.Second))
		eventually(t, "an empty file refuses every token", func() bool { return statusWith(s, b) == 401 })
		if st := doRaw(t, post(t, "http://"+s.Addr().String()+"/webhooks/emma", "", openEvent)).status; st != 401 {
			t.Fatalf("no token with an empty tokens file: %d", st)
		}
	})

	t.Run("reread on ReloadTokens (SIGHUP)", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "tokens")
		writeFile(t, file, a+"\n", base)
		s, _ := startTokensFileServer(t, file, time.Hour) // no polling in this test
		writeFile(t, file, b+"\n", base.Add(time.Second))
		if st := statusWith(s, b); st != 401 {
			t.Fatalf("new token before the reload: %d", st)
		}
		if err := s.ReloadTokens(); err != nil {
			t.Fatal(err)
		}
		if statusWith(s, b) != 200 || statusWith(s, a) != 401 {
			t.Fatal("the reload did not replace the tokens")
		}
		if err := os.Remove(file); err != nil {
			t.Fatal(err)
		}
		if err := s.ReloadTokens(); err == nil {
			t.Fatal("a missing file reloaded without error")
		}
		if st := statusWith(s, b); st != 200 {
			t.Fatalf("token in force after a failed reload: %d", st)
		}
	})

	t.Run("a bad file at start is an error", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "tokens")
		writeFile(t, file, "too-short\n", base)
		cfg := DefaultConfig()
		cfg.TokensFile = file
		_, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: &recorder{}}, testSettings(t))
		if err == nil || !strings.Contains(err.Error(), "line 1") || strings.Contains(err.Error(), "too-short") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestTokenSyntax(t *testing.T) {
	tests := []struct {
		spec     string
		ok       bool
		accounts []events.ID
	}{
		{"plain-token-0123456789", true, nil},
		{"bound-token-0123456789:1743199", true, []events.ID{1743199}},
		{"bound-token-0123456789:1|2| 3", true, []events.ID{1, 2, 3}},
		{"bound-token-0123456789:", false, nil},
		{"bound-token-0123456789:1||2", false, nil},
		{"bound-token-0123456789:-5", false, nil},
		{"bound-token-0123456789:99999999999999999999", false, nil},
		{"short:1", false, nil},
		{"has/slash-0123456789", false, nil},
	}
	for _, tt := range tests {
		c, err := parseToken(tt.spec)
		if (err == nil) != tt.ok {
			t.Errorf("%q: error %v", tt.spec, err)
			continue
		}
		if !tt.ok {
			continue
		}
		if (c.accounts == nil) != (tt.accounts == nil) || len(c.accounts) != len(tt.accounts) {
			t.Errorf("%q: accounts %v", tt.spec, c.accounts)
		}
		for _, a := range tt.accounts {
			if !c.mayPostFor(a) {
				t.Errorf("%q: may not post for %d", tt.spec, a)
			}
		}
		if tt.accounts != nil && c.mayPostFor(0) {
			t.Errorf("%q: may post an event without account", tt.spec)
		}
	}
}

func TestIsWebhookTokenSeesTheTokensFileAsReread(t *testing.T) {
	const a, b = "first-token-0000000000", "second-token-111111111"
	base := time.Now().Add(-time.Hour)
	file := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, file, a+"\n", base)
	s, _ := startTokensFileServer(t, file, time.Hour)
	if !s.IsWebhookToken(a) || s.IsWebhookToken(b) {
		t.Fatalf("before the reload: %v %v", s.IsWebhookToken(a), s.IsWebhookToken(b))
	}
	writeFile(t, file, b+":1743199\n", base.Add(time.Second))
	if err := s.ReloadTokens(); err != nil {
		t.Fatal(err)
	}
	if s.IsWebhookToken(a) || !s.IsWebhookToken(b) {
		t.Errorf("after the reload: %v %v", s.IsWebhookToken(a), s.IsWebhookToken(b))
	}
}
