package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/internal/submit"
	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/inject"
)

var testRW = rewriter{defaultHost: "silverton.berkeley.edu", defaultDomain: "berkeley.edu", plusDomain: "Berkeley.EDU"}

// The examples of qmail-header(5) and qmail-inject(8).
func TestRewrite(t *testing.T) {
	cases := []struct {
		in   inject.Address
		want string
	}{
		{inject.Address{Local: "djb"}, "djb@silverton.berkeley.edu"},
		{inject.Address{Local: "djb", Domain: "silverton"}, "djb@silverton.berkeley.edu"},
		{inject.Address{Local: "eric", Domain: "mammoth.cs+"}, "eric@mammoth.cs.Berkeley.EDU"},
		{inject.Address{Local: "eric", Domain: "mammoth+"}, "eric@mammoth.Berkeley.EDU"},
		{inject.Address{Local: "djb", Domain: "cr.yp.to"}, "djb@cr.yp.to"},
		{inject.Address{Local: "x", Domain: "[192.0.2.1]"}, "x@[192.0.2.1]"},
		{inject.Address{Local: "foo", Domain: "[]"}, "foo@[]"},
		{inject.Address{Local: `"john smith"`, Domain: "x"}, `"john smith"@x.berkeley.edu`},
		{inject.Address{Local: "joe", Domain: "x.org", Route: true}, "joe@x.org"},
	}
	for _, c := range cases {
		if got := testRW.rewrite(c.in); got != c.want {
			t.Errorf("%+v: %q, want %q", c.in, got, c.want)
		}
	}
	// A dotless default host gets the default domain, as in qmail.
	rw := rewriter{defaultHost: "localhost", defaultDomain: "example.com", plusDomain: "example.com"}
	if got := rw.rewrite(inject.Address{Local: "root"}); got != "root@localhost.example.com" {
		t.Errorf("dotless defaulthost: %q", got)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"joe@x.org":         "joe@x.org",
		"john smith@x.org":  `"john smith"@x.org`,
		"user-@host-@[]":    `"user-@host-"@[]`,
		`"quoted"@x`:        `"quoted"@x`,
		".dot@x":            `".dot"@x`,
		"a..b@x":            `"a..b"@x`,
		"":                  "",
		`back\slash"q@x.or`: `"back\\slash\"q"@x.or`,
	} {
		if got := quoteAddr(in); got != want {
			t.Errorf("quoteAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	cases := []struct {
		argv     []string
		strategy inject.Strategy
		print    bool
		sender   string
		rcpts    []string
		err      string
	}{
		{argv: []string{"qmail-inject"}, strategy: inject.StrategyArgsOrHeader},
		{argv: []string{"qmail-inject", "-n", "-fjoe", "you"}, strategy: inject.StrategyArgsOrHeader, print: true, sender: "joe", rcpts: []string{"you"}},
		{argv: []string{"qmail-inject", "-nf", "joe", "you", "-a"}, strategy: inject.StrategyArgsOrHeader, print: true, sender: "joe", rcpts: []string{"you", "-a"}},
		{argv: []string{"qmail-inject", "-a", "-h"}, strategy: inject.StrategyHeader},
		{argv: []string{"qmail-inject", "-hH"}, strategy: inject.StrategyBoth},
		{argv: []string{"qmail-inject", "-Ha"}, strategy: inject.StrategyArgs},
		{argv: []string{"qmail-inject", "-nN"}, strategy: inject.StrategyArgsOrHeader},
		{argv: []string{"qmail-inject", "--", "-x"}, strategy: inject.StrategyArgsOrHeader, rcpts: []string{"-x"}},
		{argv: []string{"qmail-inject", "-t"}, err: `unknown option "-t"`},
		{argv: []string{"qmail-inject", "-f"}, err: "needs a value"},
	}
	for _, c := range cases {
		r, err := parseArgs(c.argv)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || exitStatus(submit.Outcome{}, err) != 100 {
				t.Errorf("%q: err %v, want %q and exit 100", c.argv, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.argv, err)
			continue
		}
		if r.strategy != c.strategy || r.print != c.print || r.sender != c.sender || strings.Join(r.recipients, " ") != strings.Join(c.rcpts, " ") {
			t.Errorf("%q: %+v", c.argv, r)
		}
	}
}

func TestExitStatus(t *testing.T) {
	res := func(cs ...relay.Class) submit.Outcome {
		var o submit.Outcome
		for _, c := range cs {
			o.Results = append(o.Results, relay.Result{Class: c})
		}
		return o
	}
	kept := res(relay.Delivered, relay.Deferred)
	kept.Kept = true
	cases := []struct {
		name string
		o    submit.Outcome
		err  error
		want int
	}{
		{"delivered", res(relay.Delivered), nil, 0},
		{"queued only", submit.Outcome{Kept: true}, nil, 0},
		{"deferred and kept", kept, nil, 0},
		{"deferred, not kept", res(relay.Delivered, relay.Deferred), nil, 111},
		{"failed", res(relay.Deferred, relay.Failed), nil, 100},
		{"usage", submit.Outcome{}, &usageError{"x"}, 100},
		{"bad address", submit.Outcome{}, &inject.Error{Kind: inject.KindData}, 100},
		{"no recipients", submit.Outcome{}, &inject.Error{Kind: inject.KindUsage}, 100},
		{"read error", submit.Outcome{}, &inject.Error{Kind: inject.KindRead}, 111},
		{"spool", submit.Outcome{}, &submit.Error{Kind: submit.KindSpool, Err: errors.New("x")}, 111},
		{"config", submit.Outcome{}, &configError{errors.New("x")}, 111},
		{"unknown", submit.Outcome{}, errors.New("surprise"), 111},
	}
	for _, c := range cases {
		if got := exitStatus(c.o, c.err); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// FuzzRewrite: whatever the address, the rewrite gives local@domain, the
// domain has a dot or is a literal, and rewriting again changes nothing.
func FuzzRewrite(f *testing.F) {
	for _, s := range [][2]string{{"djb", ""}, {"eric", "mammoth.cs+"}, {"djb", "silverton"}, {"x", "[1.2.3.4]"}, {"foo", "[]"}, {`"a b"`, "x+"}, {"a", "+"}} {
		f.Add(s[0], s[1], false)
	}
	f.Fuzz(func(t *testing.T, local, domain string, route bool) {
		if local == "" || strings.Contains(domain, "@") {
			return // the address scanner never gives these
		}
		a := inject.Address{Local: local, Domain: domain, Route: route}
		got := testRW.rewrite(a)
		i := strings.LastIndexByte(got, '@')
		if i < 0 || got[:i] != local {
			t.Fatalf("%+v: %q lost the local part", a, got)
		}
		dom := got[i+1:]
		if !strings.Contains(dom, ".") && !strings.HasPrefix(dom, "[") {
			t.Fatalf("%+v: %q has a dotless domain", a, got)
		}
		again := testRW.rewrite(inject.Address{Local: got[:i], Domain: dom})
		if again != got {
			t.Fatalf("%+v: %q rewrites again to %q", a, got, again)
		}
	})
}
