// Package privsep is what sendmail and qmail-inject do about the privileges
// of a packaged install, where they are set-group-ID relaymail (SECURITY.md,
// packaging/README.md) so that any user can submit mail into a spool and
// with a password that only the relaymail group can read.
//
// A program calls Start first thing in main. When the process has
// privileges its caller lacks (a set-group-ID or set-user-ID run, detected
// by real and effective IDs that differ), Start
//
//   - makes the process non-dumpable (prctl PR_SET_DUMPABLE 0) and sets
//     RLIMIT_CORE to 0, so that neither a core file nor ptrace nor
//     /proc/<pid>/mem, environ or fd ever shows the password to the caller;
//   - clears the environment but for the variables the program names
//     (GODEBUG, SSL_CERT_FILE, TZ, TMPDIR, LOCALDOMAIN, RELAYMAIL_* ... all go);
//   - raises the soft limits on file size, CPU time, address space and
//     data size to the hard limits, so that a caller's ulimit does not
//     stop the process part-way (see CallerLimits for the hard limits);
//   - marks every inherited descriptor above 2 close-on-exec, so that
//     nothing the caller passed in reaches a program relaymail starts, and
//     sets the umask to 007, which the shared spool's modes need;
//   - for a caller that is root, becomes the relaymail user (the user named
//     like the group the program is set-group-ID to) for good, so that root
//     never works on files that the relaymail group can write;
//   - otherwise lowers the effective IDs to the caller's and keeps the
//     installed ones only as the saved IDs.
//
// From then on the installed privileges are in effect only inside Do:
// reading the configuration, the secrets and the TLS files it names, and
// the spool operations. Everything else, intake above all (the parsing of
// the caller's message and addresses), runs with the caller's own
// credentials. Drop gives the installed privileges up for good.
//
// Without privileges (a plain binary, a container running as one user)
// Start does nothing and Do just calls its function.
//
// Go applies setresgid and setresuid to every thread of the process
// (syscall.AllThreadsSyscall), so the IDs are a property of the process:
// while one goroutine is inside Do, every goroutine runs with the installed
// privileges. The programs do the privileged steps from one goroutine at
// a time, and Do counts nested and concurrent calls.
package privsep

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// Options say what Start keeps of a privileged process's environment.
type Options struct {
	// Keep names the environment variables that still count in a
	// privileged run; every other variable is removed.
	Keep []string
}

// state is the process's: there is one set of credentials per process.
var state struct {
	mu         sync.Mutex
	privileged bool
	started    bool
	// The caller's real IDs, for the login name and the messages; they
	// stay the same after a switch to the relaymail user.
	callerUID, callerGID int
	// The IDs Do raises to (high) and lowers back to (low). Equal when
	// there is nothing to switch.
	lowUID, highUID int
	lowGID, highGID int
	depth           int  // Do calls in progress
	dropped         bool // Drop was called
	switched        bool // root became the relaymail user
	user            string
}

// Start sets the process up as the package documentation says. It must be
// called before anything reads the environment or opens a file. An error
// means that the process could not be made safe; the program must exit
// without doing anything else.
func Start(o Options) error {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.started {
		return errors.New("privsep: Start called twice")
	}
	state.started = true
	ruid, euid := os.Getuid(), os.Geteuid()
	rgid, egid := os.Getgid(), os.Getegid()
	state.callerUID, state.callerGID = ruid, rgid
	state.lowUID, state.highUID, state.lowGID, state.highGID = euid, euid, egid, egid
	if ruid == euid && rgid == egid {
		return nil
	}
	state.privileged = true
	if err := harden(); err != nil {
		return fmt.Errorf("cannot protect the privileged process: %w", err)
	}
	raiseLimits()
	cleanEnv(o.Keep)
	if err := cloexecFrom(3); err != nil {
		return fmt.Errorf("cannot mark inherited descriptors close-on-exec: %w", err)
	}
	setUmask(0o007)
	state.lowUID, state.highUID = ruid, euid
	state.lowGID, state.highGID = rgid, egid
	if ruid == 0 && euid == 0 && egid != 0 {
		name, uid, ok := serviceUser(egid)
		if ok {
			if err := becomeUser(uid, egid); err != nil {
				return fmt.Errorf("cannot switch from root to the user %s: %w", name, err)
			}
			state.switched, state.user = true, name
			state.lowUID, state.highUID, state.lowGID, state.highGID = uid, uid, egid, egid
			return nil
		}
		// No such user: root keeps its identity (it could read and write
		// the spool anyway); only the group is switched around Do.
	}
	if err := setIDs(-1, state.lowUID, -1, -1, state.lowGID, -1); err != nil {
		return fmt.Errorf("cannot lower the effective IDs: %w", err)
	}
	return nil
}

// Privileged reports whether the process was started with privileges its
// caller lacks. It stays true after Drop: the caller's environment and
// command line are still not to be trusted.
func Privileged() bool {
	state.mu.Lock()
	defer state.mu.Unlock()
	return state.privileged
}

// Caller returns the real user and group ID the process was started with:
// the user who ran it, whom the login name and the default sender are
// derived from.
func Caller() (uid, gid int) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if !state.started {
		return os.Getuid(), os.Getgid()
	}
	return state.callerUID, state.callerGID
}

// SwitchedTo names the user a root caller was switched to, "" when there
// was no switch.
func SwitchedTo() string {
	state.mu.Lock()
	defer state.mu.Unlock()
	return state.user
}

// Do runs f with the installed privileges in effect and lowers them again
// when the last Do returns. After Drop, or without privileges, it only
// calls f (which then fails where it needs what was given up).
func Do(f func() error) error {
	state.mu.Lock()
	raise := state.privileged && !state.dropped && (state.highUID != state.lowUID || state.highGID != state.lowGID)
	if raise {
		if state.depth == 0 {
			if err := setIDs(-1, state.highUID, -1, -1, state.highGID, -1); err != nil {
				state.mu.Unlock()
				return fmt.Errorf("privsep: cannot raise the effective IDs: %w", err)
			}
		}
		state.depth++
	}
	state.mu.Unlock()
	if raise {
		defer func() {
			state.mu.Lock()
			defer state.mu.Unlock()
			state.depth--
			if state.depth == 0 && !state.dropped {
				if err := setIDs(-1, state.lowUID, -1, -1, state.lowGID, -1); err != nil {
					// Going on with privileges the code after Do does
					// not expect is worse than stopping.
					panic("privsep: cannot lower the effective IDs: " + err.Error())
				}
			}
		}()
	}
	return f()
}

// Drop gives the installed privileges up for good: real, effective and
// saved IDs all become the caller's (the relaymail user's after a switch
// from root, which has nothing to drop). It must not be called inside Do.
func Drop() error {
	state.mu.Lock()
	defer state.mu.Unlock()
	if !state.privileged || state.dropped {
		return nil
	}
	if state.depth > 0 {
		return errors.New("privsep: Drop inside Do")
	}
	state.dropped = true
	if state.switched {
		return nil
	}
	if err := setIDs(state.lowUID, state.lowUID, state.lowUID, state.lowGID, state.lowGID, state.lowGID); err != nil {
		return fmt.Errorf("privsep: cannot drop the privileges: %w", err)
	}
	return nil
}

// CallerLimits names the resource limits (file size, CPU time, address
// space, data size) whose hard limit the caller of a privileged run has
// set, and which could stop the process at a point of the caller's
// choosing. Start raised their soft limits as far as it could. nil when
// the run is not privileged, or was started by root, whose limits are no
// one else's choice.
func CallerLimits() []string {
	state.mu.Lock()
	defer state.mu.Unlock()
	if !state.privileged || state.callerUID == 0 {
		return nil
	}
	return finiteLimits()
}

// cleanEnv removes every environment variable but those in keep. os.Clearenv
// also makes the runtime forget GODEBUG, which it read at start-up.
func cleanEnv(keep []string) {
	kept := filterEnv(os.Environ(), keep)
	os.Clearenv()
	for _, kv := range kept {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
}

// filterEnv returns the entries of env whose name is in keep, in order; an
// entry without "=", or with an empty name, is dropped.
func filterEnv(env, keep []string) []string {
	var out []string
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		for _, want := range keep {
			if k == want {
				out = append(out, kv)
				break
			}
		}
	}
	return out
}
