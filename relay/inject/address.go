package inject

import (
	"fmt"
	"strings"
)

// This file is a lenient RFC 5322 §3.4 address-list scanner. It exists
// because net/mail rejects what real callers send (a bare "root" from cron,
// one bad charset in a display name) and because qualification must insert
// "@domain" into a header without re-encoding anything else: every mailbox
// carries the byte offset where its local part ends.

// mailbox is one address found in an address list, with the byte offsets
// that let a rewrite change it in place and leave every other byte alone.
type mailbox struct {
	local  string // local part as written, without comments or folding
	domain string // "" for a bare local name
	end    int    // offset just past the local part's last token
	// domStart and domEnd delimit the domain's tokens (both 0 when bare).
	domStart, domEnd int
	// addrStart and addrEnd delimit the addr-spec, with the source route
	// if there is one, inside the angle brackets if there are any.
	addrStart, addrEnd int
	// start and elemEnd delimit the whole mailbox: display name, angle
	// brackets and all (but not a trailing comment).
	start, elemEnd int
	route          bool // an obsolete source route was skipped
}

func (m mailbox) addr() string {
	if m.domain == "" {
		return m.local
	}
	return m.local + "@" + m.domain
}

// AddressError explains why an address list could not be parsed.
type AddressError struct {
	Input  string
	Offset int
	Reason string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("cannot parse %q: %s", e.Input, e.Reason)
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokAtom
	tokQuoted
	tokLiteral // [domain literal]
	tokSpecial
)

type token struct {
	kind       tokKind
	text       string
	start, end int
}

type addrParser struct {
	s   string
	pos int
	// spaceIsComma makes "a b" two addresses instead of an error, as
	// qmail-inject does ("djb fred" becomes "djb, fred").
	spaceIsComma bool
	peeked       *token
	// lastEnd is the end of the last token consumed (not just peeked).
	lastEnd int
	// commas are the offsets where spaceIsComma found a missing comma,
	// so that a header rewrite can insert one there.
	commas []int
}

func (p *addrParser) fail(off int, format string, a ...any) error {
	return &AddressError{Input: p.s, Offset: off, Reason: fmt.Sprintf(format, a...)}
}

// skipCFWS skips white space, folding and (nested) comments.
func (p *addrParser) skipCFWS() error {
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			p.pos++
		case c == '(':
			start := p.pos
			depth := 0
			for {
				if p.pos >= len(p.s) {
					return p.fail(start, "unterminated comment")
				}
				c := p.s[p.pos]
				switch c {
				case '\\':
					p.pos++
				case '(':
					depth++
				case ')':
					depth--
				}
				p.pos++
				if depth == 0 {
					break
				}
			}
		default:
			return nil
		}
	}
	return nil
}

const specials = "()<>[]:;@\\,.\""

func isAtext(c byte) bool {
	return c > ' ' && c != 0x7f && !strings.ContainsRune(specials, rune(c))
}

func (p *addrParser) next() (token, error) {
	if p.peeked != nil {
		t := *p.peeked
		p.peeked = nil
		p.lastEnd = t.end
		return t, nil
	}
	t, err := p.scan()
	if err == nil && t.kind != tokEOF {
		p.lastEnd = t.end
	}
	return t, err
}

// scan reads the next token.
func (p *addrParser) scan() (token, error) {
	if err := p.skipCFWS(); err != nil {
		return token{}, err
	}
	if p.pos >= len(p.s) {
		return token{kind: tokEOF, start: p.pos, end: p.pos}, nil
	}
	start := p.pos
	c := p.s[p.pos]
	switch {
	case c == '"':
		p.pos++
		for {
			if p.pos >= len(p.s) {
				return token{}, p.fail(start, "unterminated quoted string")
			}
			c := p.s[p.pos]
			if c == '\\' {
				p.pos += 2
				continue
			}
			if c < ' ' && c != '\t' && c != '\r' && c != '\n' || c == 0x7f {
				return token{}, p.fail(p.pos, "control character 0x%02x in a quoted string", c)
			}
			p.pos++
			if c == '"' {
				break
			}
		}
		if p.pos > len(p.s) {
			return token{}, p.fail(start, "unterminated quoted string")
		}
		return token{kind: tokQuoted, text: p.s[start:p.pos], start: start, end: p.pos}, nil
	case c == '[':
		for p.pos < len(p.s) && p.s[p.pos] != ']' {
			if p.s[p.pos] == '\\' || p.s[p.pos] == '[' && p.pos > start {
				return token{}, p.fail(p.pos, "bad character in a domain literal")
			}
			if p.s[p.pos] < ' ' || p.s[p.pos] == 0x7f {
				return token{}, p.fail(p.pos, "control character 0x%02x in a domain literal", p.s[p.pos])
			}
			p.pos++
		}
		if p.pos >= len(p.s) {
			return token{}, p.fail(start, "unterminated domain literal")
		}
		p.pos++
		return token{kind: tokLiteral, text: p.s[start:p.pos], start: start, end: p.pos}, nil
	case strings.IndexByte(specials, c) >= 0:
		p.pos++
		return token{kind: tokSpecial, text: p.s[start:p.pos], start: start, end: p.pos}, nil
	case c < ' ' || c == 0x7f:
		return token{}, p.fail(p.pos, "control character 0x%02x", c)
	}
	for p.pos < len(p.s) && isAtext(p.s[p.pos]) {
		p.pos++
	}
	return token{kind: tokAtom, text: p.s[start:p.pos], start: start, end: p.pos}, nil
}

func (p *addrParser) peek() (token, error) {
	if p.peeked != nil {
		return *p.peeked, nil
	}
	t, err := p.scan()
	if err != nil {
		return t, err
	}
	p.peeked = &t
	return t, nil
}

func isSpecial(t token, c string) bool { return t.kind == tokSpecial && t.text == c }

// parseAddressList parses an RFC 5322 address list leniently: empty elements
// (", ,", a trailing comma as Debian cron writes it), groups, bare local
// names, obsolete routes and quoted local parts are all accepted.
func parseAddressList(s string, spaceIsComma bool) ([]mailbox, error) {
	list, _, err := parseAddresses(s, spaceIsComma)
	return list, err
}

// parseAddresses is parseAddressList that also returns where spaceIsComma
// found a missing comma.
func parseAddresses(s string, spaceIsComma bool) ([]mailbox, []int, error) {
	p := &addrParser{s: s, spaceIsComma: spaceIsComma}
	list, err := p.list(false)
	return list, p.commas, err
}

func (p *addrParser) list(inGroup bool) ([]mailbox, error) {
	var out []mailbox
	for {
		t, err := p.peek()
		if err != nil {
			return nil, err
		}
		switch {
		case t.kind == tokEOF:
			return out, nil
		case isSpecial(t, ","):
			p.next()
			continue
		case isSpecial(t, ";"):
			if inGroup {
				return out, nil
			}
			return nil, p.fail(t.start, "unexpected \";\" outside a group")
		}
		got, err := p.element(inGroup)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		end := p.lastEnd
		t, err = p.peek()
		if err != nil {
			return nil, err
		}
		switch {
		case t.kind == tokEOF, isSpecial(t, ","):
		case isSpecial(t, ";") && inGroup:
		case p.spaceIsComma && (t.kind == tokAtom || t.kind == tokQuoted || isSpecial(t, "<")):
			p.commas = append(p.commas, end)
		default:
			return nil, p.fail(t.start, "expected a comma before %q", t.text)
		}
	}
}

// element parses one mailbox or group.
func (p *addrParser) element(inGroup bool) ([]mailbox, error) {
	// Collect words (atoms, quoted strings, dots) until a delimiter shows
	// what they were: a display name (before "<" or ":") or a local part
	// (before "@" or the end of the element).
	var words []token
	sawSpace := false
	lastEnd := -1
	for {
		t, err := p.peek()
		if err != nil {
			return nil, err
		}
		if t.kind == tokAtom || t.kind == tokQuoted || isSpecial(t, ".") {
			if p.spaceIsComma && len(words) > 0 && t.start != lastEnd && t.kind != tokSpecial && !isSpecial(words[len(words)-1], ".") {
				// "djb fred": end this element here; the list loop
				// starts the next one.
				break
			}
			if lastEnd >= 0 && t.start != lastEnd {
				sawSpace = true
			}
			p.next()
			words = append(words, t)
			lastEnd = t.end
			continue
		}
		switch {
		case isSpecial(t, ":"):
			if inGroup {
				return nil, p.fail(t.start, "a group cannot contain another group")
			}
			p.next()
			members, err := p.list(true)
			if err != nil {
				return nil, err
			}
			t, err := p.peek()
			if err != nil {
				return nil, err
			}
			if isSpecial(t, ";") {
				p.next()
			}
			return members, nil
		case isSpecial(t, "<"):
			p.next()
			m, ok, err := p.angleAddr()
			if err != nil || !ok {
				return nil, err
			}
			m.start = t.start
			if len(words) > 0 {
				m.start = words[0].start
			}
			return []mailbox{m}, nil
		case isSpecial(t, "@"):
			if len(words) == 0 {
				return nil, p.fail(t.start, "missing local part before \"@\"")
			}
			if sawSpace && !dotted(words) {
				return nil, p.fail(words[0].start, "a display name needs angle brackets around the address (write Name <user@example.com>)")
			}
			p.next()
			dom, ds, de, err := p.domain()
			if err != nil {
				return nil, err
			}
			return []mailbox{{local: joinWords(words), domain: dom, end: words[len(words)-1].end,
				domStart: ds, domEnd: de, addrStart: words[0].start, addrEnd: de, start: words[0].start, elemEnd: de}}, nil
		}
		break
	}
	if len(words) == 0 {
		t, _ := p.peek()
		return nil, p.fail(t.start, "unexpected %q", t.text)
	}
	if sawSpace && !dotted(words) {
		return nil, p.fail(words[0].start, "%q is not an address (put a comma between addresses, or angle brackets around the address)", p.s[words[0].start:words[len(words)-1].end])
	}
	end := words[len(words)-1].end
	return []mailbox{{local: joinWords(words), end: end, addrStart: words[0].start, addrEnd: end, start: words[0].start, elemEnd: end}}, nil
}

// dotted reports whether space-separated words are really one obsolete
// dotted local part ("john . smith"): every gap is next to a dot.
func dotted(words []token) bool {
	for i := 1; i < len(words); i++ {
		if words[i].start != words[i-1].end && !isSpecial(words[i], ".") && !isSpecial(words[i-1], ".") {
			return false
		}
	}
	return true
}

func joinWords(words []token) string {
	var b strings.Builder
	for _, w := range words {
		b.WriteString(w.text)
	}
	return b.String()
}

// angleAddr parses what follows "<": an optional obsolete source route, an
// addr-spec and ">". "<>" yields ok=false (no mailbox).
func (p *addrParser) angleAddr() (mailbox, bool, error) {
	t, err := p.peek()
	if err != nil {
		return mailbox{}, false, err
	}
	if isSpecial(t, ">") {
		p.next()
		return mailbox{}, false, nil
	}
	addrStart, route := t.start, false
	if isSpecial(t, "@") {
		// RFC 5322 §4.4 obs-route: "@a,@b:" is ignored.
		route = true
		for {
			t, err := p.next()
			if err != nil {
				return mailbox{}, false, err
			}
			if t.kind == tokEOF {
				return mailbox{}, false, p.fail(t.start, "unterminated source route")
			}
			if isSpecial(t, ":") {
				break
			}
		}
	}
	var words []token
	for {
		t, err := p.peek()
		if err != nil {
			return mailbox{}, false, err
		}
		if t.kind == tokAtom || t.kind == tokQuoted || isSpecial(t, ".") {
			p.next()
			words = append(words, t)
			continue
		}
		break
	}
	if len(words) == 0 {
		t, _ := p.peek()
		return mailbox{}, false, p.fail(t.start, "missing address inside angle brackets")
	}
	if !dotted(words) {
		return mailbox{}, false, p.fail(words[0].start, "a space inside angle brackets")
	}
	if !route {
		addrStart = words[0].start
	}
	m := mailbox{local: joinWords(words), end: words[len(words)-1].end, addrStart: addrStart, route: route}
	m.addrEnd = m.end
	t, err = p.next()
	if err != nil {
		return mailbox{}, false, err
	}
	if isSpecial(t, "@") {
		if m.domain, m.domStart, m.domEnd, err = p.domain(); err != nil {
			return mailbox{}, false, err
		}
		m.addrEnd = m.domEnd
		if t, err = p.next(); err != nil {
			return mailbox{}, false, err
		}
	}
	if !isSpecial(t, ">") {
		return mailbox{}, false, p.fail(t.start, "missing \">\" after the address")
	}
	m.elemEnd = t.end
	return m, true, nil
}

// domain parses a domain and returns it with the offsets of its first and
// past its last token.
func (p *addrParser) domain() (dom string, start, end int, err error) {
	t, err := p.next()
	if err != nil {
		return "", 0, 0, err
	}
	if t.kind == tokLiteral {
		return t.text, t.start, t.end, nil
	}
	if t.kind != tokAtom {
		return "", 0, 0, p.fail(t.start, "missing domain after \"@\"")
	}
	start, end = t.start, t.end
	var b strings.Builder
	b.WriteString(t.text)
	for {
		t, err := p.peek()
		if err != nil {
			return "", 0, 0, err
		}
		if !isSpecial(t, ".") {
			break
		}
		p.next()
		a, err := p.next()
		if err != nil {
			return "", 0, 0, err
		}
		if a.kind != tokAtom {
			return "", 0, 0, p.fail(a.start, "empty label in the domain")
		}
		b.WriteString(".")
		b.WriteString(a.text)
		end = a.end
	}
	return b.String(), start, end, nil
}
