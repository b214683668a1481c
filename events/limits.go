package events

import "strconv"

// Limits on a callback's JSON, checked by [Decoder.Parse] before any JSON is
// decoded. Emma's callbacks are flat objects a few hundred bytes long; these
// bounds are far above anything Emma sends and far below what would cost the
// gateway real memory or time.
const (
	// MaxDepth is the deepest nesting of arrays and objects accepted. The
	// envelope and its data object use two levels. encoding/json stops at
	// 10000 levels, but only after scanning and allocating for them; the
	// pre-scan refuses a deeply nested payload in one pass without
	// allocating.
	MaxDepth = 64
	// MaxPayloadBytes is the largest callback accepted, whatever the
	// transport's own limits.
	MaxPayloadBytes = 4 << 20
)

// checkLimits refuses a payload that is too large or nested too deeply. It
// tracks only string boundaries and brackets, so it costs one pass over the
// bytes; the JSON's validity is left to encoding/json.
func checkLimits(payload []byte) error {
	if len(payload) > MaxPayloadBytes {
		return &MalformedError{"larger than " + strconv.Itoa(MaxPayloadBytes) + " bytes"}
	}
	depth := 0
	inString, escaped := false, false
	for _, c := range payload {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > MaxDepth {
				return &MalformedError{"JSON nested deeper than " + strconv.Itoa(MaxDepth) + " levels"}
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}
