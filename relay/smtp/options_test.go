package smtp

import (
	"errors"
	"strings"
	"testing"

	"github.com/relaymail/relaymail/relay"
)

func TestOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"tls mode", func(o *Options) { o.TLS = "maybe" }, `smtp: unknown TLS mode "maybe"`},
		{"hostname", func(o *Options) { o.Hostname = "evil\r\nRSET" }, "is not usable in EHLO"},
		{"lmtp on 25", func(o *Options) { o.LMTP = true }, "lmtp: refusing to speak LMTP to mx.test:25"},
		{"mechanism", func(o *Options) { o.Auth = &Auth{User: "u", Mechanism: "digest-md5"} }, `unknown AUTH mechanism "digest-md5"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			tc.edit(&opts)
			sc := newScript(t)
			_, err := NewClient(ctx, sc, opts)
			if err == nil || !relay.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			sc.done() // nothing was read or written
			if !sc.closed {
				t.Error("connection left open")
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		name string
	}{
		{Options{Address: "mx:587"}, "smtp://mx:587"},
		{Options{Address: "mx:465", TLS: TLSImplicit}, "smtps://mx:465"},
		{Options{Network: "unix", Address: "/run/lmtp", LMTP: true}, "lmtp:/run/lmtp"},
		{Options{Address: "mx:587", Name: "smtp://user@mx:587"}, "smtp://user@mx:587"},
	} {
		o := tc.opts.withDefaults()
		if o.Name != tc.name || o.Network == "" || o.TLS == "" || o.Timeouts.DataEnd != DefaultDataEndTimeout {
			t.Errorf("%+v: %+v", tc.opts, o)
		}
	}
	if got := (Options{Address: "[2001:db8::1]:25"}).host(); got != "2001:db8::1" {
		t.Errorf("host %q", got)
	}
	if got := (Options{Network: "unix", Address: "/run/s"}).host(); got != "/run/s" {
		t.Errorf("host %q", got)
	}
}

func TestErrorTypes(t *testing.T) {
	re := newReplyError("RCPT", &reply{Code: 450, Enhanced: "4.2.0", Lines: []string{"4.2.0 greylisted"}}, false)
	if re.Error() != "smtp: RCPT: 450 4.2.0 greylisted" || !re.Temporary() {
		t.Errorf("%q %v", re.Error(), re.Temporary())
	}
	re = newReplyError("end of data", &reply{Code: 552, Lines: []string{"full"}}, true)
	if re.Error() != "lmtp: end of data: 552 full" || re.Temporary() {
		t.Errorf("%q", re.Error())
	}
	for _, pe := range []*PinError{{Want: "x", Invalid: true}, {Want: "AA"}, {Want: "AA", Got: "BB"}} {
		if !strings.HasPrefix(pe.Error(), "smtp: ") {
			t.Errorf("%q", pe.Error())
		}
	}
	if got := DescribeTLSError(nil, "x"); got != "" {
		t.Errorf("%q", got)
	}
	if got := DescribeTLSError(errors.New("boom"), "mx"); got != "the TLS handshake with mx failed: boom" {
		t.Errorf("%q", got)
	}
}
