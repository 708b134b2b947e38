package queue

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// The runner treats every file in the spool as untrusted input (doc.go,
// "Trust"): whoever can write the spool could have planted it, and a run
// may have more privileges than that writer (a user's sendmail -q). So a
// spool file is opened only as a file relaymail could have written itself:
// never through a symbolic link, never a FIFO, device or directory, only
// when it belongs to the spool directory's group (or, in a spool that is
// not Shared, to the user running relaymail), is not writable by others,
// and has no more hard links than the commit protocol makes.

// UntrustedError is a spool file that the runner will not use. It is
// reported, and left where it is for a person to look at; it is never
// read, moved or removed.
type UntrustedError struct {
	Path string
	Why  string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("queue: %s %s; it was not used, and was left alone (remove it if nobody put it there on purpose)", e.Path, e.Why)
}

// openTrusted opens path read-only after the checks above. maxLinks is 1
// for envelopes and 2 for message files (msg/ID and tmp/ID.msg share an
// inode until step 6 of the commit). An error wrapping fs.ErrNotExist
// means there is no such file; the others are *UntrustedError or an
// error of the system.
func (q *Queue) openTrusted(path string, maxLinks uint64) (*os.File, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer forever. It is cleared again for the regular file.
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &UntrustedError{Path: path, Why: "is a symbolic link"}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if why := q.distrust(&st, maxLinks); why != "" {
		syscall.Close(fd)
		return nil, &UntrustedError{Path: path, Why: why}
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// distrust says what is wrong with a spool file, "" when nothing is.
func (q *Queue) distrust(st *syscall.Stat_t, maxLinks uint64) string {
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return "is not a regular file"
	case uint64(st.Nlink) > maxLinks:
		return fmt.Sprintf("has %d hard links, more than relaymail makes", st.Nlink)
	case st.Mode&0o002 != 0:
		return "is writable by every user"
	case int(st.Gid) == q.gid:
		return ""
	case !q.opts.Shared && int(st.Uid) == os.Geteuid():
		return ""
	case q.opts.Shared:
		return fmt.Sprintf("belongs to group %d, not to the spool's group %d", st.Gid, q.gid)
	}
	return fmt.Sprintf("belongs to uid %d and group %d, neither the user running relaymail (%d) nor the spool's group (%d)", st.Uid, st.Gid, os.Geteuid(), q.gid)
}
