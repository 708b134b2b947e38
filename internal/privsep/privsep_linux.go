package privsep

import (
	"errors"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// harden keeps the caller out of the process: no core file, no ptrace and
// no /proc/<pid>/mem, environ or fd for the caller's uid. The kernel makes
// a set-group-ID process non-dumpable already, unless fs.suid_dumpable says
// otherwise; relaymail does not depend on that setting.
func harden() error {
	if err := undumpable(); err != nil {
		return err
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return err
	}
	return nil
}

func undumpable() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}

// cloexecFrom marks every descriptor from first on close-on-exec. Closing
// them is not safe here: the Go runtime has descriptors of its own by the
// time main runs (its poller's), and they are not told apart from
// inherited ones. Close-on-exec is what matters: nothing inherited reaches
// a program started later.
func cloexecFrom(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	// Before Linux 5.11: every open descriptor, as /proc lists them, or
	// every number up to the descriptor limit.
	if des, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, de := range des {
			if fd, err := strconv.Atoi(de.Name()); err == nil && fd >= first {
				setCloexec(fd)
			}
		}
		return nil
	}
	var lim unix.Rlimit
	max := 1024
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur < 1<<16 {
		max = int(lim.Cur)
	}
	for fd := first; fd < max; fd++ {
		setCloexec(fd)
	}
	return nil
}

func setCloexec(fd int) {
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
		unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC)
	}
}

func setUmask(m int) { syscall.Umask(m) }

// setIDs sets the real, effective and saved IDs (-1 leaves one as it is):
// the user IDs first when the effective user ID goes up, the group IDs
// first otherwise, so that the step that needs the other is never
// refused. Every change of credentials resets the dumpable flag to
// fs.suid_dumpable, so it is cleared again.
func setIDs(ruid, euid, suid, rgid, egid, sgid int) error {
	uidUp := euid != -1 && euid != os.Geteuid() && euid == state.highUID && state.highUID != state.lowUID
	setU := func() error {
		if ruid == -1 && suid == -1 && (euid == -1 || euid == os.Geteuid()) {
			return nil
		}
		return unix.Setresuid(ruid, euid, suid)
	}
	setG := func() error {
		if rgid == -1 && sgid == -1 && (egid == -1 || egid == os.Getegid()) {
			return nil
		}
		return unix.Setresgid(rgid, egid, sgid)
	}
	first, second := setG, setU
	if uidUp {
		first, second = setU, setG
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	return undumpable()
}

// serviceUser finds the user named like the group gid whose primary group
// is gid: relaymail:relaymail in the packaged install.
func serviceUser(gid int) (name string, uid int, ok bool) {
	g, err := user.LookupGroupId(strconv.Itoa(gid))
	if err != nil {
		return "", 0, false
	}
	u, err := user.Lookup(g.Name)
	if err != nil || u.Gid != g.Gid {
		return "", 0, false
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil || uid == 0 {
		return "", 0, false
	}
	return u.Username, uid, true
}

// becomeUser changes a root process into uid:gid with no supplementary
// groups, for good.
func becomeUser(uid, gid int) error {
	// syscall.Setgroups, not unix.Setgroups: only the former applies to
	// every thread of the process.
	if err := syscall.Setgroups([]int{}); err != nil {
		return err
	}
	if err := unix.Setresgid(gid, gid, gid); err != nil {
		return err
	}
	if err := unix.Setresuid(uid, uid, uid); err != nil {
		return err
	}
	return undumpable()
}

// stoppers are the resource limits that make the kernel stop a process
// part-way (SIGXFSZ or a failed write, SIGXCPU, a failed allocation): a
// caller who sets them low can stop a privileged queue run at a point of
// their choosing.
var stoppers = []struct {
	name     string
	resource int
}{
	{"file size (ulimit -f)", unix.RLIMIT_FSIZE},
	{"CPU time (ulimit -t)", unix.RLIMIT_CPU},
	{"address space (ulimit -v)", unix.RLIMIT_AS},
	{"data size (ulimit -d)", unix.RLIMIT_DATA},
}

// raiseLimits raises the soft limits of stoppers to their hard limits,
// which a process may always do.
func raiseLimits() {
	for _, s := range stoppers {
		var l unix.Rlimit
		if unix.Getrlimit(s.resource, &l) == nil && l.Cur < l.Max {
			l.Cur = l.Max
			unix.Setrlimit(s.resource, &l)
		}
	}
}

// finiteLimits names the stoppers whose hard limit is not unlimited.
func finiteLimits() []string {
	var out []string
	for _, s := range stoppers {
		var l unix.Rlimit
		if unix.Getrlimit(s.resource, &l) == nil && l.Max != unix.RLIM_INFINITY {
			out = append(out, s.name)
		}
	}
	return out
}
