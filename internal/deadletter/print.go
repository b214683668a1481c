package deadletter

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Printer writes letters for people (an aligned table) or programs (JSON
// lines). Neither shows a payload.
type Printer struct {
	w      io.Writer
	json   *json.Encoder
	header bool
}

// NewPrinter returns a Printer writing JSON lines to w when jsonLines is
// set, a table otherwise.
func NewPrinter(w io.Writer, jsonLines bool) *Printer {
	p := &Printer{w: w}
	if jsonLines {
		p.json = json.NewEncoder(w)
	}
	return p
}

const tableFormat = "%-9s %-8s %-24s %-26s %-10s %s\n"

// Print writes l, and a note when it is not empty (a replay's outcome).
func (p *Printer) Print(l Letter, note string) error {
	if p.json != nil {
		if note == "" {
			return p.json.Encode(l)
		}
		return p.json.Encode(struct {
			Letter
			Replay string `json:"replay"`
		}{l, note})
	}
	if !p.header {
		p.header = true
		if _, err := fmt.Fprintf(p.w, tableFormat, "PARTITION", "OFFSET", "RECEIVED", "EVENT", "REASON", "FIELD ERRORS / DETAIL"); err != nil {
			return err
		}
	}
	detail := l.Detail
	if len(l.Errors) > 0 {
		fields := make([]string, len(l.Errors))
		for i, e := range l.Errors {
			fields[i] = e.Field + " " + e.Rule
		}
		detail = strings.Join(fields, ", ")
	}
	if note != "" {
		detail = note + ": " + detail
	}
	event := l.Event
	if event == "" {
		event = "-"
	}
	_, err := fmt.Fprintf(p.w, tableFormat, strconv.Itoa(l.Partition), strconv.FormatInt(l.Offset, 10), l.ReceivedAt.Format(time.RFC3339), event, l.Reason, detail)
	return err
}
