package realserver

import (
	"bytes"
	"strings"
)

// cutLeadingField removes the first header field of msg, with its
// continuation lines, when it is named name (case-insensitive). It returns
// the field (with its line endings) and the rest.
func cutLeadingField(msg []byte, name string) (field, rest []byte, ok bool) {
	colon := bytes.IndexByte(msg, ':')
	nl := bytes.IndexByte(msg, '\n')
	if colon < 0 || (nl >= 0 && nl < colon) || !strings.EqualFold(string(msg[:colon]), name) {
		return nil, msg, false
	}
	end := 0
	for {
		nl := bytes.IndexByte(msg[end:], '\n')
		if nl < 0 {
			return msg, nil, true
		}
		end += nl + 1
		if end >= len(msg) || (msg[end] != ' ' && msg[end] != '\t') {
			return msg[:end], msg[end:], true
		}
	}
}

// fieldValue returns the unfolded value of a field as cut by
// cutLeadingField.
func fieldValue(field []byte) string {
	_, v, _ := strings.Cut(string(field), ":")
	v = strings.NewReplacer("\r\n", "", "\n", "").Replace(v)
	return strings.TrimSpace(v)
}
