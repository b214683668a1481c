package receiver

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/labstack/echo/v4"
)

// tokens checks webhook tokens in constant time. Tokens are kept only as
// SHA-256 digests, so comparisons take the same time whatever a guess's
// length, and every configured token is compared on every request.
type tokens struct {
	digests [][sha256.Size]byte
}

func newTokens(list []string) *tokens {
	t := &tokens{}
	for _, s := range list {
		t.digests = append(t.digests, sha256.Sum256([]byte(s)))
	}
	return t
}

func (t *tokens) match(candidate string) bool {
	d := sha256.Sum256([]byte(candidate))
	ok := 0
	for i := range t.digests {
		ok |= subtle.ConstantTimeCompare(d[:], t.digests[i][:])
	}
	return ok == 1
}

// authenticate accepts the token as the {token} path segment, the token
// query parameter, or the password of HTTP Basic auth.
func (s *Server) authenticate(c echo.Context) error {
	if len(s.tokens.digests) == 0 {
		return nil // unauthenticated mode, allowed explicitly
	}
	r := c.Request()
	_, pass, basic := r.BasicAuth()
	candidates := [...]string{c.Param("token"), c.QueryParam("token"), pass}
	for _, cand := range candidates {
		if cand != "" && s.tokens.match(cand) {
			return nil
		}
	}
	p := problem(http.StatusUnauthorized, outcomeUnauthorized, "missing or wrong webhook token")
	if basic {
		// Challenge only a client that tried Basic: a browser that did not
		// must not be invited to prompt for credentials.
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="emma-gateway", charset="UTF-8"`)
	}
	return p
}
