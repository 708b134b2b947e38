package relay

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestParseEnhanced(t *testing.T) {
	for in, want := range map[string]string{
		"5.1.1 user unknown": "5.1.1",
		"2.0.0 ok":           "2.0.0",
		"4.2.2":              "4.2.2",
		"sorry, no mailbox here by that name (#5.1.1)": "5.1.1",
		"qq write error or disk full (#4.3.0)":         "4.3.0",
		"ok 1795262110 qp 1":                           "",
		"5.1.1x":                                       "",
		"3.1.1 no":                                     "",
		"(#5.1)":                                       "",
		"":                                             "",
	} {
		if got := ParseEnhanced(in); got != want {
			t.Errorf("ParseEnhanced(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScopeOf(t *testing.T) {
	for code, want := range map[string]Scope{
		"":      RecipientScope,
		"5.1.1": RecipientScope, "5.1.3": RecipientScope, "5.2.2": RecipientScope, "5.7.1": RecipientScope,
		"5.1.7": MessageScope, "5.1.8": MessageScope, "5.3.4": MessageScope, "5.6.0": MessageScope, "5.7.0": MessageScope,
	} {
		if got := ScopeOf(code); got != want {
			t.Errorf("ScopeOf(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestErrorClass(t *testing.T) {
	if ClassOf(errors.New("surprise")) != Deferred {
		t.Error("an unclassified error must be temporary")
	}
	wrapped := errors.Join(errors.New("x"), Permanent("op", errors.New("rejected")))
	if !IsPermanent(wrapped) || ClassOf(Temporary("op", errors.New("busy"))) != Deferred {
		t.Error("classes lost through wrapping")
	}
	if IsPermanent(nil) {
		t.Error("nil is not permanent")
	}
}

// fakeRelayer answers with a fixed class per recipient, and records what it
// was asked to send.
type fakeRelayer struct {
	name  string
	class map[string]Class
	err   error
	got   [][]string
}

func (f *fakeRelayer) String() string { return f.name }

func (f *fakeRelayer) Relay(ctx context.Context, env *Envelope, msg *Message) ([]Result, error) {
	f.got = append(f.got, append([]string(nil), env.Recipients...))
	res := make([]Result, len(env.Recipients))
	for i, r := range env.Recipients {
		res[i] = Result{Recipient: r, Class: f.class[r], Text: f.name}
	}
	return res, f.err
}

func TestDeliverFailover(t *testing.T) {
	rcpts := []string{"a@x", "b@x", "c@x"}
	cases := []struct {
		name      string
		relayers  []*fakeRelayer
		want      []Class
		wantHosts []string
		asked     [][][]string // per relayer, the recipient lists it got
	}{
		{name: "first takes all",
			relayers:  []*fakeRelayer{{name: "h1", class: map[string]Class{"a@x": Delivered, "b@x": Delivered, "c@x": Delivered}}, {name: "h2"}},
			want:      []Class{Delivered, Delivered, Delivered},
			wantHosts: []string{"h1", "h1", "h1"},
			asked:     [][][]string{{rcpts}, nil}},
		{name: "partial deferral stays",
			relayers:  []*fakeRelayer{{name: "h1", class: map[string]Class{"a@x": Delivered, "b@x": Deferred, "c@x": Failed}}, {name: "h2"}},
			want:      []Class{Delivered, Deferred, Failed},
			wantHosts: []string{"h1", "h1", "h1"},
			asked:     [][][]string{{rcpts}, nil}},
		{name: "whole deferral moves on",
			relayers:  []*fakeRelayer{{name: "h1"}, {name: "h2", class: map[string]Class{"a@x": Delivered, "b@x": Delivered, "c@x": Failed}}},
			want:      []Class{Delivered, Delivered, Failed},
			wantHosts: []string{"h2", "h2", "h2"},
			asked:     [][][]string{{rcpts}, {rcpts}}},
		{name: "session error moves on with the deferred only",
			relayers: []*fakeRelayer{{name: "h1", class: map[string]Class{"a@x": Delivered, "b@x": Failed}, err: Temporaryf("dropped")},
				{name: "h2", class: map[string]Class{"c@x": Delivered}}},
			want:      []Class{Delivered, Failed, Delivered},
			wantHosts: []string{"h1", "h1", "h2"},
			asked:     [][][]string{{rcpts}, {{"c@x"}}}},
		{name: "all down",
			relayers:  []*fakeRelayer{{name: "h1", err: Temporaryf("refused")}, {name: "h2", err: Temporaryf("refused")}},
			want:      []Class{Deferred, Deferred, Deferred},
			wantHosts: []string{"h2", "h2", "h2"},
			asked:     [][][]string{{rcpts}, {rcpts}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rl []Relayer
			for _, r := range c.relayers {
				rl = append(rl, r)
			}
			res, _ := Deliver(context.Background(), rl, &Envelope{Recipients: rcpts}, &Message{})
			if len(res) != len(rcpts) {
				t.Fatalf("%d results", len(res))
			}
			for i, r := range res {
				if r.Recipient != rcpts[i] || r.Class != c.want[i] || r.Host != c.wantHosts[i] {
					t.Errorf("result %d = %+v, want %s %v from %s", i, r, rcpts[i], c.want[i], c.wantHosts[i])
				}
			}
			for i, r := range c.relayers {
				if !reflect.DeepEqual(r.got, c.asked[i]) {
					t.Errorf("%s was asked %q, want %q", r.name, r.got, c.asked[i])
				}
			}
		})
	}
}

// Duplicated recipients keep one result each, in order (QMTP and LMTP answer
// by position, so a map keyed by address would lose one).
func TestDeliverKeepsDuplicates(t *testing.T) {
	r := &fakeRelayer{name: "h", class: map[string]Class{"a@x": Delivered}}
	res, err := Deliver(context.Background(), []Relayer{r}, &Envelope{Recipients: []string{"a@x", "a@x"}}, &Message{})
	if err != nil || len(res) != 2 || res[0].Class != Delivered || res[1].Class != Delivered {
		t.Errorf("%+v %v", res, err)
	}
}

func TestDeliverCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &fakeRelayer{name: "h"}
	res, err := Deliver(ctx, []Relayer{r}, &Envelope{Recipients: []string{"a@x"}}, &Message{})
	if len(r.got) != 0 || res[0].Class != Deferred || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled delivery: asked %v, results %+v, err %v", r.got, res, err)
	}
}
