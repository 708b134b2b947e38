package main

import (
	"strings"

	"github.com/relaymail/relaymail/relay/inject"
)

// rewriter is qmail-inject's address rewriting (qmail-header(5), ADDRESS
// LISTS; rwgeneric in qmail-inject.c), applied to the sender, the recipient
// arguments and the address fields of the header:
//
//	djb                -> djb@defaulthost            (a lone box name)
//	eric@mammoth.cs+   -> eric@mammoth.cs.plusdomain (a host ending in +)
//	djb@silverton      -> djb@silverton.defaultdomain (a host without a dot)
//	<@route:user@host> -> user@host                  (source routes go)
//
// <foo@[]> is left alone: qmail uses it for VERP, and so does the empty
// address <>.
type rewriter struct {
	defaultHost, defaultDomain, plusDomain string
}

func (r rewriter) rewrite(a inject.Address) string {
	if a.Domain == "[]" {
		return a.String()
	}
	dom := a.Domain
	if dom == "" {
		dom = r.defaultHost
	}
	literal := strings.HasPrefix(dom, "[")
	switch {
	case literal:
	case strings.HasSuffix(dom, "+"):
		// The plus domain replaces the default domain: a host that ends
		// in + never gets both.
		dom = strings.TrimSuffix(dom, "+") + "." + r.plusDomain
	case !strings.Contains(dom, "."):
		dom += "." + r.defaultDomain
	}
	return a.Local + "@" + dom
}

// quoteLocal writes a local part as an RFC 5322 quoted string when it is not
// a dot-atom, as qmail's quote() does: "john smith", ".x", "a..b".
func quoteLocal(s string) string {
	if !needsQuote(s) {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func needsQuote(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '.' && !isAtext(c) {
			return true
		}
	}
	return s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..")
}

// isAtext is RFC 5322 atext in ASCII.
func isAtext(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>[]:;@\,."`, rune(c))
}

// quoteAddr renders an envelope address for the Return-Path line of -n,
// quoting its local part when needed (qmail's quote2). A local part that is
// already a quoted string stays as it is.
func quoteAddr(addr string) string {
	if addr == "" {
		return ""
	}
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return quoteLocal(addr)
	}
	local := addr[:i]
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		return addr
	}
	return quoteLocal(local) + addr[i:]
}
