package main

import (
	"testing"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/relay/aliases"
	"github.com/relaymail/relaymail/relay/inject"
)

func TestLocalOptions(t *testing.T) {
	m, err := aliases.Parse("/etc/aliases", []byte("root: admin@example.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { aliasMap = nil }()
	aliasMap = m
	cases := []struct {
		name      string
		override  bool
		rewrite   string
		req       request
		senderSet bool
		aliases   bool
		mode      inject.FromRewrite
	}{
		{name: "-f allowed", override: true, rewrite: "missing", req: request{Sender: "x@y", SenderSet: true}, senderSet: true, aliases: true, mode: inject.FromMissing},
		{name: "-f ignored", override: false, rewrite: "missing", req: request{Sender: "x@y", SenderSet: true}, senderSet: false, aliases: true, mode: inject.FromMissing},
		{name: "no -f, override off", override: false, rewrite: "never", req: request{}, senderSet: false, aliases: true, mode: inject.FromNever},
		{name: "-n drops the aliases", override: true, rewrite: "always", req: request{NoAliases: true}, aliases: false, mode: inject.FromAlways},
	}
	for _, c := range cases {
		cfg := &config.Config{Domain: "example.com", Hostname: "host.example.com", From: "noreply", AllowFromOverride: c.override, RewriteFrom: c.rewrite}
		o := inject.Options{Sender: c.req.Sender, SenderSet: c.req.SenderSet}
		localOptions(&o, &c.req, cfg)
		if o.SenderSet != c.senderSet || (o.Aliases != nil) != c.aliases || o.FromRewrite != c.mode || o.Masquerade != "noreply" {
			t.Errorf("%s: SenderSet %v, aliases %v, mode %v, masquerade %q", c.name, o.SenderSet, o.Aliases != nil, o.FromRewrite, o.Masquerade)
		}
		if !c.senderSet && o.Sender != "" {
			t.Errorf("%s: sender %q kept", c.name, o.Sender)
		}
		if len(o.LocalDomains) != 2 {
			t.Errorf("%s: local domains %q", c.name, o.LocalDomains)
		}
	}
}
