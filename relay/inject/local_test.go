package inject

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/relay/aliases"
)

const aliasFile = `root: admin@example.com
www-data: root
postmaster: root
ops: admin@example.com, oncall@example.org
self: self, audit@example.com
`

func withAliases(t *testing.T, o *Options) {
	t.Helper()
	m, err := aliases.Parse("/etc/aliases", []byte(aliasFile))
	if err != nil {
		t.Fatal(err)
	}
	o.Aliases = m
	o.LocalDomains = []string{"example.com", "host.example.com"}
}

// Aliases fix the envelope and the To and Cc fields alike.
func TestIntakeAliases(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		opt    func(*Options)
		rcpts  []string
		header string // the header lines expected (generated ones stripped)
	}{
		{name: "cron to root", in: "From: root (Cron Daemon)\nTo: root\n\nb\n",
			opt:   func(o *Options) { o.Recipients = []string{"root"} },
			rcpts: []string{"admin@example.com"}, header: "From: root@example.com (Cron Daemon)\nTo: admin@example.com\n"},
		{name: "display name kept", in: "To: The Admin <root@host.example.com>\n\nb\n",
			opt:   func(o *Options) { o.Extract = true },
			rcpts: []string{"admin@example.com"}, header: "To: The Admin <admin@example.com>\n"},
		{name: "comment kept", in: "To: www-data (web server)\n\nb\n",
			opt:   func(o *Options) { o.Extract = true },
			rcpts: []string{"admin@example.com"}, header: "To: admin@example.com (web server)\n"},
		{name: "case", in: "To: ROOT@Example.COM\n\nb\n",
			opt:   func(o *Options) { o.Extract = true },
			rcpts: []string{"admin@example.com"}, header: "To: admin@example.com\n"},
		{name: "several targets replace the mailbox", in: "To: Ops Team <ops>, x@y.org\n\nb\n",
			opt:   func(o *Options) { o.Extract = true },
			rcpts: []string{"admin@example.com", "oncall@example.org", "x@y.org"}, header: "To: admin@example.com, oncall@example.org, x@y.org\n"},
		{name: "alias to itself", in: "Cc: self\n\nb\n",
			opt:   func(o *Options) { o.Extract = true },
			rcpts: []string{"self@example.com", "audit@example.com"}, header: "Cc: self@example.com, audit@example.com\n"},
		{name: "foreign domain untouched", in: "To: root@other.org\n\nb\n",
			opt:   func(o *Options) { o.Extract = true },
			rcpts: []string{"root@other.org"}, header: "To: root@other.org\n"},
		{name: "Bcc expands and goes", in: "To: x@y.org\nBcc: postmaster\n\nb\n",
			opt:   func(o *Options) { o.Extract = true },
			rcpts: []string{"x@y.org", "admin@example.com"}, header: "To: x@y.org\n"},
		{name: "From is not aliased", in: "From: root\nTo: x@y.org\n\nb\n",
			opt:   func(o *Options) { o.Extract = true },
			rcpts: []string{"x@y.org"}, header: "From: root@example.com\nTo: x@y.org\n"},
		{name: "duplicates after expansion", in: "To: root, www-data, admin@example.com\n\nb\n",
			opt:   func(o *Options) { o.Extract = true },
			rcpts: []string{"admin@example.com"}, header: "To: admin@example.com, admin@example.com, admin@example.com\n"},
		{name: "no aliases: -n", in: "To: root\n\nb\n",
			opt:   func(o *Options) { o.Extract = true; o.Aliases = nil },
			rcpts: []string{"root@example.com"}, header: "To: root@example.com\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions()
			withAliases(t, &o)
			c.opt(&o)
			sub, out, err := runIntake(t, c.in, o)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sub.Envelope.Recipients, c.rcpts) {
				t.Errorf("recipients %q, want %q", sub.Envelope.Recipients, c.rcpts)
			}
			head, _, _ := strings.Cut(stripGenerated(out), "\n\n")
			head = strings.Replace(head+"\n", "From: alice@example.com\n", "", 1)
			if head != c.header {
				t.Errorf("header\n%q\nwant\n%q", head, c.header)
			}
		})
	}
}

func TestEnvelopeTrace(t *testing.T) {
	o := baseOptions()
	withAliases(t, &o)
	o.Recipients = []string{"www-data", "bob", "x@y.org"}
	o.Sender, o.SenderSet = "cron", true
	var lines []string
	o.Trace = func(l string) { lines = append(lines, l) }
	env, err := Envelope(o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"sender cron -> cron@example.com",
		"www-data -> admin@example.com (alias, /etc/aliases lines 2, 1)",
		"bob -> bob@example.com (qualified)",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("trace\n%q\nwant\n%q", lines, want)
	}
	if !reflect.DeepEqual(env.Recipients, []string{"admin@example.com", "bob@example.com", "x@y.org"}) {
		t.Errorf("recipients %q", env.Recipients)
	}
}

func TestRewriteFrom(t *testing.T) {
	cases := []struct {
		name   string
		mode   FromRewrite
		masq   string
		in     string
		sender string // -f; "" for none
		env    string
		header string
	}{
		{name: "missing: bare From qualified", mode: FromMissing, in: "From: root (Cron Daemon)\n\nb\n", env: "alice@example.com", header: "From: root@example.com (Cron Daemon)\n"},
		{name: "missing: From added", mode: FromMissing, in: "Subject: s\n\nb\n", env: "alice@example.com", header: "Subject: s\nFrom: alice@example.com\n"},
		{name: "never: bare From kept", mode: FromNever, in: "From: root (Cron Daemon)\n\nb\n", env: "alice@example.com", header: "From: root (Cron Daemon)\n"},
		{name: "never: no From added", mode: FromNever, in: "Subject: s\n\nb\n", env: "alice@example.com", header: "Subject: s\n"},
		{name: "never: To still qualified", mode: FromNever, in: "To: bob\n\nb\n", env: "alice@example.com", header: "To: bob@example.com\n"},
		{name: "always: name kept", mode: FromAlways, masq: "noreply@example.net", in: "From: \"Web App\" <www-data@host.example.com>\n\nb\n", sender: "www-data", env: "noreply@example.net", header: "From: \"Web App\" <noreply@example.net>\n"},
		{name: "always: comment kept", mode: FromAlways, masq: "noreply@example.net", in: "From: root (Cron Daemon)\n\nb\n", env: "noreply@example.net", header: "From: noreply@example.net (Cron Daemon)\n"},
		{name: "always: added", mode: FromAlways, masq: "noreply", in: "Subject: s\n\nb\n", env: "noreply@example.com", header: "Subject: s\nFrom: noreply@example.com\n"},
		{name: "always: resent", mode: FromAlways, masq: "noreply@example.net", in: "From: a@b.org\nResent-From: root\n\nb\n", env: "noreply@example.net", header: "From: noreply@example.net\nResent-From: noreply@example.net\n"},
		{name: "always without from: the default sender", mode: FromAlways, in: "From: x@y.org\n\nb\n", sender: "z@y.org", env: "alice@example.com", header: "From: alice@example.com\n"},
		{name: "always keeps the null sender", mode: FromAlways, masq: "noreply@example.net", in: "From: x@y.org\n\nb\n", sender: "<>", env: "", header: "From: noreply@example.net\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions()
			o.Recipients = []string{"r@x.org"}
			o.FromRewrite, o.Masquerade = c.mode, c.masq
			if c.sender != "" {
				o.Sender, o.SenderSet = c.sender, true
			}
			sub, out, err := runIntake(t, c.in, o)
			if err != nil {
				t.Fatal(err)
			}
			if sub.Envelope.Sender != c.env {
				t.Errorf("sender %q, want %q", sub.Envelope.Sender, c.env)
			}
			head, _, _ := strings.Cut(stripGenerated(out), "\n\n")
			var kept []string
			for _, l := range strings.Split(head, "\n") {
				if !strings.HasPrefix(l, "Resent-Date: ") && !strings.HasPrefix(l, "Resent-Message-ID: ") {
					kept = append(kept, l)
				}
			}
			head = strings.Join(kept, "\n")
			if head+"\n" != c.header {
				t.Errorf("header\n%q\nwant\n%q", head+"\n", c.header)
			}
		})
	}
}

// qmailOptions is the qmail-inject dialect as cmd/qmail-inject sets it,
// with a rewrite that only qualifies, to test the options themselves.
func qmailOptions() Options {
	o := baseOptions()
	o.Strategy = StrategyArgsOrHeader
	o.ApparentlyTo, o.ResentRecipientsOnly, o.TolerateBadRecipientFields = true, true, true
	o.MboxLine, o.ReturnPathSetsSender, o.AddCcWhenNoRecipients, o.GeneratedFirst = true, true, true, true
	o.StrictFields, o.SpaceIsComma, o.IgnoreDots = true, true, true
	o.DateFormat = func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04:05 -0000") }
	o.MessageID = func(time.Time) string { return "<ID@host.example.com>" }
	o.RewriteFields = []string{"To", "Cc", "Bcc", "Apparently-To", "From", "Return-Path", "Resent-To", "Resent-From"}
	o.Rewrite = func(a Address) string {
		if a.Domain == "" {
			return a.Local + "@example.com"
		}
		if !strings.Contains(a.Domain, ".") {
			return a.Local + "@" + a.Domain + ".example.com"
		}
		return a.String()
	}
	return o
}

func TestQmailDialect(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		opt   func(*Options)
		out   string
		env   string
		rcpts []string
	}{
		{name: "generated first, Cc added", in: "Subject: s\n\nb\n", opt: func(o *Options) { o.Recipients = []string{"you"} },
			out: "Date: 21 Nov 2026 12:00:00 -0000\nMessage-ID: <ID@host.example.com>\nFrom: alice@example.com\nCc: recipient list not shown: ;\nSubject: s\n\nb\n",
			env: "alice@example.com", rcpts: []string{"you@example.com"}},
		{name: "header recipients when no args", in: "To: djb fred\nApparently-To: x@silverton\n\nb\n",
			out: "Date: 21 Nov 2026 12:00:00 -0000\nMessage-ID: <ID@host.example.com>\nFrom: alice@example.com\nTo: djb@example.com, fred@example.com\nApparently-To: x@silverton.example.com\n\nb\n",
			env: "alice@example.com", rcpts: []string{"djb@example.com", "fred@example.com", "x@silverton.example.com"}},
		{name: "-a ignores the header", in: "To: a@x.org\n\nb\n", opt: func(o *Options) { o.Strategy = StrategyArgs; o.Recipients = []string{"b@x.org"} },
			env: "alice@example.com", rcpts: []string{"b@x.org"}},
		{name: "-h ignores the args", in: "To: a@x.org\n\nb\n", opt: func(o *Options) { o.Strategy = StrategyHeader; o.Recipients = []string{"b@x.org"} },
			env: "alice@example.com", rcpts: []string{"a@x.org"}},
		{name: "-H uses both", in: "To: a@x.org\n\nb\n", opt: func(o *Options) { o.Strategy = StrategyBoth; o.Recipients = []string{"b@x.org"} },
			env: "alice@example.com", rcpts: []string{"b@x.org", "a@x.org"}},
		{name: "mbox line", in: "From joe@x.org Mon Jan  1 00:00:00 2024\nSubject: s\n\nb\n", opt: func(o *Options) { o.Recipients = []string{"a@x.org"} },
			out: "Date: 21 Nov 2026 12:00:00 -0000\nMessage-ID: <ID@host.example.com>\nFrom: alice@example.com\nCc: recipient list not shown: ;\nMBOX-Line: From joe@x.org Mon Jan  1 00:00:00 2024\nSubject: s\n\nb\n",
			env: "alice@example.com", rcpts: []string{"a@x.org"}},
		{name: "Return-Path sets the sender", in: "Return-Path: <bounces@lists>\nTo: a@x.org\n\nb\n",
			env: "bounces@lists.example.com", rcpts: []string{"a@x.org"}},
		{name: "-f beats Return-Path", in: "Return-Path: <bounces@lists.x.org>\nTo: a@x.org\n\nb\n", opt: func(o *Options) { o.Sender, o.SenderSet = "joe", true },
			env: "joe@example.com", rcpts: []string{"a@x.org"}},
		{name: "null Return-Path with VERP", in: "Return-Path: <>\nTo: a@x.org\n\nb\n", opt: func(o *Options) { o.VERPSuffix = "-@[]" },
			env: "-@[]", rcpts: []string{"a@x.org"}},
		{name: "bad Return-Path", in: "Return-Path: <a@(x>\nTo: a@x.org\n\nb\n", env: "error"},
		{name: "bad From", in: "From: a@@b\nTo: a@x.org\n\nb\n", env: "error"},
		{name: "bad To is tolerated", in: "To: a@@b, c@x.org\nCc: d@x.org\n\nb\n",
			out: "Date: 21 Nov 2026 12:00:00 -0000\nMessage-ID: <ID@host.example.com>\nFrom: alice@example.com\nTo: a@@b, c@x.org\nCc: d@x.org\n\nb\n",
			env: "alice@example.com", rcpts: []string{"d@x.org"}},
		{name: "delete From and Message-ID", in: "From: x@y.org\nMessage-ID: <old@y.org>\nTo: a@x.org\n\nb\n", opt: func(o *Options) { o.DeleteFrom, o.DeleteMessageID = true, true },
			out: "Date: 21 Nov 2026 12:00:00 -0000\nMessage-ID: <ID@host.example.com>\nFrom: alice@example.com\nTo: a@x.org\n\nb\n",
			env: "alice@example.com", rcpts: []string{"a@x.org"}},
		{name: "resent", in: "From: a@x.org\nTo: b@x.org\nResent-From: c@x.org\nResent-To: d@silverton\n\nb\n",
			out: "Resent-Date: 21 Nov 2026 12:00:00 -0000\nResent-Message-ID: <ID@host.example.com>\nFrom: a@x.org\nTo: b@x.org\nResent-From: c@x.org\nResent-To: d@silverton.example.com\n\nb\n",
			env: "alice@example.com", rcpts: []string{"d@silverton.example.com"}},
		{name: "resent without Resent-To: Resent-Cc added, no recipients", in: "To: b@x.org\nResent-From: c@x.org\n\nb\n", opt: func(o *Options) { o.AllowNoRecipients = true },
			out: "Resent-Date: 21 Nov 2026 12:00:00 -0000\nResent-Message-ID: <ID@host.example.com>\nResent-Cc: recipient list not shown: ;\nTo: b@x.org\nResent-From: c@x.org\n\nb\n",
			env: "alice@example.com"},
		{name: "Mail-Followup-To", in: "To: List@Lists.x.org, bob\nCc: carol@x.org\n\nb\n", opt: func(o *Options) { o.MailFollowupTo = []string{"list@lists.x.org"} },
			out: "Date: 21 Nov 2026 12:00:00 -0000\nMessage-ID: <ID@host.example.com>\nFrom: alice@example.com\nMail-Followup-To: List@Lists.x.org,\n  bob@example.com,\n  carol@x.org\nTo: List@Lists.x.org, bob@example.com\nCc: carol@x.org\n\nb\n",
			env: "alice@example.com", rcpts: []string{"List@Lists.x.org", "bob@example.com", "carol@x.org"}},
		{name: "Mail-Followup-To already there", in: "To: list@lists.x.org\nMail-Followup-To: me@x.org\n\nb\n", opt: func(o *Options) { o.MailFollowupTo = []string{"list@lists.x.org"} },
			out: "Date: 21 Nov 2026 12:00:00 -0000\nMessage-ID: <ID@host.example.com>\nFrom: alice@example.com\nTo: list@lists.x.org\nMail-Followup-To: me@x.org\n\nb\n",
			env: "alice@example.com", rcpts: []string{"list@lists.x.org"}},
		{name: "source route stripped", in: "To: Joe <@relay.x.org:joe@silverton>\n\nb\n",
			out: "Date: 21 Nov 2026 12:00:00 -0000\nMessage-ID: <ID@host.example.com>\nFrom: alice@example.com\nTo: Joe <joe@silverton.example.com>\n\nb\n",
			env: "alice@example.com", rcpts: []string{"joe@silverton.example.com"}},
		{name: "a lone dot is a line", in: "To: a@x.org\n\none\n.\ntwo\n",
			out: "Date: 21 Nov 2026 12:00:00 -0000\nMessage-ID: <ID@host.example.com>\nFrom: alice@example.com\nTo: a@x.org\n\none\n.\ntwo\n",
			env: "alice@example.com", rcpts: []string{"a@x.org"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := qmailOptions()
			if c.opt != nil {
				c.opt(&o)
			}
			sub, out, err := runIntake(t, c.in, o)
			if c.env == "error" {
				if ie, ok := err.(*Error); !ok || ie.Kind != KindData {
					t.Fatalf("err = %v, want a data error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.out != "" && out != c.out {
				t.Errorf("message\n%s\nwant\n%s", out, c.out)
			}
			if sub.Envelope.Sender != c.env || !reflect.DeepEqual(sub.Envelope.Recipients, c.rcpts) {
				t.Errorf("envelope %q %q, want %q %q", sub.Envelope.Sender, sub.Envelope.Recipients, c.env, c.rcpts)
			}
		})
	}
}
