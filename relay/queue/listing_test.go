package queue

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"sort"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/listing.golden")

func listingEntries() []Entry {
	return []Entry{
		{
			ID:        "0187A3B4C5D6E7F8-1a2b3c4d",
			Arrival:   time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
			Sender:    "alice@example.com",
			Size:      2048,
			MessageID: "<1@example.com>",
			Attempts:  2, LastAttempt: time.Date(2026, 11, 21, 12, 1, 0, 0, time.UTC),
			NextAttempt: time.Date(2026, 11, 21, 12, 3, 0, 0, time.UTC),
			Recipients: []Recipient{
				{"bob@example.org", Pending, "452 4.2.2 mailbox full"},
				{"carol@example.org", Delivered, "250 2.0.0 ok"},
				{"dave@example.org", Pending, ""},
				{"erin@example.org", Failed, "550 5.1.1 no such user"},
			},
		},
		{
			ID:          "0187A3B4C5D6E7F9-0000beef",
			Arrival:     time.Date(2026, 12, 2, 9, 5, 7, 0, time.UTC),
			Sender:      "",
			Size:        1234567,
			Bounce:      true,
			NextAttempt: time.Date(2026, 12, 2, 9, 5, 7, 0, time.UTC),
			Recipients:  []Recipient{{"alice@example.com", Pending, "qmtp: cannot connect to qmtp://192.0.2.1:209: connection refused"}},
		},
	}
}

func TestWriteListing(t *testing.T) {
	var b bytes.Buffer
	if err := WriteListing(&b, listingEntries()); err != nil {
		t.Fatal(err)
	}
	golden := "testdata/listing.golden"
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("listing\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	WriteListing(&b, listingEntries()[:1])
	if want := "-- 2 Kbytes in 1 Request.\n"; !bytes.HasSuffix(b.Bytes(), []byte(want)) {
		t.Errorf("one message: %q", b.String())
	}
	b.Reset()
	WriteListing(&b, nil)
	if b.String() != "Mail queue is empty\n" {
		t.Errorf("empty queue: %q", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, listingEntries()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if doc["count"] != 2.0 || doc["bytes"] != 2048.0+1234567 {
		t.Errorf("count %v, bytes %v", doc["count"], doc["bytes"])
	}
	msgs := doc["messages"].([]any)
	m := msgs[0].(map[string]any)
	keys := func(m map[string]any) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		sort.Strings(k)
		return k
	}
	if got, want := keys(m), []string{"arrival", "attempts", "id", "message_id", "next_attempt", "recipients", "sender", "size"}; !reflect.DeepEqual(got, want) {
		t.Errorf("message keys %v, want %v", got, want)
	}
	if m["id"] != "0187A3B4C5D6E7F8-1a2b3c4d" || m["arrival"] != "2026-11-21T12:00:00Z" || m["size"] != 2048.0 ||
		m["sender"] != "alice@example.com" || m["message_id"] != "<1@example.com>" || m["attempts"] != 2.0 ||
		m["next_attempt"] != "2026-11-21T12:03:00Z" {
		t.Errorf("message %v", m)
	}
	rcpts := m["recipients"].([]any)
	if len(rcpts) != 4 {
		t.Fatalf("recipients %v: every recipient, whatever its state", rcpts)
	}
	r := rcpts[3].(map[string]any)
	if got, want := keys(r), []string{"address", "reply", "state"}; !reflect.DeepEqual(got, want) {
		t.Errorf("recipient keys %v, want %v", got, want)
	}
	if r["address"] != "erin@example.org" || r["state"] != "failed" || r["reply"] != "550 5.1.1 no such user" {
		t.Errorf("recipient %v", r)
	}
	if s := msgs[1].(map[string]any)["sender"]; s != "" {
		t.Errorf("null sender as %v", s)
	}

	b.Reset()
	WriteJSON(&b, nil)
	if got := b.String(); got != "{\n  \"messages\": [],\n  \"count\": 0,\n  \"bytes\": 0\n}\n" {
		t.Errorf("empty queue: %s", got)
	}
}

// CountUpTo counts queued messages by name only: it stops at its limit, and
// it counts a message whose envelope does not parse (List reports that one)
// but not a stray file.
func TestCountUpTo(t *testing.T) {
	q, _ := newQueue(t, Options{})
	for i := 0; i < 130; i++ {
		enqueue(t, q, "alice@example.com", "bob@example.org")
	}
	e := listAll(t, q)[0]
	if err := os.WriteFile(q.path(dirEnv, e.ID), []byte("not an envelope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(q.path(dirEnv, "stray"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ limit, want int }{{0, 0}, {1, 1}, {2, 2}, {64, 64}, {65, 65}, {130, 130}, {500, 130}} {
		if got, err := q.CountUpTo(c.limit); err != nil || got != c.want {
			t.Errorf("CountUpTo(%d) = %d, %v; want %d", c.limit, got, err, c.want)
		}
	}
}
