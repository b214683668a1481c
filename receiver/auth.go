package receiver

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/emma-gateway/emma-gateway/events"
)

// credential is one accepted token. The token is kept only as a SHA-256
// digest, so comparisons take the same time whatever a guess's length.
type credential struct {
	digest [sha256.Size]byte
	// accounts are the Emma accounts the token may post for; nil: any.
	accounts map[events.ID]bool
}

// mayPostFor reports whether the token may post an event of account.
func (c *credential) mayPostFor(account events.ID) bool {
	return c.accounts == nil || c.accounts[account]
}

var errTokenSyntax = errors.New(`must be at least 16 characters without spaces, commas, colons or URL delimiters, optionally followed by ":" and account ids separated by "|"`)

// parseToken reads "token" or "token:1743199|1743200". Its errors never
// quote the token.
func parseToken(spec string) (credential, error) {
	tok, accts, bound := strings.Cut(strings.TrimSpace(spec), ":")
	if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n,/?#&%") {
		return credential{}, errTokenSyntax
	}
	c := credential{digest: sha256.Sum256([]byte(tok))}
	if !bound {
		return c, nil
	}
	c.accounts = map[events.ID]bool{}
	for _, a := range strings.Split(accts, "|") {
		n, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
		if err != nil || n <= 0 {
			return credential{}, errTokenSyntax
		}
		c.accounts[events.ID(n)] = true
	}
	return c, nil
}

// credentials is an immutable set of tokens, swapped whole on reload.
type credentials []credential

// match compares candidate with every token, in constant time, and returns
// the one it equals, or nil.
func (cs credentials) match(candidate string) *credential {
	d := sha256.Sum256([]byte(candidate))
	found := -1
	for i := range cs {
		eq := subtle.ConstantTimeCompare(d[:], cs[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return nil
	}
	return &cs[found]
}

// tokenStore holds the tokens in force: those configured, and those of the
// tokens file as last read successfully.
type tokenStore struct {
	static   credentials
	file     string // "" without a tokens file
	required bool   // false only in unauthenticated mode
	log      *slog.Logger
	fromFile *reloadable[credentials] // nil without a tokens file
}

func newTokenStore(cfg Config, log *slog.Logger) (*tokenStore, error) {
	ts := &tokenStore{file: cfg.TokensFile, log: log, required: len(cfg.Tokens) > 0 || cfg.TokensFile != ""}
	for _, spec := range cfg.Tokens {
		c, err := parseToken(spec)
		if err != nil {
			return nil, err // Validate has reported it
		}
		ts.static = append(ts.static, c)
	}
	if ts.file != "" {
		var err error
		if ts.fromFile, err = newReloadable(ts.loadFile, ts.file); err != nil {
			return nil, err
		}
		ts.warnIfEmpty()
	}
	return ts, nil
}

// current returns the tokens in force: the static ones, then the file's.
func (ts *tokenStore) current() credentials {
	if ts.fromFile == nil {
		return ts.static
	}
	return *ts.fromFile.get()
}

// loadFile reads the tokens file, the static tokens first.
func (ts *tokenStore) loadFile() (credentials, error) {
	b, err := os.ReadFile(ts.file)
	if err != nil {
		return nil, fmt.Errorf("receiver: tokens file: %w", err)
	}
	fromFile, err := parseTokensFile(b)
	if err != nil {
		return nil, fmt.Errorf("receiver: tokens file %s: %w", ts.file, err)
	}
	return append(append(credentials{}, ts.static...), fromFile...), nil
}

func (ts *tokenStore) warnIfEmpty() {
	if len(ts.current()) == 0 {
		ts.log.Warn("the tokens file holds no tokens: every webhook callback is refused")
	}
}

// reload rereads the tokens file. On error the tokens in force stay.
func (ts *tokenStore) reload() error {
	if err := ts.fromFile.reload(); err != nil {
		return err
	}
	ts.warnIfEmpty()
	return nil
}

// parseTokensFile reads one token a line; blank lines and lines starting
// with # are skipped. Errors name the line, never the token.
func parseTokensFile(b []byte) (credentials, error) {
	var cs credentials
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		c, err := parseToken(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		cs = append(cs, c)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return cs, errors.Join(errs...)
}

// watch reloads the tokens file when it changes, until stop is closed. A
// file that stays broken is reported once per change, not once per tick.
func (ts *tokenStore) watch(every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		reloaded, err := ts.fromFile.reloadIfChanged()
		switch {
		case err != nil:
			if err.Error() != lastErr {
				ts.log.Error("keeping the webhook tokens in force", "error", err)
				lastErr = err.Error()
			}
		case reloaded:
			lastErr = ""
			ts.warnIfEmpty()
			ts.log.Info("webhook tokens reloaded", "tokens", len(ts.current()))
		}
	}
}

// authenticate accepts the token as the {token} path segment, the token
// query parameter, or the password of HTTP Basic auth. It returns the
// matching token, or nil in unauthenticated mode.
func (s *Server) authenticate(c echo.Context) (*credential, error) {
	if !s.tokens.required {
		return nil, nil // unauthenticated mode, allowed explicitly
	}
	cs := s.tokens.current()
	r := c.Request()
	_, pass, basic := r.BasicAuth()
	// Echo's QueryParam parses the whole query into a map; a POST has
	// none, and its parse would be work for nothing on every callback.
	var query string
	if r.URL.RawQuery != "" {
		query = c.QueryParam("token")
	}
	candidates := [...]string{c.Param("token"), query, pass}
	for _, cand := range candidates {
		if cand == "" {
			continue
		}
		if cred := cs.match(cand); cred != nil {
			return cred, nil
		}
	}
	p := problem(http.StatusUnauthorized, outcomeUnauthorized, "missing or wrong webhook token")
	if basic {
		// Challenge only a client that tried Basic: a browser that did not
		// must not be invited to prompt for credentials.
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="emma-gateway", charset="UTF-8"`)
	}
	return nil, p
}

// IsWebhookToken reports, in constant time, whether tok is one of the
// webhook tokens in force, those of the tokens file as last read included:
// the operator console refuses such a credential even if it equals its
// admin token, so that a webhook token never opens it.
func (s *Server) IsWebhookToken(tok string) bool {
	return s.tokens.current().match(tok) != nil
}

// ReloadTokens rereads the tokens file now (on SIGHUP). Without a tokens
// file it does nothing. On error the tokens in force stay, and the error is
// logged and returned.
func (s *Server) ReloadTokens() error {
	if s.tokens.file == "" {
		return nil
	}
	if err := s.tokens.reload(); err != nil {
		s.log.Error("keeping the webhook tokens in force", "error", err)
		return err
	}
	s.log.Info("webhook tokens reloaded", "tokens", len(s.tokens.current()))
	return nil
}
