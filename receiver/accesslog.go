package receiver

import (
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/internal/console"
)

// Keys of values that handlers leave on the echo.Context for the access log.
const (
	ctxOutcome   = "emma.outcome"
	ctxEventName = "emma.event_name"
	ctxEventID   = "emma.event_id"
	ctxCause     = "emma.cause"
	// For the console recorder only: the *events.Event and the Placement.
	ctxEvent     = "emma.event"
	ctxPlacement = "emma.placement"
)

func setOutcome(c echo.Context, o string) { c.Set(ctxOutcome, o) }

func setEvent(c echo.Context, name, id string) {
	c.Set(ctxEventName, name)
	c.Set(ctxEventID, id)
}

// accessLog writes one line per request: the route pattern, never the URL
// (which may carry the token and the payload), the status, the latency, and
// for webhooks the event and the outcome.
func (s *Server) accessLog(inner step) step {
	return func(c echo.Context, next echo.HandlerFunc) error {
		start := time.Now()
		webhook := routeName(c) == "/webhooks/emma"
		if webhook {
			s.metrics.inFlight.Inc()
			defer s.metrics.inFlight.Dec()
		}
		err := inner(c, next)
		if err != nil {
			c.Error(err) // renders through handleError, so the status is known
		}
		status := c.Response().Status
		// On the stack: the most a line has, so that appending never grows it.
		var buf [10]slog.Attr
		attrs := append(buf[:0],
			slog.String("method", c.Request().Method),
			slog.String("route", routeName(c)),
			slog.Int("status", status),
			slog.Duration("latency", time.Since(start)),
		)
		if sc := trace.SpanContextFromContext(c.Request().Context()); sc.IsValid() {
			// Both ids in one string, one allocation instead of two.
			var hexIDs [48]byte
			tid, sid := sc.TraceID(), sc.SpanID()
			hex.Encode(hexIDs[:32], tid[:])
			hex.Encode(hexIDs[32:], sid[:])
			ids := string(hexIDs[:])
			attrs = append(attrs, slog.String("trace_id", ids[:32]), slog.String("span_id", ids[32:]))
		}
		for _, k := range []string{ctxEventName, ctxEventID, ctxOutcome} {
			if v, ok := c.Get(k).(string); ok {
				attrs = append(attrs, slog.String(k[len("emma."):], v))
			}
		}
		level := slog.LevelInfo
		if cause, ok := c.Get(ctxCause).(error); ok {
			attrs = append(attrs, slog.String("error", cause.Error()))
			level = slog.LevelWarn
		}
		if c.Path() == "/healthz" || c.Path() == "/readyz" {
			level = slog.LevelDebug
		}
		s.log.LogAttrs(c.Request().Context(), level, "request", attrs...)
		if webhook {
			outcome, _ := c.Get(ctxOutcome).(string)
			latency := time.Since(start)
			s.metrics.observe(eventLabel(c), deliveryLabel(c.Request().Method), outcome, latency.Seconds())
			if s.deps.Recorder != nil {
				s.record(c, start, status, outcome, latency)
			}
		}
		return nil
	}
}

// eventLabel is the event name for metrics: known names only, so that a
// sender cannot grow the label set.
func eventLabel(c echo.Context) string {
	name, _ := c.Get(ctxEventName).(string)
	if name == "" {
		return ""
	}
	if _, ok := events.Lookup(name); !ok {
		return "unrecognized"
	}
	return name
}

func deliveryLabel(method string) string {
	if method == http.MethodGet || method == http.MethodPost {
		return method
	}
	return "other"
}

// routeName is the route pattern with the token parameter folded away, so
// that both webhook routes read "/webhooks/emma".
func routeName(c echo.Context) string {
	switch p := c.Path(); p {
	case "/webhooks/emma/:token":
		return "/webhooks/emma"
	case "":
		return "unmatched"
	default:
		return p
	}
}

// record gives the console's recorder one webhook answer: what the access
// log says, plus the account and where the event went.
func (s *Server) record(c echo.Context, start time.Time, status int, outcome string, latency time.Duration) {
	rec := console.Callback{Time: start, Method: c.Request().Method, Status: status, Outcome: outcome, Latency: latency, Partition: -1, Offset: -1}
	rec.Event, _ = c.Get(ctxEventName).(string)
	rec.EventID, _ = c.Get(ctxEventID).(string)
	if ev, ok := c.Get(ctxEvent).(*events.Event); ok {
		rec.Account = int64(ev.AccountID())
	}
	if p, ok := c.Get(ctxPlacement).(*Placement); ok {
		rec.Topic, rec.Partition, rec.Offset, rec.Spooled = p.Topic, p.Partition, p.Offset, p.Spooled
		c.Set(ctxPlacement, nil)
		s.placements.Put(p)
	}
	s.deps.Recorder.Record(rec)
}
