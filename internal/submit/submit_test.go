package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/internal/maillog"
	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/aliases"
	"github.com/relaymail/relaymail/relay/inject"
	"github.com/relaymail/relaymail/relay/relaytest"
	"github.com/relaymail/relaymail/relay/smarthost"
)

func testConfig(t *testing.T, queue bool, srv *relaytest.QMTPServer) *config.Config {
	cfg := &config.Config{Domain: "example.com", Hostname: "host.example.com", Timeout: 5 * time.Second,
		Queue: queue, QueueDir: filepath.Join(t.TempDir(), "q"), RetryMin: time.Minute, RetryMax: time.Hour, QueueLifetime: 24 * time.Hour,
		RewriteFrom: "missing", AllowFromOverride: true}
	if srv != nil {
		u, err := smarthost.Parse("qmtp://" + srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Smarthosts = []*smarthost.URL{u}
	}
	return cfg
}

func newSubmitter(t *testing.T, cfg *config.Config, stderr *strings.Builder) *Submitter {
	s := &Submitter{Config: cfg, Log: maillog.New("none", "test", io.Discard),
		Errorf: func(f string, a ...any) { fmt.Fprintf(stderr, "test: "+f+"\n", a...) }}
	return s
}

func message(rcpts ...string) Message {
	return Message{Mode: 'i', Intake: inject.Options{Recipients: rcpts, User: "alice", Domain: "example.com", Hostname: "host.example.com", IgnoreDots: true}}
}

func TestSubmit(t *testing.T) {
	srv := relaytest.NewQMTPServer(t)
	srv.Script = func(p *relaytest.QMTPPackage, i int) relaytest.QMTPAction {
		if i == 1 {
			return relaytest.Reply("Z", "busy")
		}
		return relaytest.Reply("K", "ok")
	}
	for _, queue := range []bool{false, true} {
		var stderr strings.Builder
		s := newSubmitter(t, testConfig(t, queue, srv), &stderr)
		if err := s.Open(); err != nil {
			t.Fatal(err)
		}
		o, err := s.Submit(context.Background(), strings.NewReader("Subject: s\n\nb\n"), message("a@x.org", "b@x.org"))
		if err != nil {
			t.Fatal(err)
		}
		if len(o.Results) != 2 || o.Results[0].Class != relay.Delivered || o.Results[1].Class != relay.Deferred {
			t.Fatalf("queue %v: results %+v", queue, o.Results)
		}
		if o.Kept != queue || (o.QueuedAs != "") != queue {
			t.Errorf("queue %v: kept %v, queued as %q", queue, o.Kept, o.QueuedAs)
		}
		if !strings.Contains(stderr.String(), "test: b@x.org: deferred: busy") {
			t.Errorf("queue %v: stderr %q", queue, stderr.String())
		}
	}
}

func TestSubmitErrors(t *testing.T) {
	var stderr strings.Builder
	s := newSubmitter(t, testConfig(t, false, nil), &stderr)
	var se *Error
	if err := s.Open(); !errors.As(err, &se) || se.Kind != KindConfig || !strings.Contains(stderr.String(), "no smarthost is configured") {
		t.Errorf("queue off without smarthost: %v, %q", err, stderr.String())
	}

	// Queue on, no smarthost: the message is queued and the reason said.
	stderr.Reset()
	s = newSubmitter(t, testConfig(t, true, nil), &stderr)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	o, err := s.Submit(context.Background(), strings.NewReader("b\n"), message("a@x.org"))
	if err != nil || !o.Kept || o.Results != nil || !strings.Contains(stderr.String(), "the message was queued as") {
		t.Errorf("queued only: %+v %v %q", o, err, stderr.String())
	}

	// An intake error comes back as itself, reported once through Fatalf.
	var fatal strings.Builder
	s.Fatalf = func(f string, a ...any) { fmt.Fprintf(&fatal, "fatal: "+f+"\n", a...) }
	_, err = s.Submit(context.Background(), strings.NewReader("b\n"), message("a@(x"))
	var ie *inject.Error
	if !errors.As(err, &ie) || ie.Kind != inject.KindData || !strings.HasPrefix(fatal.String(), "fatal: recipient") {
		t.Errorf("bad recipient: %v, %q", err, fatal.String())
	}
}

func TestLoadAliasesAndLocal(t *testing.T) {
	cfg := testConfig(t, false, nil)
	cfg.Aliases = aliases.DefaultPath
	if _, err := LoadAliases(cfg); err != nil {
		// A host that has /etc/aliases may hold anything; only a missing
		// one must be fine.
		var ae *aliases.Error
		if !errors.As(err, &ae) {
			t.Errorf("default file: %v", err)
		}
	}
	cfg.Aliases = filepath.Join(t.TempDir(), "missing")
	if _, err := LoadAliases(cfg); err == nil {
		t.Error("a missing file that was named is no error")
	}
	cfg.RewriteFrom, cfg.From = "always", "noreply"
	var o inject.Options
	Local(&o, cfg, nil)
	if o.FromRewrite != inject.FromAlways || o.Masquerade != "noreply" || strings.Join(o.LocalDomains, " ") != "example.com host.example.com" {
		t.Errorf("Local: %+v", o)
	}
}
