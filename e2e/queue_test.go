package e2e

// The queue through the binary: a full disk, concurrent submissions and
// runs, partial LMTP delivery, the delivery modes and -q variants, spool
// permissions, the mailq listing and bounces. Every test has its own spool
// (spoolEnv) and no flush after a send unless that is what it tests.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/relaymail/relaymail/e2e/realserver"
	"github.com/relaymail/relaymail/relay/inject"
	"github.com/relaymail/relaymail/relay/relaytest"
)

// queueMessage is a complete message (intake adds nothing to it, so the
// spool holds exactly these bytes) whose Message-ID is <id@example.com>.
func queueMessage(id, body string) []byte {
	return []byte("From: Alice <alice@example.com>\n" +
		"To: bob@example.org\n" +
		"Subject: queue test " + id + "\n" +
		"Message-ID: <" + id + "@example.com>\n" +
		"Date: Mon, 01 Jan 2024 00:00:00 +0000\n" +
		"\n" + body)
}

func msgID(id string) string { return "<" + id + "@example.com>" }

// messageIDOf is the Message-ID of a message as a server received it.
func messageIDOf(data []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))))
	if err != nil {
		return ""
	}
	return m.Header.Get("Message-ID")
}

// qmtpAccepted maps the Message-ID of each message a QMTP server accepted
// (K) to its accepted recipients, one entry per copy.
func qmtpAccepted(srv *relaytest.QMTPServer) map[string][]string {
	out := map[string][]string{}
	for _, p := range srv.Packages() {
		id := messageIDOf(p.Message)
		for i, r := range p.Recipients {
			if i < len(p.Replies) && strings.HasPrefix(p.Replies[i], "K") {
				out[id] = append(out[id], r)
			}
		}
	}
	return out
}

// deferringQMTP answers every recipient with Z, so that -odi queues.
func deferringQMTP(t *testing.T) *relaytest.QMTPServer {
	srv := relaytest.NewQMTPServer(t)
	srv.Script = func(*relaytest.QMTPPackage, int) relaytest.QMTPAction {
		return relaytest.Reply("Z", "mailbox busy (#4.2.1)")
	}
	return srv
}

// mountTmpfs mounts a tmpfs of size under the test's directory and
// unmounts it at cleanup, failed or not. It skips the test when mounting is
// not permitted.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a %s tmpfs at %s (%v): the full-disk test needs root (CAP_SYS_ADMIN)", size, dir, err)
	}
	// Registered after t.TempDir's removal, so it runs before it.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v (detaching it)", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) (free, block int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize, st.Bsize
}

// A spool on a full file system: sendmail exits 0 only for messages that
// are queued, and 73 with the reason once nothing fits; what it refused
// leaves nothing behind, and what it accepted is delivered later, whole.
func TestQueueFullDisk(t *testing.T) {
	t.Run("fill up", func(t *testing.T) {
		mnt := mountTmpfs(t, "2m")
		zs := deferringQMTP(t)
		env, dir := spoolEnvAt(t, filepath.Join(mnt, "spool"), qmtpURL(zs))
		body := strings.Repeat(strings.Repeat("0123456789", 9)+"abcdefghi\n", 600) // 60,000 bytes
		var acked []string
		refused, inARow := 0, 0
		for i := 0; i < 200 && inARow < 3; i++ {
			id := fmt.Sprintf("full-%03d", i)
			o := runSendmail(t, env, []string{"-i", "bob@example.org"}, queueMessage(id, body))
			switch o.exit {
			case 0:
				acked = append(acked, msgID(id))
				inARow = 0
			case 73:
				refused++
				inARow++
				if !strings.Contains(o.stderr, "no space left on device") {
					t.Errorf("%s: exit 73 without naming the problem:\n%s", id, o.stderr)
				}
				if strings.Contains(o.stderr, "queue is off") {
					t.Errorf("%s: the queue is on, but stderr says it is off:\n%s", id, o.stderr)
				}
			default:
				t.Fatalf("%s: exit %d, want 0 or 73:\n%s", id, o.exit, o.stderr)
			}
		}
		if inARow < 3 || len(acked) == 0 {
			t.Fatalf("%d messages accepted, %d refused: the spool never filled up", len(acked), refused)
		}
		t.Logf("%d messages accepted before the 2 MB spool filled up, %d refused", len(acked), refused)

		// Exactly the accepted ones are queued; the refused ones left no
		// file anywhere in the spool.
		l := listQueue(t, env)
		var listed []string
		for _, m := range l.Messages {
			listed = append(listed, m.MessageID)
		}
		if !slices.Equal(listed, acked) {
			t.Errorf("mailq lists %v,\nbut these exited 0: %v", listed, acked)
		}
		if f := spoolFiles(t, dir, "tmp"); len(f) > 0 {
			t.Errorf("tmp/ keeps %v", f)
		}
		if m, e := spoolFiles(t, dir, "msg"), spoolFiles(t, dir, "env"); !slices.Equal(m, e) {
			t.Errorf("msg/ has %v, env/ has %v", m, e)
		}

		// Delivered later, each once and whole, which frees the space.
		up := relaytest.NewQMTPServer(t)
		upEnv := mergeEnv(env, []string{"RELAYMAIL_SMARTHOST=" + qmtpURL(up)})
		drainQueue(t, upEnv, 3)
		got := qmtpAccepted(up)
		for _, id := range acked {
			if len(got[id]) != 1 {
				t.Errorf("%s delivered %d times", id, len(got[id]))
			}
		}
		if len(got) != len(acked) {
			t.Errorf("%d messages delivered, %d accepted", len(got), len(acked))
		}
		for _, p := range up.Packages() {
			if !bytes.HasSuffix(p.Message, []byte("\n\n"+body)) {
				t.Errorf("%s arrived damaged (%d bytes)", messageIDOf(p.Message), len(p.Message))
			}
		}
		if o := runSendmail(t, env, []string{"-i", "bob@example.org"}, queueMessage("after", body)); o.exit != 0 {
			t.Errorf("with space again: exit %d: %s", o.exit, o.stderr)
		}
	})

	// The message itself fits, its envelope does not: the commit fails
	// after the message was written and linked, and must undo all of it.
	t.Run("envelope does not fit", func(t *testing.T) {
		mnt := mountTmpfs(t, "1m")
		zs := deferringQMTP(t)
		env, dir := spoolEnvAt(t, filepath.Join(mnt, "spool"), qmtpURL(zs))
		listQueue(t, env) // creates the spool
		free, block := freeBytes(t, mnt)
		const room = 8 // blocks left for the message
		filler := filepath.Join(mnt, "filler")
		if err := os.WriteFile(filler, make([]byte, free-room*block), 0o600); err != nil {
			t.Fatal(err)
		}
		if free, _ = freeBytes(t, mnt); free != room*block {
			t.Skipf("the tmpfs has %d bytes free after the filler, want %d: cannot place the message exactly", free, room*block)
		}
		head := queueMessage("exact", "")
		msg := append(head, bytes.Repeat([]byte("x\n"), int(free-int64(len(head)))/2)...)
		if int64(len(msg)) != free {
			msg = append(msg, '\n')
		}
		for _, mode := range []string{"-odi", "-odq"} {
			o := runSendmail(t, env, []string{"-i", mode, "bob@example.org"}, msg)
			if o.exit != 73 || !strings.Contains(o.stderr, "no space left on device") {
				t.Errorf("%s: exit %d, want 73 naming the full disk; stderr:\n%s", mode, o.exit, o.stderr)
			}
			if strings.Contains(o.stderr, "queue is off") {
				t.Errorf("%s: the queue is on, but stderr says it is off:\n%s", mode, o.stderr)
			}
			if l := listQueue(t, env); l.Count != 0 {
				t.Errorf("%s: a refused message is listed: %+v", mode, l.Messages)
			}
			for _, sub := range []string{"tmp", "msg", "env"} {
				if f := spoolFiles(t, dir, sub); len(f) > 0 {
					t.Errorf("%s: %s/ keeps %v", mode, sub, f)
				}
			}
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		if o := runSendmail(t, env, []string{"-i", "-odq", "bob@example.org"}, msg); o.exit != 0 {
			t.Errorf("with space again: exit %d: %s", o.exit, o.stderr)
		}
	})
}

// Intake holds a small message in memory and writes a spool file only when
// something must be queued; a message larger than inject.DefaultMaxMemory
// goes to its spool file as it is read. Either way a deferred message is
// queued whole and delivered later byte for byte, a message delivered at
// once leaves no file, and -odq queues at once.
func TestQueueMessageInMemoryOrSpooled(t *testing.T) {
	line := strings.Repeat("0123456789", 9) + "abcdefghi\n"
	for _, c := range []struct {
		name string
		body string
	}{
		{"small, in memory", line},
		{"large, spooled", strings.Repeat(line, (inject.DefaultMaxMemory/len(line))+100)},
	} {
		t.Run(c.name, func(t *testing.T) {
			down := deferringQMTP(t)
			env, dir := spoolEnvAt(t, filepath.Join(t.TempDir(), "spool"), qmtpURL(down))
			for _, mode := range []string{"-odi", "-odq"} {
				o := runSendmail(t, env, []string{"-i", mode, "bob@example.org"}, queueMessage(mode, c.body))
				if o.exit != 0 {
					t.Fatalf("%s: exit %d: %s", mode, o.exit, o.stderr)
				}
			}
			if l := listQueue(t, env); l.Count != 2 {
				t.Fatalf("%d messages queued, want 2: %+v", l.Count, l.Messages)
			}
			if f := spoolFiles(t, dir, "tmp"); len(f) > 0 {
				t.Errorf("tmp/ keeps %v", f)
			}
			up := relaytest.NewQMTPServer(t)
			upEnv := mergeEnv(env, []string{"RELAYMAIL_SMARTHOST=" + qmtpURL(up)})
			drainQueue(t, upEnv, 3)
			o := runSendmail(t, upEnv, []string{"-i", "bob@example.org"}, queueMessage("at-once", c.body))
			if o.exit != 0 {
				t.Fatalf("delivery at once: exit %d: %s", o.exit, o.stderr)
			}
			got := map[string][]byte{}
			for _, p := range up.Packages() {
				got[messageIDOf(p.Message)] = p.Message
			}
			for _, id := range []string{"-odi", "-odq", "at-once"} {
				if want := queueMessage(id, c.body); !bytes.Equal(got[msgID(id)], want) {
					t.Errorf("%s: delivered %d bytes, want the %d submitted", id, len(got[msgID(id)]), len(want))
				}
			}
			for _, sub := range []string{"tmp", "msg", "env"} {
				if f := spoolFiles(t, dir, sub); len(f) > 0 {
					t.Errorf("after delivery %s/ keeps %v", sub, f)
				}
			}
		})
	}
}

// 50 submissions and 3 queue runners at once on one spool, nothing killed:
// every message is delivered exactly once, and nothing is left behind.
func TestQueueConcurrency(t *testing.T) {
	up := relaytest.NewQMTPServer(t)
	zs := deferringQMTP(t)
	env, dir := spoolEnv(t, qmtpURL(up))
	zEnv := mergeEnv(env, []string{"RELAYMAIL_SMARTHOST=" + qmtpURL(zs)})

	const n = 50
	var (
		wg       sync.WaitGroup
		exits    [n]int
		stderrs  [n]string
		done     = make(chan struct{})
		runsMu   sync.Mutex
		runs     int
		runFails []string
	)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p := startSendmail(t, env, []string{"-q"}, nil)
				code := p.wait(t, time.Minute)
				runsMu.Lock()
				runs++
				if code != 0 || p.stderr.Len() > 0 {
					runFails = append(runFails, fmt.Sprintf("exit %d: %s", code, p.stderr.String()))
				}
				runsMu.Unlock()
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	var subs sync.WaitGroup
	for i := range n {
		subs.Add(1)
		go func() {
			defer subs.Done()
			e, args := env, []string{"-i", "-odq"}
			if i%2 == 1 {
				e, args = zEnv, []string{"-i"} // tried at once, deferred, queued
			}
			p := startSendmail(t, e, append(args, fmt.Sprintf("u%02d@example.org", i)), queueMessage(fmt.Sprintf("conc-%02d", i), "concurrent\n"))
			exits[i] = p.wait(t, time.Minute)
			stderrs[i] = p.stderr.String()
		}()
	}
	subs.Wait()
	close(done)
	wg.Wait()
	for i := range n {
		if exits[i] != 0 {
			t.Errorf("submission %d: exit %d: %s", i, exits[i], stderrs[i])
		}
	}
	for _, f := range runFails {
		t.Errorf("a concurrent queue run failed: %s", f)
	}
	// The runners may have finished their last listing before the last
	// submissions committed: one more run, then one that must find nothing.
	runQueue(t, env)
	last := runSendmail(t, env, []string{"-v", "-q"}, nil)
	if last.exit != 0 || !strings.Contains(last.stderr, "queue run: 0 messages,") {
		t.Errorf("a last run found something to do: exit %d: %s", last.exit, last.stderr)
	}
	if l := listQueue(t, env); l.Count != 0 {
		t.Errorf("queue not empty: %+v", l.Messages)
	}
	for _, sub := range []string{"tmp", "msg", "env", "failed"} {
		if f := spoolFiles(t, dir, sub); len(f) > 0 {
			t.Errorf("%s/ keeps %v", sub, f)
		}
	}
	got := qmtpAccepted(up)
	for i := range n {
		id := msgID(fmt.Sprintf("conc-%02d", i))
		if want := []string{fmt.Sprintf("u%02d@example.org", i)}; !slices.Equal(got[id], want) {
			t.Errorf("%s delivered to %v, want %v once", id, got[id], want)
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct messages delivered, want %d", len(got), n)
	}
	t.Logf("%d queue runs alongside %d submissions; %d connections to the smarthost", runs, n, up.Conns())
}

// One recipient delivered and one deferred (LMTP 452 after DATA): sendmail
// exits 0, the queue keeps only the deferred one with its reply, and the
// next run delivers it to that recipient alone.
func TestQueuePartialDelivery(t *testing.T) {
	t.Run("dovecot", func(t *testing.T) {
		dc := realserver.StartDovecot(t)
		env, _ := spoolEnv(t, "lmtp://"+dc.LMTPAddr)
		user1, tempfail := realserver.Address(realserver.User1), realserver.Address(realserver.TempfailUser)
		o := runSendmail(t, env, []string{"-i", user1, tempfail}, queueMessage("partial", "body\n"))
		if o.exit != 0 {
			t.Fatalf("exit %d, want 0 (one delivered, one queued): %s", o.exit, o.stderr)
		}
		if n := len(dc.Maildir(realserver.User1)); n != 1 {
			t.Fatalf("user1 has %d messages, want 1", n)
		}
		checkPartialListing(t, env, tempfail, "452 4.2.2 ")

		// Raise the quota of the tempfail user: Dovecot reads its
		// passwd-file again when it changes. (Removing the rule would not
		// do: Dovecot then takes the limit from the maildirsize file.)
		users := filepath.Join(dc.Dir, "users")
		b, err := os.ReadFile(users)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^(` + realserver.TempfailUser + `:.*::userdb_quota_rule=\*:storage=)1B( .*)$`)
		if !re.Match(b) {
			t.Fatalf("cannot find the tempfail user's quota in %s:\n%s", users, b)
		}
		if err := os.WriteFile(users, re.ReplaceAll(b, []byte("${1}100M$2")), 0o644); err != nil {
			t.Fatal(err)
		}
		// Dovecot looks at the file at most once a second: retry, bounded,
		// until it has seen the change. Only tempfail is pending, so user1
		// must never get a second copy, however many runs it takes.
		runs := 0
		for runs < 20 {
			runs++
			runQueue(t, env)
			if l := listQueue(t, env); l.Count == 0 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("%d runs until Dovecot took the new quota", runs)
		if n := len(dc.Maildir(realserver.TempfailUser)); n != 1 {
			t.Errorf("tempfail has %d messages after the run, want 1", n)
		}
		if n := len(dc.Maildir(realserver.User1)); n != 1 {
			t.Errorf("user1 has %d messages after the run, want still 1", n)
		}
		if l := listQueue(t, env); l.Count != 0 {
			t.Errorf("queue not empty: %+v", l.Messages)
		}
	})
	t.Run("relaytest", func(t *testing.T) {
		var tries atomic.Int32
		srv := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{
			LMTP: true,
			LMTPError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
				if m.Rcpts[i].To == "tempfail@example.com" && tries.Add(1) == 1 {
					return &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
				}
				return nil
			},
		})
		env, _ := spoolEnv(t, smtpURL(srv, true))
		o := runSendmail(t, env, []string{"-i", "user1@example.com", "tempfail@example.com"}, queueMessage("partial", "body\n"))
		if o.exit != 0 {
			t.Fatalf("exit %d, want 0: %s", o.exit, o.stderr)
		}
		checkPartialListing(t, env, "tempfail@example.com", "452 4.2.2 ")
		runQueue(t, env)
		got := map[string]int{}
		for _, m := range srv.Messages() {
			for _, r := range m.Rcpts {
				if r.Err == nil && r.DataErr == nil {
					got[r.To]++
				}
			}
		}
		if got["user1@example.com"] != 1 || got["tempfail@example.com"] != 1 || len(got) != 2 {
			t.Errorf("deliveries per recipient %v, want each once", got)
		}
		if n := len(srv.Messages()); n != 2 {
			t.Errorf("%d transactions, want 2", n)
		}
		if m := srv.Messages(); len(m) == 2 && (len(m[1].Rcpts) != 1 || m[1].Rcpts[0].To != "tempfail@example.com") {
			t.Errorf("the queue run sent to %+v, want tempfail alone", m[1].Rcpts)
		}
		if l := listQueue(t, env); l.Count != 0 {
			t.Errorf("queue not empty: %+v", l.Messages)
		}
	})
}

// checkPartialListing: one message queued, for rcpt alone, pending with a
// reply starting with reply; the text listing shows the same.
func checkPartialListing(t *testing.T, env []string, rcpt, reply string) {
	t.Helper()
	l := listQueue(t, env)
	if l.Count != 1 {
		t.Fatalf("%d messages queued, want 1: %+v", l.Count, l.Messages)
	}
	m := l.Messages[0]
	if len(m.Recipients) != 1 || m.Recipients[0].Address != rcpt || m.Recipients[0].State != "pending" || !strings.HasPrefix(m.Recipients[0].Reply, reply) {
		t.Errorf("queued recipients %+v, want %s alone, pending, reply %q...", m.Recipients, rcpt, reply)
	}
	if m.Attempts != 1 || m.MessageID != msgID("partial") {
		t.Errorf("attempts %d, message-id %q", m.Attempts, m.MessageID)
	}
	o := runSendmail(t, env, []string{"-bp"}, nil)
	if !strings.Contains(o.stdout, "("+reply) || !strings.Contains(o.stdout, " "+rcpt+"\n") || strings.Count(o.stdout, "@example.com\n") != 2 {
		t.Errorf("mailq:\n%s", o.stdout)
	}
}

func TestQueueDeliveryModes(t *testing.T) {
	t.Run("-odq", func(t *testing.T) {
		srv := relaytest.NewQMTPServer(t)
		env, _ := spoolEnv(t, qmtpURL(srv))
		o := runSendmail(t, env, []string{"-i", "-odq", "bob@example.org"}, queueMessage("odq", "b\n"))
		if o.exit != 0 || o.stderr != "" {
			t.Fatalf("exit %d: %s", o.exit, o.stderr)
		}
		if n := srv.Conns(); n != 0 {
			t.Errorf("-odq connected %d times to the smarthost", n)
		}
		if l := listQueue(t, env); l.Count != 1 || l.Messages[0].Attempts != 0 || !slices.Equal(l.Messages[0].pending(), []string{"bob@example.org"}) {
			t.Errorf("queue: %+v", l.Messages)
		}
		runQueue(t, env)
		if got := qmtpAccepted(srv); len(got) != 1 || len(got[msgID("odq")]) != 1 {
			t.Errorf("delivered %v", got)
		}
		if l := listQueue(t, env); l.Count != 0 {
			t.Errorf("queue not empty: %+v", l.Messages)
		}
	})

	t.Run("-odb", func(t *testing.T) {
		srv := relaytest.NewQMTPServer(t)
		env, dir := spoolEnv(t, qmtpURL(srv))
		o := runSendmail(t, env, []string{"-i", "-odb", "bob@example.org"}, queueMessage("odb", "b\n"))
		if o.exit != 0 || o.stderr != "" {
			t.Fatalf("exit %d: %s", o.exit, o.stderr)
		}
		// The detached child delivers it.
		pkgs, err := srv.WaitPackages(1, 20*time.Second)
		if err != nil {
			t.Fatalf("the detached delivery did not arrive: %v", err)
		}
		waitSpoolIdle(t, dir)
		if len(pkgs) != 1 || messageIDOf(pkgs[0].Message) != msgID("odb") {
			t.Errorf("packages %+v", pkgs)
		}
		if l := listQueue(t, env); l.Count != 0 {
			t.Errorf("queue not empty: %+v", l.Messages)
		}
	})

	t.Run("no smarthost", func(t *testing.T) {
		env, _ := spoolEnv(t, "")
		o := runSendmail(t, env, []string{"-i", "bob@example.org"}, queueMessage("nohost", "b\n"))
		if o.exit != 0 {
			t.Fatalf("exit %d, want 0 (queued): %s", o.exit, o.stderr)
		}
		for _, want := range []string{"no smarthost is configured", "queued", "RELAYMAIL_SMARTHOST", "sendmail -q"} {
			if !strings.Contains(o.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
			}
		}
		l := listQueue(t, env)
		if l.Count != 1 || l.Messages[0].MessageID != msgID("nohost") {
			t.Fatalf("queue: %+v", l.Messages)
		}
		if !strings.Contains(o.stderr, l.Messages[0].ID) {
			t.Errorf("stderr does not name the queue ID %s:\n%s", l.Messages[0].ID, o.stderr)
		}
		srv := relaytest.NewQMTPServer(t)
		runQueue(t, mergeEnv(env, []string{"RELAYMAIL_SMARTHOST=" + qmtpURL(srv)}))
		if got := qmtpAccepted(srv); len(got[msgID("nohost")]) != 1 {
			t.Errorf("delivered %v", got)
		}
	})

	t.Run("queue off", func(t *testing.T) {
		zs := deferringQMTP(t)
		env, dir := spoolEnv(t, qmtpURL(zs), "RELAYMAIL_QUEUE=off")
		o := runSendmail(t, env, []string{"-i", "bob@example.org"}, queueMessage("off", "b\n"))
		if o.exit != 75 || !strings.Contains(o.stderr, "bob@example.org: deferred") {
			t.Errorf("exit %d, want 75: %s", o.exit, o.stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("queue off, but the spool %s was made (%v): %v %v", dir, err, spoolFiles(t, dir, "env"), spoolFiles(t, dir, "msg"))
		}
		if o := runSendmail(t, env, []string{"-bp"}, nil); o.exit != 0 || !strings.Contains(o.stdout, "queue is off") {
			t.Errorf("mailq with the queue off: exit %d, %q %q", o.exit, o.stdout, o.stderr)
		}
	})

	t.Run("-qR", func(t *testing.T) {
		srv := relaytest.NewQMTPServer(t)
		env, _ := spoolEnv(t, qmtpURL(srv))
		for _, c := range []struct{ id, rcpt string }{{"org", "a@example.org"}, {"net", "b@Example.NET"}, {"org2", "c@example.org"}} {
			if o := runSendmail(t, env, []string{"-i", "-odq", c.rcpt}, queueMessage(c.id, "b\n")); o.exit != 0 {
				t.Fatalf("exit %d: %s", o.exit, o.stderr)
			}
		}
		runQueue(t, env, "-qRexample.net")
		if got := qmtpAccepted(srv); len(got) != 1 || len(got[msgID("net")]) != 1 {
			t.Errorf("-qRexample.net delivered %v, want the example.net message alone", got)
		}
		if l := listQueue(t, env); l.Count != 2 {
			t.Errorf("queue: %+v", l.Messages)
		}
		runQueue(t, env, "-qR@EXAMPLE.ORG")
		if got := qmtpAccepted(srv); len(got) != 3 || len(got[msgID("org")]) != 1 || len(got[msgID("org2")]) != 1 {
			t.Errorf("after -qR@EXAMPLE.ORG: %v", got)
		}
		if l := listQueue(t, env); l.Count != 0 {
			t.Errorf("queue: %+v", l.Messages)
		}
	})

	t.Run("-qI", func(t *testing.T) {
		srv := relaytest.NewQMTPServer(t)
		env, _ := spoolEnv(t, qmtpURL(srv))
		for _, id := range []string{"first", "second"} {
			if o := runSendmail(t, env, []string{"-i", "-odq", "bob@example.org"}, queueMessage(id, "b\n")); o.exit != 0 {
				t.Fatalf("exit %d: %s", o.exit, o.stderr)
			}
		}
		l := listQueue(t, env)
		if l.Count != 2 {
			t.Fatalf("queue: %+v", l.Messages)
		}
		first, second := l.Messages[0], l.Messages[1]
		runQueue(t, env, "-qI"+second.ID)
		if got := qmtpAccepted(srv); len(got) != 1 || len(got[second.MessageID]) != 1 {
			t.Errorf("-qI%s delivered %v, want %s alone", second.ID, got, second.MessageID)
		}
		// A unique prefix will do, in any case.
		runQueue(t, env, "-qI"+strings.ToLower(first.ID[:20]))
		if got := qmtpAccepted(srv); len(got) != 2 || len(got[first.MessageID]) != 1 {
			t.Errorf("-qI<prefix> delivered %v", got)
		}
		o := runSendmail(t, env, []string{"-qI0000000000000000-00000000"}, nil)
		if !strings.Contains(o.stderr, "0000000000000000-00000000") {
			t.Errorf("-qI of an unknown ID: exit %d, stderr does not name it: %s", o.exit, o.stderr)
		}
		if n := len(srv.Packages()); n != 2 {
			t.Errorf("%d packages, want 2", n)
		}
	})

	t.Run("-q5m daemon", func(t *testing.T) {
		srv := relaytest.NewQMTPServer(t)
		env, dir := spoolEnv(t, qmtpURL(srv))
		if o := runSendmail(t, env, []string{"-i", "-odq", "bob@example.org"}, queueMessage("daemon", "b\n")); o.exit != 0 {
			t.Fatalf("exit %d: %s", o.exit, o.stderr)
		}
		d := startSendmail(t, env, []string{"-q5m"}, nil)
		if _, err := srv.WaitPackages(1, 20*time.Second); err != nil {
			d.kill()
			d.wait(t, 10*time.Second)
			t.Fatalf("the daemon's first run did not deliver: %v; stderr: %s", err, d.stderr.String())
		}
		// The delivery is on the wire before the state is on disk: wait,
		// bounded, for the daemon to finish the message.
		for i := 0; i < 200 && len(spoolFiles(t, dir, "env")) > 0; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		d.cmd.Process.Signal(syscall.SIGTERM)
		if code := d.wait(t, 20*time.Second); code != 0 {
			t.Errorf("the daemon exited %d after SIGTERM: %s", code, d.stderr.String())
		}
		if l := listQueue(t, env); l.Count != 0 {
			t.Errorf("queue not empty: %+v", l.Messages)
		}
		if got := qmtpAccepted(srv); len(got[msgID("daemon")]) != 1 {
			t.Errorf("delivered %v", got)
		}
	})

	t.Run("-q5m daemon stopped mid-delivery", func(t *testing.T) {
		// The smarthost reads nothing and answers nothing; the timeout is
		// far away, so only SIGTERM can end the delivery.
		stall := relaytest.NewQMTPServer(t)
		started := make(chan struct{}, 1)
		stall.BeforePackage = func(*relaytest.QMTPPackage) relaytest.QMTPAction {
			select {
			case started <- struct{}{}:
			default:
			}
			return relaytest.Stall()
		}
		env, _ := spoolEnv(t, qmtpURL(stall), "RELAYMAIL_TIMEOUT=10m")
		if o := runSendmail(t, env, []string{"-i", "-odq", "bob@example.org"}, queueMessage("stalled", "b\n")); o.exit != 0 {
			t.Fatalf("exit %d: %s", o.exit, o.stderr)
		}
		d := startSendmail(t, env, []string{"-q5m"}, nil)
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			d.kill()
			d.wait(t, 10*time.Second)
			t.Fatalf("the daemon never started the delivery; stderr: %s", d.stderr.String())
		}
		d.cmd.Process.Signal(syscall.SIGTERM)
		if code := d.wait(t, 20*time.Second); code != 0 {
			t.Errorf("the daemon exited %d after SIGTERM: %s", code, d.stderr.String())
		}
		// The abandoned delivery left the message as it was.
		l := listQueue(t, env)
		if l.Count != 1 || l.Messages[0].MessageID != msgID("stalled") || !slices.Equal(l.Messages[0].pending(), []string{"bob@example.org"}) {
			t.Fatalf("queue after SIGTERM: %+v", l.Messages)
		}
		up := relaytest.NewQMTPServer(t)
		runQueue(t, mergeEnv(env, []string{"RELAYMAIL_SMARTHOST=" + qmtpURL(up)}))
		if got := qmtpAccepted(up); len(got[msgID("stalled")]) != 1 {
			t.Errorf("delivered %v", got)
		}
	})

	t.Run("flush after send", func(t *testing.T) {
		srv := relaytest.NewQMTPServer(t)
		env, dir := spoolEnv(t, qmtpURL(srv))
		if o := runSendmail(t, env, []string{"-i", "-odq", "old@example.org"}, queueMessage("old", "b\n")); o.exit != 0 {
			t.Fatalf("exit %d: %s", o.exit, o.stderr)
		}
		flushEnv := mergeEnv(env, []string{"RELAYMAIL_FLUSH_AFTER_SEND=yes"})
		if o := runSendmail(t, flushEnv, []string{"-i", "new@example.org"}, queueMessage("new", "b\n")); o.exit != 0 || o.stderr != "" {
			t.Fatalf("exit %d: %s", o.exit, o.stderr)
		}
		// The new one went at once; a detached "sendmail -q" sends the old.
		if _, err := srv.WaitPackages(2, 20*time.Second); err != nil {
			t.Fatalf("the flush did not deliver the queued message: %v", err)
		}
		waitSpoolIdle(t, dir)
		got := qmtpAccepted(srv)
		if len(got) != 2 || len(got[msgID("old")]) != 1 || len(got[msgID("new")]) != 1 {
			t.Errorf("delivered %v", got)
		}
		if l := listQueue(t, env); l.Count != 0 {
			t.Errorf("queue not empty: %+v", l.Messages)
		}
		// Nothing to flush: no detached run.
		if o := runSendmail(t, flushEnv, []string{"-i", "again@example.org"}, queueMessage("again", "b\n")); o.exit != 0 {
			t.Fatalf("exit %d: %s", o.exit, o.stderr)
		}
		if pids := spoolProcesses(dir); len(pids) > 0 {
			t.Errorf("an empty queue was flushed: processes %v", pids)
			waitSpoolIdle(t, dir)
		}
	})
}

// nobodyCommand returns how to run the binary without the permissions of
// root, which ignores file modes: through setpriv or runuser as nobody
// when running as root, directly otherwise.
func nobodyCommand(t *testing.T) (bin string, prefix []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return "", nil
	}
	if p, err := lookPath("setpriv"); err == nil {
		return p, []string{"--reuid=65534", "--regid=65534", "--clear-groups"}
	}
	if p, err := lookPath("runuser"); err == nil {
		return p, []string{"-u", "nobody", "--"}
	}
	t.Skip("running as root, and neither setpriv nor runuser is there to drop the privileges")
	return "", nil
}

func lookPath(name string) (string, error) {
	for _, d := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

// A spool the caller cannot write: exit 73, a message that names the
// directory and the missing permission, and nothing accepted.
func TestQueueSpoolPermission(t *testing.T) {
	wrapper, prefix := nobodyCommand(t)
	// A directory nobody can reach, with the binary and the configuration.
	pub, err := os.MkdirTemp("", "relaymail-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(pub, "sendmail")
	if err := os.Link(sendmailBin, bin); err != nil {
		data, err := os.ReadFile(sendmailBin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(pub, "relaymail.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(env, args []string, stdin []byte) outcome {
		if wrapper == "" {
			return runSendmailAs(t, bin, env, args, stdin)
		}
		return runSendmailAs(t, wrapper, env, append(append(append([]string(nil), prefix...), bin), args...), stdin)
	}
	uid := "65534"
	if os.Geteuid() != 0 {
		uid = fmt.Sprint(os.Geteuid())
	}

	cases := []struct {
		name  string
		spool string
		setup func(spool string) error
		names string // the directory the message must name
		what  string
	}{
		{"spool not writable", "spool1", func(s string) error { return os.Mkdir(s, 0o755) }, "spool1/tmp", "cannot create directory"},
		{"tmp not writable", "spool2", func(s string) error {
			for _, d := range []string{"", "tmp", "msg", "env", "failed"} {
				if err := os.Mkdir(filepath.Join(s, d), 0o755); err != nil {
					return err
				}
			}
			return nil
		}, "spool2/tmp", "cannot create files in"},
		{"parent not writable", "ro/spool3", func(s string) error { return os.Mkdir(filepath.Dir(s), 0o755) }, "ro/spool3", "cannot create directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := relaytest.NewQMTPServer(t)
			spool := filepath.Join(pub, c.spool)
			if err := c.setup(spool); err != nil {
				t.Fatal(err)
			}
			env, _ := spoolEnvAt(t, spool, qmtpURL(srv), "RELAYMAIL_CONFIG="+conf)
			// A submission finds out when it creates its spool file, before
			// it reads the message; an SMTP session (-bs) and a queue run
			// (-q) before they accept or try anything.
			for _, mode := range []string{"-odi", "-odq", "-bs", "-q"} {
				args, stdin := []string{"-i", mode, "bob@example.org"}, queueMessage("perm", "b\n")
				switch mode {
				case "-bs":
					args, stdin = []string{"-bs"}, []byte("EHLO client.example.com\r\nMAIL FROM:<a@example.com>\r\nQUIT\r\n")
				case "-q":
					args, stdin = []string{"-q"}, nil
				}
				o := run(env, args, stdin)
				if o.exit != 73 {
					t.Errorf("%s: exit %d, want 73: %s", mode, o.exit, o.stderr)
				}
				if mode == "-bs" && !strings.HasPrefix(o.stdout, "421 ") {
					t.Errorf("-bs: the session began %q, want a 421 reply and nothing else", o.stdout)
				}
				for _, want := range []string{c.what + " " + filepath.Join(pub, c.names) + ":", "permission denied", "writable by uid " + uid} {
					if !strings.Contains(o.stderr, want) {
						t.Errorf("%s: stderr lacks %q:\n%s", mode, want, o.stderr)
					}
				}
			}
			if n := srv.Conns(); n != 0 {
				t.Errorf("the smarthost was contacted %d times", n)
			}
			for _, sub := range []string{"tmp", "msg", "env"} {
				if f := spoolFiles(t, spool, sub); len(f) > 0 {
					t.Errorf("%s/ has %v", sub, f)
				}
			}
		})
	}
}

var (
	listingID      = regexp.MustCompile(`\b[0-9A-F]{16}-[0-9a-f]{8}\b`)
	listingArrival = regexp.MustCompile(`\b[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]\b`)
)

// maskListing replaces the queue IDs (numbered in order, same width) and the
// arrival times of a mailq listing, and returns the IDs.
func maskListing(s string) (string, []string) {
	var ids []string
	s = listingID.ReplaceAllStringFunc(s, func(id string) string {
		n := slices.Index(ids, id)
		if n < 0 {
			ids = append(ids, id)
			n = len(ids) - 1
		}
		return fmt.Sprintf("QUEUEID%09d-xxxxxxxx", n+1)
	})
	return listingArrival.ReplaceAllString(s, "Www Mmm dd hh:mm:ss"), ids
}

// mailq (argv[0]) and sendmail -bp print the same listing, Postfix's
// format, compared with testdata/mailq.golden (-update rewrites it); mailq
// --json says the same as data.
func TestMailqGolden(t *testing.T) {
	start := time.Now().Add(-time.Second)
	srv := relaytest.NewSMTPServer(t, relaytest.SMTPOptions{
		RcptError: func(m *relaytest.SMTPMessage, i int) *gosmtp.SMTPError {
			if m.Rcpts[i].To == "bob@example.org" {
				return &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
			}
			return nil
		},
	})
	env, _ := spoolEnv(t, smtpURL(srv, false))
	if o := runSendmailAs(t, mailqBin(t), env, nil, nil); o.exit != 0 || o.stdout != "Mail queue is empty\n" {
		t.Errorf("empty queue: exit %d, stdout %q, stderr %q", o.exit, o.stdout, o.stderr)
	}
	if o := runSendmail(t, env, []string{"-i", "-odq", "carol@example.org", "dave@example.net"}, queueMessage("golden-1", "first\n")); o.exit != 0 {
		t.Fatalf("exit %d: %s", o.exit, o.stderr)
	}
	if o := runSendmail(t, env, []string{"-i", "bob@example.org"}, queueMessage("golden-2", "second\n")); o.exit != 0 {
		t.Fatalf("exit %d: %s", o.exit, o.stderr)
	}

	mq := runSendmailAs(t, mailqBin(t), env, nil, nil)
	bp := runSendmail(t, env, []string{"-bp"}, nil)
	if mq.exit != 0 || bp.exit != 0 || mq.stderr != "" || bp.stderr != "" {
		t.Fatalf("mailq: exit %d %s; -bp: exit %d %s", mq.exit, mq.stderr, bp.exit, bp.stderr)
	}
	if mq.stdout != bp.stdout {
		t.Errorf("mailq and sendmail -bp differ:\n%s\n%s", mq.stdout, bp.stdout)
	}
	got, ids := maskListing(mq.stdout)
	golden := filepath.Join("testdata", "mailq.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("mailq differs from %s:\n%s\nwant:\n%s", golden, got, want)
	}

	l := listQueue(t, env)
	if l.Count != 2 || len(ids) != 2 {
		t.Fatalf("%d messages in JSON, %d IDs in the listing", l.Count, len(ids))
	}
	var total int64
	for i, m := range l.Messages {
		total += m.Size
		if m.ID != ids[i] {
			t.Errorf("message %d: JSON id %s, listing %s", i, m.ID, ids[i])
		}
		if m.Sender != "alice@example.com" || m.MessageID != msgID(fmt.Sprintf("golden-%d", i+1)) {
			t.Errorf("message %d: sender %q, message-id %q", i, m.Sender, m.MessageID)
		}
		if m.Size != int64(len(queueMessage(fmt.Sprintf("golden-%d", i+1), []string{"first\n", "second\n"}[i]))) {
			t.Errorf("message %d: size %d", i, m.Size)
		}
		arrival, err1 := time.Parse(time.RFC3339, m.Arrival)
		next, err2 := time.Parse(time.RFC3339, m.NextAttempt)
		if err1 != nil || err2 != nil || arrival.Before(start.Truncate(time.Second)) || arrival.After(time.Now()) {
			t.Errorf("message %d: arrival %q, next attempt %q", i, m.Arrival, m.NextAttempt)
		}
		switch i {
		case 0: // -odq: never tried, due at once
			if m.Attempts != 0 || next.After(arrival.Add(time.Second)) {
				t.Errorf("the -odq message: attempts %d, arrival %s, next attempt %s", m.Attempts, m.Arrival, m.NextAttempt)
			}
			want := []listedRecipient{{"carol@example.org", "pending", ""}, {"dave@example.net", "pending", ""}}
			if !slices.Equal(m.Recipients, want) {
				t.Errorf("the -odq message: recipients %+v", m.Recipients)
			}
		case 1: // tried once, retried after retry_min (1m)
			if m.Attempts != 1 || next.Before(arrival.Add(59*time.Second)) {
				t.Errorf("the deferred message: attempts %d, arrival %s, next attempt %s", m.Attempts, m.Arrival, m.NextAttempt)
			}
			want := []listedRecipient{{"bob@example.org", "pending", "452 4.2.2 mailbox full"}}
			if !slices.Equal(m.Recipients, want) {
				t.Errorf("the deferred message: recipients %+v", m.Recipients)
			}
		}
	}
	if l.Bytes != total {
		t.Errorf("bytes %d, the sizes add up to %d", l.Bytes, total)
	}
	if o := runSendmail(t, env, []string{"--json", "-bp"}, nil); o.exit != 0 || !strings.HasPrefix(o.stdout, "{") || !strings.Contains(o.stdout, `"id": "`+ids[1]+`"`) {
		t.Errorf("sendmail --json -bp: exit %d, %q %q", o.exit, o.stdout, o.stderr)
	}
}

// A recipient deferred at first (Z) and refused on the queue run (D): the
// run sends a notification from <> to the sender (multipart/report with a
// delivery-status part and the original header), and the original moves to
// failed/, out of the listing.
func TestQueueBounce(t *testing.T) {
	var tries atomic.Int32
	srv := relaytest.NewQMTPServer(t)
	srv.Script = func(p *relaytest.QMTPPackage, _ int) relaytest.QMTPAction {
		if p.Sender == "" {
			return relaytest.QMTPAction{} // the notification: accepted
		}
		if tries.Add(1) == 1 {
			return relaytest.Reply("Z", "mailbox busy (#4.2.1)")
		}
		return relaytest.Reply("D", "no such user (#5.1.1)")
	}
	env, dir := spoolEnv(t, qmtpURL(srv))
	if o := runSendmail(t, env, []string{"-i", "bob@example.org"}, queueMessage("bounce", "b\n")); o.exit != 0 {
		t.Fatalf("exit %d, want 0 (queued after Z): %s", o.exit, o.stderr)
	}
	l := listQueue(t, env)
	if l.Count != 1 {
		t.Fatalf("queue: %+v", l.Messages)
	}
	id := l.Messages[0].ID
	runQueue(t, env)

	pkgs := srv.Packages()
	if len(pkgs) != 3 {
		t.Fatalf("%d packages, want 3 (Z, D, the notification)", len(pkgs))
	}
	n := pkgs[2]
	if n.Sender != "" || !slices.Equal(n.Recipients, []string{"alice@example.com"}) || len(n.Replies) != 1 || n.Replies[0][0] != 'K' {
		t.Fatalf("notification: sender %q, recipients %v, replies %v", n.Sender, n.Recipients, n.Replies)
	}
	checkDSN(t, n.Message, "bob@example.org", "5.1.1", msgID("bounce"))

	if l := listQueue(t, env); l.Count != 0 {
		t.Errorf("queue not empty: %+v", l.Messages)
	}
	if f := spoolFiles(t, dir, "failed"); !slices.Equal(f, []string{id + ".env", id + ".msg"}) {
		t.Errorf("failed/ has %v, want %s.env and %s.msg", f, id, id)
	}
	for _, sub := range []string{"env", "msg", "tmp"} {
		if f := spoolFiles(t, dir, sub); len(f) > 0 {
			t.Errorf("%s/ keeps %v", sub, f)
		}
	}
	// Nothing more to do: no second notification.
	runQueue(t, env)
	if n := len(srv.Packages()); n != 3 {
		t.Errorf("%d packages after another run, want still 3", n)
	}
}

// checkDSN parses a delivery status notification (RFC 3464, RFC 6522).
func checkDSN(t *testing.T, raw []byte, rcpt, status, origID string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q", m.Header.Get("Content-Type"))
	}
	if !strings.HasPrefix(m.Header.Get("From"), "Mail Delivery System <MAILER-DAEMON@") || m.Header.Get("To") != "alice@example.com" || m.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("header: From %q, To %q, Auto-Submitted %q", m.Header.Get("From"), m.Header.Get("To"), m.Header.Get("Auto-Submitted"))
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		switch ct {
		case "message/delivery-status":
			// The per-message group, then one per recipient.
			groups := strings.Split(strings.TrimSpace(string(body)), "\n\n")
			if len(groups) != 2 {
				t.Fatalf("delivery-status has %d groups:\n%s", len(groups), body)
			}
			h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(groups[1] + "\n\n"))).ReadMIMEHeader()
			if err != nil {
				t.Fatal(err)
			}
			if h.Get("Final-Recipient") != "rfc822; "+rcpt || h.Get("Action") != "failed" || h.Get("Status") != status {
				t.Errorf("recipient group:\n%s", groups[1])
			}
		case "text/rfc822-headers":
			if !strings.Contains(string(body), "Message-ID: "+origID+"\n") {
				t.Errorf("the original header is not returned:\n%s", body)
			}
		}
	}
	if !slices.Equal(types, []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}) {
		t.Errorf("parts %v", types)
	}
}
