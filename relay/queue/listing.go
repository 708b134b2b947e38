package queue

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// CountUpTo counts the queued messages (the env/ files named by a queue
// ID), stopping once it has limit: enough to tell whether anything but a
// caller's own message waits, without reading one envelope. After every
// successful delivery sendmail asks this, so it must not cost more with a
// large queue.
func (q *Queue) CountUpTo(limit int) (int, error) {
	d, err := os.Open(q.path(dirEnv))
	if err != nil {
		return 0, fmt.Errorf("queue: cannot list the queue: %w", err)
	}
	defer d.Close()
	n := 0
	for n < limit {
		names, err := d.Readdirnames(64)
		for _, name := range names {
			if validID(name) {
				n++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("queue: cannot list the queue: %w", err)
		}
	}
	return min(n, limit), nil
}

// List returns every queued message (every env/ file), sorted by ID. A file
// that cannot be read is named in the error, and the listing goes on
// without it: one damaged envelope must not hide the rest of the queue.
func (q *Queue) List() ([]Entry, error) {
	des, err := os.ReadDir(q.path(dirEnv))
	if err != nil {
		return nil, fmt.Errorf("queue: cannot list the queue: %w", err)
	}
	var entries []Entry
	var errs []error
	for _, de := range des { // os.ReadDir sorts by name, and IDs sort by arrival
		name := de.Name()
		if !validID(name) {
			errs = append(errs, fmt.Errorf("queue: %s is not a queue ID (a stray file?)", q.path(dirEnv, name)))
			continue
		}
		e, err := q.readEntry(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // delivered while we listed
		}
		if err != nil {
			var pe *parseError
			var ue *UntrustedError
			if !errors.As(err, &pe) && !errors.As(err, &ue) {
				err = fmt.Errorf("queue: %w", err)
			}
			errs = append(errs, err)
			continue
		}
		entries = append(entries, *e)
	}
	return entries, errors.Join(errs...)
}

// listingHeader is Postfix's mailq header, with the queue ID column widened
// for relaymail's 25-character IDs.
const listingHeader = "-Queue ID-              --Size-- ----Arrival Time---- -Sender/Recipient-------"

// WriteListing writes entries as Postfix's mailq does: for each message its
// ID, size, arrival time (local time) and sender, then each pending
// recipient, preceded by its last reply in parentheses when it has one;
// then the total.
func WriteListing(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriter(w)
	if len(entries) == 0 {
		bw.WriteString("Mail queue is empty\n")
		return bw.Flush()
	}
	fmt.Fprintln(bw, listingHeader)
	var total int64
	for _, e := range entries {
		total += e.Size
		sender := e.Sender
		if sender == "" {
			sender = "MAILER-DAEMON"
		}
		// The recipient column lines up with the sender, as in Postfix;
		// sizes of up to six digits line up under "--Size--".
		fmt.Fprintf(bw, "%-25s %6d %-20s %s\n", e.ID, e.Size, e.Arrival.Local().Format("Mon Jan _2 15:04:05"), sender)
		for _, r := range e.Recipients {
			if r.State != Pending {
				continue
			}
			if r.Reply != "" {
				fmt.Fprintf(bw, "%8s(%s)\n", "", r.Reply)
			}
			fmt.Fprintf(bw, "%54s%s\n", "", r.Addr)
		}
		bw.WriteByte('\n')
	}
	requests := "Requests"
	if len(entries) == 1 {
		requests = "Request"
	}
	fmt.Fprintf(bw, "-- %d Kbytes in %d %s.\n", (total+1023)/1024, len(entries), requests)
	return bw.Flush()
}

type jsonListing struct {
	Messages []jsonMessage `json:"messages"`
	Count    int           `json:"count"`
	Bytes    int64         `json:"bytes"`
}

type jsonMessage struct {
	ID          string          `json:"id"`
	Arrival     string          `json:"arrival"`
	Size        int64           `json:"size"`
	Sender      string          `json:"sender"`
	MessageID   string          `json:"message_id"`
	Attempts    int             `json:"attempts"`
	NextAttempt string          `json:"next_attempt"`
	Recipients  []jsonRecipient `json:"recipients"`
}

type jsonRecipient struct {
	Address string `json:"address"`
	State   string `json:"state"`
	Reply   string `json:"reply"`
}

// WriteJSON writes entries as one JSON document (mailq --json): every
// recipient with its state, times in RFC 3339, the null sender as "".
func WriteJSON(w io.Writer, entries []Entry) error {
	out := jsonListing{Messages: []jsonMessage{}, Count: len(entries)}
	for _, e := range entries {
		m := jsonMessage{
			ID:          e.ID,
			Arrival:     rfc3339(e.Arrival),
			Size:        e.Size,
			Sender:      e.Sender,
			MessageID:   e.MessageID,
			Attempts:    e.Attempts,
			NextAttempt: rfc3339(e.NextAttempt),
			Recipients:  []jsonRecipient{},
		}
		for _, r := range e.Recipients {
			m.Recipients = append(m.Recipients, jsonRecipient{Address: r.Addr, State: r.State.String(), Reply: r.Reply})
		}
		out.Messages = append(out.Messages, m)
		out.Bytes += e.Size
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
