package queue

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for the zero values of Options (doc.go: retry_min, retry_max,
// queue_lifetime).
const (
	defaultRetryMin = time.Minute
	defaultRetryMax = time.Hour
	defaultLifetime = 120 * time.Hour
)

// Options configure a Queue.
type Options struct {
	// Dir is the spool directory (queue_dir).
	Dir string
	// RetryMin, RetryMax and Lifetime are the retry schedule and how long
	// a message may stay queued; 0 means 1m, 1h and 120h.
	RetryMin, RetryMax, Lifetime time.Duration
	// Hostname is the Reporting-MTA of notifications and the right-hand
	// side of their Message-IDs; "" means os.Hostname.
	Hostname string
	// Domain: notifications come From MAILER-DAEMON@Domain; "" means
	// Hostname.
	Domain string
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
	// Log, when set, receives one line per queued, delivered, deferred,
	// bounced, expired or failed message and per recipient result.
	Log func(format string, a ...any)
	// Shared says that the spool is shared by the users of a
	// set-group-ID sendmail (the packaged install): directories it
	// creates are mode 2770 and files 0640, so that every run of the
	// relaymail group can read and replace them, and a file is trusted
	// only when it belongs to the spool directory's group. Otherwise
	// they are 0700 and 0600, for the one user who owns the spool. A
	// spool directory with the set-group-ID bit (packaging/README.md)
	// is shared whatever Shared says: the queue runner of the packaged
	// systemd unit runs as the relaymail user without privileges to
	// speak of, on the same spool.
	Shared bool
}

// Queue is an open spool directory. Its methods may be called from several
// processes at once (runners lock each message); one Queue value is not
// meant for concurrent use by several goroutines in Run.
type Queue struct {
	opts Options
	dir  string
	ops  fileOps
	// The modes of new directories and files, and the spool directory's
	// group, which every file the runner trusts belongs to (trust.go).
	dirMode, fileMode os.FileMode
	gid               int
}

// fileOps are the calls of the commit protocol and of state updates whose
// failure must leave the spool consistent. Tests replace them to inject
// ENOSPC or EIO at every step.
type fileOps struct {
	write   func(f *os.File, b []byte) (int, error)
	sync    func(f *os.File) error
	link    func(oldname, newname string) error
	rename  func(oldname, newname string) error
	syncDir func(dir string) error
}

func defaultOps() fileOps {
	return fileOps{
		write:   func(f *os.File, b []byte) (int, error) { return f.Write(b) },
		sync:    func(f *os.File) error { return f.Sync() },
		link:    os.Link,
		rename:  os.Rename,
		syncDir: syncDir,
	}
}

// syncDir makes the entries of dir (a link, rename or unlink just done)
// durable: on Linux and the BSDs a rename is only on disk once the
// directory itself is fsynced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// The spool's subdirectories.
const (
	dirTmp    = "tmp"
	dirMsg    = "msg"
	dirEnv    = "env"
	dirFailed = "failed"
)

// SpoolError says that the spool cannot be used: nothing was accepted.
// sendmail maps it to EX_CANTCREAT (73).
type SpoolError struct {
	Dir string // the directory concerned
	Op  string // "create directory", "create files in", "use"
	Err error
}

func (e *SpoolError) Error() string {
	why := e.Err.Error()
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		why = pe.Err.Error() // the path is already in the message
	}
	var hint string
	switch {
	case errors.Is(e.Err, fs.ErrPermission) && e.Op == "create directory":
		hint = fmt.Sprintf("create it writable by uid %d, or set queue_dir to a directory you can write", os.Geteuid())
	case errors.Is(e.Err, fs.ErrPermission):
		hint = fmt.Sprintf("make it writable by uid %d, or set queue_dir to a directory you can write", os.Geteuid())
	case errors.Is(e.Err, syscall.EROFS):
		hint = "set queue_dir to a directory on a writable file system"
	case errors.Is(e.Err, syscall.ENOSPC), errors.Is(e.Err, syscall.EDQUOT):
		hint = "free some space on its file system"
	case errors.Is(e.Err, syscall.ENOTDIR):
		hint = "set queue_dir to a directory"
	default:
		hint = "check queue_dir in relaymail.conf"
	}
	return fmt.Sprintf("queue: cannot %s %s: %s (%s)", e.Op, e.Dir, why, hint)
}

func (e *SpoolError) Unwrap() error { return e.Err }

// Open opens the spool in opts.Dir, creating it and its subdirectories
// (mode 0700, or 2770 when Shared) when missing. A subdirectory that is a
// symbolic link is refused. Every failure is a *SpoolError. Open does not
// write: CheckWritable, which a submission calls before it reads the
// message and an SMTP session or a queue run before it accepts or tries
// anything, reports a spool that cannot take one.
func Open(opts Options) (*Queue, error) {
	if opts.Dir == "" {
		return nil, &SpoolError{Dir: `""`, Op: "use", Err: errors.New("no queue directory is configured")}
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = defaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = defaultRetryMax
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = opts.RetryMin
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = defaultLifetime
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
		if opts.Hostname == "" {
			opts.Hostname = "localhost"
		}
	}
	if opts.Domain == "" {
		opts.Domain = opts.Hostname
	}
	// Both go into the header of notifications.
	for _, name := range []string{opts.Hostname, opts.Domain} {
		if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("<>@(),;:\\\"", r) }) {
			return nil, fmt.Errorf("queue: %q is not usable as a host or domain name in notifications", name)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	q := &Queue{opts: opts, dir: opts.Dir, ops: defaultOps(), dirMode: 0o700, fileMode: 0o600}
	if opts.Shared {
		q.dirMode = 0o2770
	}
	if err := os.MkdirAll(q.dir, q.dirMode.Perm()); err != nil {
		return nil, &SpoolError{Dir: q.dir, Op: "create directory", Err: err}
	}
	top, err := os.Stat(q.dir)
	if err != nil {
		return nil, &SpoolError{Dir: q.dir, Op: "use", Err: err}
	}
	q.gid = int(top.Sys().(*syscall.Stat_t).Gid)
	if top.Mode()&os.ModeSetgid != 0 {
		q.opts.Shared = true
	}
	if q.opts.Shared {
		q.dirMode, q.fileMode = 0o2770, 0o640
	}
	for _, sub := range []string{dirTmp, dirMsg, dirEnv, dirFailed} {
		p := q.path(sub)
		err := os.Mkdir(p, q.dirMode.Perm())
		switch {
		case err == nil && q.opts.Shared:
			// mkdir(2) ignores the set-group-ID bit of its mode.
			err = os.Chmod(p, q.dirMode.Perm()|os.ModeSetgid)
		case errors.Is(err, fs.ErrExist):
			// Lstat: a subdirectory replaced by a symbolic link would take
			// the runner's renames and unlinks elsewhere.
			var fi os.FileInfo
			if fi, err = os.Lstat(p); err == nil && !fi.IsDir() {
				err = &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
		}
		if err != nil {
			return nil, &SpoolError{Dir: p, Op: "create directory", Err: err}
		}
	}
	return q, nil
}

// CheckWritable reports (a *SpoolError) a spool that this process cannot
// create files in, before anything is accepted. It asks the kernel
// (faccessat(2) with the effective IDs, which a setgid run holds) rather
// than creating a file: a submission usually needs no spool file at all
// (inject.DefaultMaxMemory), and creating and removing one is journalled
// work that waits behind every other writer on a busy disk. A full disk
// shows only when the message is written.
func (q *Queue) CheckWritable() error {
	dir := q.path(dirTmp)
	if err := unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		return &SpoolError{Dir: dir, Op: "create files in", Err: err}
	}
	return nil
}

func (q *Queue) path(elem ...string) string {
	return filepath.Join(append([]string{q.dir}, elem...)...)
}

func (q *Queue) logf(format string, a ...any) {
	if q.opts.Log != nil {
		q.opts.Log(format, a...)
	}
}

// backoff is the wait after the n-th attempt: RetryMin doubled for each
// earlier attempt, at most RetryMax.
func (q *Queue) backoff(n int) time.Duration {
	d, ceiling := q.opts.RetryMin, q.opts.RetryMax
	for i := 1; i < n && d < ceiling; i++ {
		if d > ceiling/2 { // doubling would pass the cap, or overflow
			return ceiling
		}
		d *= 2
	}
	return min(d, ceiling)
}

// validID reports whether s has the form of a queue ID: 16 upper-case hex
// digits, a dash, 8 lower-case hex digits. Names that are not IDs are
// never used to build a path.
func validID(s string) bool {
	if len(s) != 25 || s[16] != '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 16:
		case i < 16 && (c >= '0' && c <= '9' || c >= 'A' && c <= 'F'):
		case i > 16 && (c >= '0' && c <= '9' || c >= 'a' && c <= 'f'):
		default:
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// newID makes a queue ID for a message arriving at t: the arrival in
// nanoseconds makes IDs sort by arrival, the random part keeps two
// processes that start in the same nanosecond apart.
func newID(t time.Time) string {
	return fmt.Sprintf("%016X-%s", uint64(t.UnixNano()), randomHex(4))
}

// Spool is a message being written into tmp/ID.msg: step 1 of the commit
// protocol. Write the message into File (which is also open for reading,
// so that intake and a first delivery attempt can read it back), then
// either Commit it or Discard it.
type Spool struct {
	ID   string
	File *os.File

	q       *Queue
	arrival time.Time
	done    bool
}

// NewSpool creates tmp/ID.msg for a new message.
func (q *Queue) NewSpool() (*Spool, error) {
	now := q.opts.Now()
	for try := 0; ; try++ {
		id := newID(now)
		f, err := os.OpenFile(q.path(dirTmp, id+".msg"), os.O_RDWR|os.O_CREATE|os.O_EXCL, q.fileMode)
		if errors.Is(err, fs.ErrExist) && try < 3 {
			continue
		}
		if err != nil {
			return nil, &SpoolError{Dir: q.path(dirTmp), Op: "create files in", Err: err}
		}
		return &Spool{ID: id, File: f, q: q, arrival: now}, nil
	}
}

// Discard closes and removes the spool file: the message was delivered
// without being queued, or intake failed. After Commit (whatever it
// returned) Discard does nothing.
func (sp *Spool) Discard() error {
	if sp.done {
		return nil
	}
	sp.done = true
	err := sp.File.Close()
	if rerr := os.Remove(sp.q.path(dirTmp, sp.ID+".msg")); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("queue: discarding %s: %w", sp.ID, err)
	}
	return nil
}

// Commit queues the message in sp with the envelope e, following the
// commit protocol of doc.go step by step. It returns nil only once the
// message is durably queued (the env/ directory is fsynced); then, and
// only then, may sendmail exit 0.
//
// It sets e.ID, e.Size (from the file), e.Arrival when zero, and
// e.NextAttempt: now for a message never tried, else after the backoff for
// e.Attempts. Replies are put on one line and cut to 512 octets. On any error nothing is committed and every file it made is
// removed, tmp/ID.msg included; the Spool is spent either way.
func (q *Queue) Commit(sp *Spool, e *Entry) (err error) {
	if sp == nil || sp.q != q {
		return errors.New("queue: commit of a spool from another queue")
	}
	if sp.done {
		return fmt.Errorf("queue: %s was already committed or discarded", sp.ID)
	}
	sp.done = true
	id := sp.ID
	tmpMsg, tmpEnv := q.path(dirTmp, id+".msg"), q.path(dirTmp, id+".env")
	msgPath, envPath := q.path(dirMsg, id), q.path(dirEnv, id)
	var linked, renamed bool
	defer func() {
		if err == nil {
			return
		}
		// Undo in reverse order. If the removal of env/ID is lost in a
		// power failure the message stays queued although Commit failed:
		// a duplicate if the caller sends it again, never a loss.
		if renamed {
			os.Remove(envPath)
			q.ops.syncDir(q.path(dirEnv))
		}
		os.Remove(tmpEnv)
		if linked {
			os.Remove(msgPath)
		}
		sp.File.Close()
		os.Remove(tmpMsg)
		err = fmt.Errorf("queue: cannot queue %s: %w", id, err)
	}()

	now := q.opts.Now()
	e.ID = id
	if e.Arrival.IsZero() {
		e.Arrival = sp.arrival
	}
	e.Arrival = e.Arrival.UTC()
	if e.Attempts == 0 {
		e.NextAttempt = now.UTC()
	} else {
		e.NextAttempt = now.Add(q.backoff(e.Attempts)).UTC()
	}
	if !e.LastAttempt.IsZero() {
		e.LastAttempt = e.LastAttempt.UTC()
	}
	// A reply from a first attempt is the caller's text: make it fit the
	// envelope rather than refuse a message over a long reply.
	for i := range e.Recipients {
		e.Recipients[i].Reply = oneLine(e.Recipients[i].Reply, maxReply)
	}

	// 1. The message is in tmp/ID.msg; make it durable.
	if err := q.ops.sync(sp.File); err != nil {
		return fmt.Errorf("fsync %s: %w", tmpMsg, err)
	}
	fi, err := sp.File.Stat()
	if err != nil {
		return err
	}
	e.Size = fi.Size()
	data, err := marshal(e)
	if err != nil {
		return err
	}
	// 2. S1: the data is safe under its final name.
	if err := q.ops.link(tmpMsg, msgPath); err != nil {
		return err
	}
	linked = true
	if err := q.ops.syncDir(q.path(dirMsg)); err != nil {
		return fmt.Errorf("fsync %s: %w", q.path(dirMsg), err)
	}
	// 3. The envelope, durable before it is renamed into place.
	if err := q.writeFile(tmpEnv, data, os.O_EXCL); err != nil {
		return err
	}
	// 4. The commit point.
	if err := q.ops.rename(tmpEnv, envPath); err != nil {
		return err
	}
	renamed = true
	// 5. Only after this may the caller report success.
	if err := q.ops.syncDir(q.path(dirEnv)); err != nil {
		return fmt.Errorf("fsync %s: %w", q.path(dirEnv), err)
	}
	// 6. The message is queued: what fails from here on changes nothing
	// for the caller. A tmp/ID.msg left behind is removed by age.
	sp.File.Close()
	if err := os.Remove(tmpMsg); err != nil {
		q.logf("%s: warning: cannot remove %s: %v", id, tmpMsg, err)
	}
	pending := 0
	for _, r := range e.Recipients {
		if r.State == Pending {
			pending++
		}
	}
	q.logf("%s: queued, from=<%s>, size=%d, nrcpt=%d", id, e.Sender, e.Size, pending)
	return nil
}

// writeFile writes data to a new file at path and fsyncs it. flag adds
// O_EXCL (a name that must be new) or O_TRUNC (a name only the holder of
// the message's lock writes); O_NOFOLLOW keeps a symbolic link planted
// under that name from sending the write elsewhere. The file is removed on
// failure.
func (q *Queue) writeFile(path string, data []byte, flag int) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW|flag, q.fileMode)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	n, err := q.ops.write(f, data)
	if err == nil && n != len(data) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := q.ops.sync(f); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}

// writeState replaces env/ID with e: tmp/ID.env, fsync, rename over env/ID,
// fsync env/. The caller holds the message's lock, which is what makes
// the fixed temporary name safe.
func (q *Queue) writeState(e *Entry) error {
	data, err := marshal(e)
	if err != nil {
		return fmt.Errorf("queue: %s: %w", e.ID, err)
	}
	tmp := q.path(dirTmp, e.ID+".env")
	if err := q.writeFile(tmp, data, os.O_TRUNC); err != nil {
		return fmt.Errorf("queue: %s: %w", e.ID, err)
	}
	if err := q.ops.rename(tmp, q.path(dirEnv, e.ID)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("queue: %s: %w", e.ID, err)
	}
	if err := q.ops.syncDir(q.path(dirEnv)); err != nil {
		return fmt.Errorf("queue: %s: fsync %s: %w", e.ID, q.path(dirEnv), err)
	}
	return nil
}

// readEntry reads and parses env/ID. An error wrapping fs.ErrNotExist
// means the message is no longer queued; any other error means the file
// cannot be used.
func (q *Queue) readEntry(id string) (*Entry, error) {
	f, err := q.openTrusted(q.path(dirEnv, id), 1)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEnvelopeBytes+1))
	if err != nil {
		return nil, err
	}
	e, err := parseEnvelope(data)
	if err != nil {
		return nil, &parseError{id: id, err: err}
	}
	if e.ID != id {
		return nil, &parseError{id: id, err: fmt.Errorf("the file says it is %s", e.ID)}
	}
	return e, nil
}

// parseError is an envelope that cannot be read: the runner moves it to
// failed/.
type parseError struct {
	id  string
	err error
}

func (e *parseError) Error() string {
	return "queue: " + filepath.Join(dirEnv, e.id) + ": " + e.err.Error()
}

func (e *parseError) Unwrap() error { return e.err }
