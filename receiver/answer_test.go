package receiver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// The hand-written answer is what c.JSON writes, whatever the strings.
func TestAnswerAcceptedIsWhatCJSONWrites(t *testing.T) {
	e := echo.New()
	for _, a := range []Accepted{
		{Status: "accepted", EventID: "0123abcd", Event: "message_open", Recognized: true},
		{Status: "accepted", EventID: "x", Event: "member_birthday", Recognized: false},
		{Status: "accepted", EventID: "0123abcd", Event: "message_open", Recognized: true, Duplicate: true},
		{Status: "accepted", EventID: "x", Event: `odd "name" <&> \ é` + "\n", Recognized: false},
		{},
	} {
		for _, target := range []string{"/webhooks/emma", "/webhooks/emma?pretty"} {
			run := func(f func(echo.Context) error) *httptest.ResponseRecorder {
				w := httptest.NewRecorder()
				c := e.NewContext(httptest.NewRequest(http.MethodPost, target, nil), w)
				if err := f(c); err != nil {
					t.Fatal(err)
				}
				return w
			}
			got := run(func(c echo.Context) error { return answerAccepted(c, a) })
			want := run(func(c echo.Context) error { return c.JSON(http.StatusOK, a) })
			if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("%s %+v:\n got %d %q %q\nwant %d %q %q", target, a, got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
			}
		}
	}
}
