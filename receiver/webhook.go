package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/console"
)

// Accepted is the body of a 200 answer.
type Accepted struct {
	Status     string `json:"status"`
	EventID    string `json:"event_id"`
	Event      string `json:"event"`
	Recognized bool   `json:"recognized"`
	// Duplicate marks a callback whose event_id this replica made durable
	// within the dedup window: it was not published again (SPEC section 3).
	Duplicate bool `json:"duplicate,omitempty"`
}

// callback is a request reduced to what events needs.
type callback struct {
	payload     []byte
	delivery    events.Delivery
	contentType string
	// source names where payload came from, for the answer: one of the
	// source constants.
	source string
	// receivedAt is when the request came in: the event's received_at, and
	// a dead letter's.
	receivedAt time.Time
}

// Where a callback's JSON was read from, as answers name it.
const (
	sourceBody       = "body"
	sourceJSONAsForm = "body (JSON sent as application/x-www-form-urlencoded)"
	sourceFormField  = "form field payload"
	sourceQuery      = "payload query parameter"
)

// webhook serves GET and POST /webhooks/emma[/{token}].
func (s *Server) webhook(c echo.Context) error {
	receivedAt := s.deps.Now()
	// Before anything parses the query (the token may be in it).
	if len(c.Request().URL.RawQuery) > s.cfg.MaxQueryBytes {
		return problem(http.StatusRequestURITooLong, outcomeTooLarge, "the query string exceeds the limit")
	}
	cred, err := s.authenticate(c)
	if err != nil {
		return err
	}
	cb, err := s.read(c)
	if err != nil {
		return err
	}
	cb.receivedAt = receivedAt
	ctx := c.Request().Context()

	_, span := s.tracer.Start(ctx, "decode")
	ev, err := s.deps.Decoder.Parse(cb.payload, cb.delivery, receivedAt)
	if ev != nil {
		setEvent(c, ev.Name, ev.ID)
		span.SetAttributes(attribute.String("emma.event_name", ev.Name), attribute.String("emma.event_id", ev.ID))
	}
	if err != nil {
		span.SetStatus(codes.Error, "malformed")
		span.End()
		return s.reject(c, cb, ev, err)
	}
	span.End()
	if rid, ok := ev.ResourceAccountID(); ok && rid != ev.AccountID() {
		// events keeps data.account_id, the documented field; the
		// resource_url stays in the value, and this says they disagree.
		s.log.LogAttrs(ctx, slog.LevelWarn, "data.account_id and resource_url name different accounts; data.account_id is kept",
			slog.String("event_id", ev.ID), slog.String("event_name", ev.Name),
			slog.Int64("account_id", int64(ev.AccountID())), slog.Int64("resource_url_account_id", int64(rid)))
	}

	// A token bound to accounts vouches for their events only. Such an
	// event is refused, not dead-lettered: its sender is not trusted with
	// that account, so its payload is not kept either.
	if cred != nil && !cred.mayPostFor(ev.AccountID()) {
		return problem(http.StatusForbidden, outcomeForbiddenAccount, "this token may not post events of this account")
	}

	_, span = s.tracer.Start(ctx, "validate", trace.WithAttributes(attribute.String("emma.event_name", ev.Name)))
	err = s.deps.Decoder.Validate(ev)
	if err != nil {
		span.SetStatus(codes.Error, "invalid")
	}
	span.End()
	if err != nil {
		return s.reject(c, cb, ev, err)
	}

	pctx, cancel := s.publishContext(ctx)
	defer cancel()
	// Unrecognized events are deduplicated too: their event_id is as
	// stable as a known event's (account, name and content).
	claim, err := s.deps.Dedup.Begin(pctx, ev.ID)
	if err != nil {
		// A copy of this callback is being published and its outcome is
		// still unknown: neither 200 nor a second publish would be honest.
		return problem(http.StatusServiceUnavailable, outcomeUnavailable, "a copy of this callback is still being made durable; retry later").
			retry(s.cfg.RetryAfter).withCause(err)
	}
	answer := Accepted{Status: "accepted", EventID: ev.ID, Event: ev.Name, Recognized: ev.Recognized()}
	if claim.Duplicate() {
		if s.deps.Recorder != nil {
			c.Set(ctxEvent, ev) // the console shows its account; no placement: nothing was written
		}
		setOutcome(c, outcomeDuplicate)
		answer.Duplicate = true
		return c.JSON(http.StatusOK, answer)
	}
	// Deferred, so that a publish that panics (Echo recovers it) still
	// releases the claim, and the copies waiting on it publish themselves.
	durable := false
	defer func() { claim.Done(durable) }()
	err = s.publish(pctx, c, ev)
	durable = err == nil
	if err != nil {
		return problem(http.StatusServiceUnavailable, outcomeUnavailable, "the event could not be made durable; retry later").
			retry(s.cfg.RetryAfter).withCause(err)
	}
	outcome := outcomeAccepted
	if !ev.Recognized() {
		outcome = outcomeUnrecognized
	}
	setOutcome(c, outcome)
	return answerAccepted(c, answer)
}

// publish hands ev to the sink; with a console recorder and a sink that
// says where it put the event, the placement is left for the access log's
// record.
func (s *Server) publish(ctx context.Context, c echo.Context, ev *events.Event) error {
	if s.deps.Recorder != nil {
		c.Set(ctxEvent, ev)
	}
	if s.placer == nil {
		return s.deps.Sink.Publish(ctx, ev)
	}
	p, err := s.placer.PublishPlaced(ctx, ev)
	if err == nil {
		s.setPlacement(c, p)
	}
	return err
}

// deadLetter keeps r on the dead-letter topic and, with a console
// recorder, records it with its reason and field errors.
func (s *Server) deadLetter(ctx context.Context, c echo.Context, r *events.Rejection, ev *events.Event) error {
	if s.deps.Recorder == nil {
		return s.deps.Sink.DeadLetter(ctx, r)
	}
	p := Placement{Topic: "", Partition: -1, Offset: -1}
	var err error
	if s.placer != nil {
		p, err = s.placer.DeadLetterPlaced(ctx, r)
	} else {
		err = s.deps.Sink.DeadLetter(ctx, r)
	}
	if err != nil {
		return err
	}
	var account int64
	if ev != nil {
		account = int64(ev.AccountID())
		c.Set(ctxEvent, ev)
	}
	s.setPlacement(c, p)
	s.deps.Recorder.RecordDeadLetter(console.DeadLetter{
		Time: r.ReceivedAt, Method: string(r.Delivery), Event: r.EventName, Account: account,
		Reason: r.Reason, Fields: r.Errors, Topic: p.Topic, Partition: p.Partition, Offset: p.Offset,
	})
	return nil
}

// setPlacement leaves p for the access log's record, in a pooled box:
// boxing the struct itself would allocate on every callback.
func (s *Server) setPlacement(c echo.Context, p Placement) {
	box, _ := s.placements.Get().(*Placement)
	if box == nil {
		box = new(Placement)
	}
	*box = p
	c.Set(ctxPlacement, box)
}

// publishContext keeps the request's trace but not its cancellation: once a
// publish has started it is finished even if Emma hangs up, so that what may
// already be in Kafka is also acknowledged there; PublishTimeout bounds it.
func (s *Server) publishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout)
}

// reject keeps a refused callback on the dead-letter topic and answers 400
// (not a callback) or 422 (an event that fails validation). When the dead
// letter cannot be kept, the answer is 503 so that the sender may retry.
func (s *Server) reject(c echo.Context, cb callback, ev *events.Event, err error) error {
	r := events.NewRejection(cb.payload, cb.delivery, cb.contentType, cb.receivedAt, ev, err)
	ctx, cancel := s.publishContext(c.Request().Context())
	defer cancel()
	if derr := s.deadLetter(ctx, c, r, ev); derr != nil {
		return problem(http.StatusServiceUnavailable, outcomeUnavailable, "the rejected callback could not be kept; retry later").
			retry(s.cfg.RetryAfter).withCause(errors.Join(err, derr))
	}
	var ve *events.ValidationError
	if errors.As(err, &ve) {
		p := problem(http.StatusUnprocessableEntity, outcomeInvalid, "the "+ve.Event+" event failed validation; it was kept on the dead-letter topic")
		p.Event, p.Errors = ve.Event, ve.Errors
		return p
	}
	var me *events.MalformedError
	detail := "the " + cb.source + " is not an Emma callback"
	if errors.As(err, &me) {
		detail += ": " + me.Reason
	}
	return problem(http.StatusBadRequest, outcomeMalformed, detail)
}

// read extracts the callback's JSON from the request (SPEC section 3):
// GET: the payload query parameter; POST: the body whatever its
// Content-Type, the payload form field of a form body (see formPayload), or
// the payload query parameter when the body is empty.
func (s *Server) read(c echo.Context) (callback, error) {
	r := c.Request()
	cb := callback{delivery: events.DeliveryGET, contentType: r.Header.Get(echo.HeaderContentType)}
	if r.Method == http.MethodPost {
		cb.delivery = events.DeliveryPOST
		body, err := s.readBody(r)
		if err != nil {
			return cb, err
		}
		cb.payload, cb.source = body, sourceBody
		mt, _, _ := mime.ParseMediaType(cb.contentType)
		if mt == echo.MIMEApplicationForm && !blank(body) {
			if err := formPayload(&cb, body); err != nil {
				return cb, err
			}
		}
		if !blank(cb.payload) {
			return cb, nil
		}
	}
	p := c.QueryParam("payload")
	if p == "" {
		return cb, problem(http.StatusBadRequest, outcomeMalformed, "no payload: send the JSON as the POST body or the payload query parameter")
	}
	cb.payload, cb.source = []byte(p), sourceQuery
	return cb, nil
}

// formPayload reads a form body. SPEC section 3 puts the JSON in its
// payload field; but curl -d, the README's first example, sends raw JSON
// under this content type, so a body that is JSON is read as the envelope
// itself. A body starting with '{' is taken as JSON before any form parsing:
// a JSON string holding "&payload=" must not pass for a form field.
func formPayload(cb *callback, body []byte) error {
	t := bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(body), []byte(utf8BOM)))
	if t[0] == '{' {
		cb.source = sourceJSONAsForm
		return nil
	}
	form, ferr := url.ParseQuery(string(body))
	if vs, ok := form["payload"]; ok {
		if blank([]byte(vs[0])) {
			return problem(http.StatusBadRequest, outcomeMalformed, "no payload: the form's payload field is empty")
		}
		cb.payload, cb.source = []byte(vs[0]), sourceFormField
		return nil
	}
	if json.Valid(t) {
		// JSON, but not an object: events says which kind.
		cb.source = sourceJSONAsForm
		return nil
	}
	if ferr != nil {
		return problem(http.StatusBadRequest, outcomeMalformed, "the body is sent as application/x-www-form-urlencoded but is neither form data nor JSON; send the callback's JSON in the form field payload, or as the body")
	}
	// Field names are not echoed: a sender may have put a secret there.
	return problem(http.StatusBadRequest, outcomeMalformed, fmt.Sprintf("no payload: the body is a form (application/x-www-form-urlencoded) with %d field(s), none named payload; send the callback's JSON in the form field payload, or as the body", len(form)))
}

// utf8BOM is the byte-order mark (U+FEFF) Python writes with the utf-8-sig
// codec; events ignores it before the JSON.
const utf8BOM = "\uFEFF"

// blank reports whether b holds nothing but white space and a byte-order
// mark.
func blank(b []byte) bool {
	return len(bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(b), []byte(utf8BOM)))) == 0
}

func (s *Server) readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.BodyLimit {
		return nil, problem(http.StatusRequestEntityTooLarge, outcomeTooLarge, "the body exceeds the limit")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.BodyLimit+1))
	if err != nil {
		return nil, problem(http.StatusBadRequest, outcomeMalformed, "the body could not be read").withCause(err)
	}
	if int64(len(body)) > s.cfg.BodyLimit {
		return nil, problem(http.StatusRequestEntityTooLarge, outcomeTooLarge, "the body exceeds the limit")
	}
	return body, nil
}
