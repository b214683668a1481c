package receiver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/emma-gateway/emma-gateway/events"
)

// Problem is an RFC 9457 problem detail, the body of every error answer.
// Handlers return it as an error; the server's error handler renders it and
// logs once.
type Problem struct {
	// Type is a URI naming the kind of problem ("about:blank": see Title).
	Type string `json:"type"`
	// Title is the HTTP status text.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail says what was wrong with this request, for the sender.
	Detail string `json:"detail,omitempty"`
	// Event is the event_name, when one was read.
	Event string `json:"event,omitempty"`
	// Errors lists the fields of an event that failed validation.
	Errors []events.FieldError `json:"errors,omitempty"`

	retryAfter time.Duration
	outcome    string
	cause      error // logged, never sent
}

func (p *Problem) Error() string { return strconv.Itoa(p.Status) + " " + p.Detail }

func problem(status int, outcome, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, outcome: outcome}
}

func (p *Problem) withCause(err error) *Problem   { p.cause = err; return p }
func (p *Problem) retry(d time.Duration) *Problem { p.retryAfter = d; return p }

// Outcomes, for logs and metrics.
const (
	outcomeAccepted     = "accepted"
	outcomeUnrecognized = "unrecognized"
	// outcomeDuplicate: a callback whose event_id was made durable within
	// the dedup window, answered 200 without a publish.
	outcomeDuplicate    = "duplicate"
	outcomeMalformed    = "malformed"
	outcomeInvalid      = "invalid"
	outcomeUnauthorized = "unauthorized"
	// outcomeForbiddenAccount: a valid token, bound to other Emma accounts
	// than the event's.
	outcomeForbiddenAccount = "forbidden_account"
	// outcomeForbiddenAddress: a client outside the allowed CIDRs.
	outcomeForbiddenAddress = "forbidden_address"
	outcomeTooLarge         = "too_large"
	outcomeRateLimited      = "rate_limited"
	outcomeUnavailable      = "unavailable"
	outcomeNotAllowed       = "method_not_allowed"
	outcomeNotFound         = "not_found"
)

// toProblem maps any handler error to a Problem.
func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return problem(he.Code, outcomeNotFound, "no such endpoint; webhooks go to /webhooks/emma")
		case http.StatusMethodNotAllowed:
			return problem(he.Code, outcomeNotAllowed, "webhooks are delivered by GET or POST")
		case http.StatusRequestEntityTooLarge:
			return problem(he.Code, outcomeTooLarge, "request body too large")
		}
		return problem(he.Code, "error", http.StatusText(he.Code)).withCause(err)
	}
	return problem(http.StatusInternalServerError, "error", "internal error").withCause(err)
}

func (s *Server) handleError(err error, c echo.Context) {
	p := toProblem(err)
	setOutcome(c, p.outcome)
	if p.cause != nil {
		c.Set(ctxCause, p.cause)
	}
	if c.Response().Committed {
		return
	}
	h := c.Response().Header()
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((p.retryAfter+time.Second-1)/time.Second)))
	}
	if p.Status == http.StatusMethodNotAllowed && h.Get("Allow") == "" {
		h.Set("Allow", "GET, POST")
	}
	body, _ := json.Marshal(p) // strings and ints always marshal
	_ = c.Blob(p.Status, "application/problem+json", body)
}
