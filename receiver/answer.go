package receiver

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// answerAccepted writes the 200 answer, byte for byte what c.JSON writes
// (encoding/json's text of a and a newline, as application/json), but
// appended by hand when its strings need no escaping: encoding/json's
// reflection and its encoder were a few percent of a callback's CPU. A
// ?pretty query (c.JSON indents then) or a string to escape goes through
// c.JSON.
func answerAccepted(c echo.Context, a Accepted) error {
	if strings.Contains(c.Request().URL.RawQuery, "pretty") || !plainJSON(a.Status) || !plainJSON(a.EventID) || !plainJSON(a.Event) {
		return c.JSON(http.StatusOK, a)
	}
	b := make([]byte, 0, 64+len(a.Status)+len(a.EventID)+len(a.Event))
	b = append(b, `{"status":"`...)
	b = append(b, a.Status...)
	b = append(b, `","event_id":"`...)
	b = append(b, a.EventID...)
	b = append(b, `","event":"`...)
	b = append(b, a.Event...)
	b = append(b, `","recognized":`...)
	b = strconv.AppendBool(b, a.Recognized)
	if a.Duplicate {
		b = append(b, `,"duplicate":true`...)
	}
	b = append(b, "}\n"...)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// plainJSON reports whether s is written into a JSON string as it is by
// encoding/json: printable ASCII but the quote, the backslash and the
// characters it escapes for HTML.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b >= 0x7f || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' {
			return false
		}
	}
	return true
}
