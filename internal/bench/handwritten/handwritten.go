// Package handwritten is the pipeline a team could write itself in about a
// hundred lines, the comparison target of emma-gateway's performance goals
// (issue 14): Echo, validator and a kafka-go Writer (acks from all in-sync
// replicas, Murmur2, a 1 ms batch timer). Each callback is decoded
// (envelope, then typed data), validated, marshalled and written, and
// answered once Kafka has it. bench runs it in its own process
// ("emma-gateway bench-target handwritten", a hidden command). Without
// brokers it starts an in-process kfake broker, as the gateway's embedded
// mode does. It prints its listen address and, for readers, the broker's.
package handwritten

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/labstack/echo/v4"
	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/internal/bench/target"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
)

type envelope struct {
	EventName string          `json:"event_name" validate:"required"`
	Data      json.RawMessage `json:"data" validate:"required"`
}

type data struct {
	AccountID int64  `json:"account_id" validate:"required,gt=0"`
	MemberID  int64  `json:"member_id,omitempty" validate:"omitempty,gt=0"`
	MailingID int64  `json:"mailing_id,omitempty" validate:"omitempty,gt=0"`
	Subject   string `json:"subject,omitempty"`
	Timestamp string `json:"timestamp" validate:"required,startswith=@D:"`
}

type record struct {
	EventID    string    `json:"event_id"`
	EventName  string    `json:"event_name"`
	ReceivedAt time.Time `json:"received_at"`
	Data       data      `json:"data"`
}

// Run serves until ctx ends, printing the listen address and the brokers
// to stdout.
func Run(ctx context.Context, addr, brokers string, stdout io.Writer) error {
	if brokers == "" {
		b, err := devkafka.Start("127.0.0.1:0", devkafka.AutoCreateTopics(3)...)
		if err != nil {
			return err
		}
		defer b.Shutdown(context.Background())
		brokers = strings.Join(b.Addrs(), ",")
	}
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(brokers, ",")...), Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, AllowAutoTopicCreation: true}
	defer w.Close()
	v := validator.New()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	h := func(c echo.Context) error {
		var body []byte
		if c.Request().Method == http.MethodGet {
			body = []byte(c.QueryParam("payload"))
		} else {
			var err error
			if body, err = io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<20)); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, err.Error())
			}
		}
		var env envelope
		var d data
		if err := json.Unmarshal(body, &env); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		if err := v.Struct(&env); err != nil {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
		}
		if err := v.Struct(&d); err != nil {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
		}
		sum := sha256.Sum256(body)
		rec := record{EventID: hex.EncodeToString(sum[:16]), EventName: env.EventName, ReceivedAt: time.Now().UTC(), Data: d}
		value, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		key := fmt.Appendf(nil, "%d", d.MemberID)
		msg := kafka.Message{Topic: "emma." + env.EventName, Key: key, Value: value,
			Headers: []kafka.Header{{Key: "ce_id", Value: []byte(rec.EventID)}}}
		if err := w.WriteMessages(c.Request().Context(), msg); err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		return c.JSON(http.StatusOK, map[string]any{"status": "accepted", "event_id": rec.EventID, "event": env.EventName, "recognized": true})
	}
	for _, p := range []string{"/webhooks/emma", "/webhooks/emma/:token"} {
		e.GET(p, h)
		e.POST(p, h)
	}
	return target.Serve(ctx, e, addr, brokers, stdout)
}
