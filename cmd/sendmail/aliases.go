package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/relaymail/relaymail/config"
	"github.com/relaymail/relaymail/internal/maillog"
	"github.com/relaymail/relaymail/internal/privsep"
	"github.com/relaymail/relaymail/internal/submit"
	"github.com/relaymail/relaymail/relay"
	"github.com/relaymail/relaymail/relay/aliases"
	"github.com/relaymail/relaymail/relay/inject"
)

// aliasMap is the alias file of this run, read once by run before any
// message is taken, so that every message (one with -bm, several with -bs)
// is expanded alike. nil means no aliases.
var aliasMap *aliases.Map

// loadAliases reads the alias file for the modes that take mail. A broken
// file stops them with the file and line, so that mail is never sent to a
// name that was meant to be an alias; mailq and the queue runs, which
// expand nothing, do not depend on it.
func (s *sendmail) loadAliases(req *request, cfg *config.Config) int {
	aliasMap = nil
	switch req.Mode {
	case ModeDeliver, ModeVerify, ModeSMTP:
	default:
		return exOK
	}
	m, err := submit.LoadAliases(cfg)
	if err != nil {
		s.aliasError(cfg, err)
		return exConfig
	}
	aliasMap = m
	return exOK
}

// aliasError reports an alias file that cannot be used. Its message may
// quote the file; a caller of a privileged run other than root, who may
// not be able to read it, gets the file's name only, and the details go
// to the log (as for the configuration, configError).
func (s *sendmail) aliasError(cfg *config.Config, err error) {
	if uid, _ := privsep.Caller(); !privileged() || uid == 0 {
		s.errorf("%v", err)
		return
	}
	log := maillog.SyslogOnly("relaymail")
	log.Warning("alias file error: %v", err)
	log.Close()
	s.errorf("the alias file %s cannot be used; the details are in the mail log (ask the administrator)", cfg.Aliases)
}

// localOptions adds what the configuration says about local addresses:
// the aliases (unless -n), rewrite_from, and allow_from_override, which
// drops the caller's -f or -r.
func localOptions(o *inject.Options, req *request, cfg *config.Config) {
	m := aliasMap
	if req.NoAliases {
		m = nil
	}
	submit.Local(o, cfg, m)
	if !cfg.AllowFromOverride {
		o.SenderSet, o.Sender = false, ""
	}
}

// newaliases is sendmail -bi, -I and newaliases. relaymail reads the alias
// file itself on every message, so there is no database to build: this
// checks the file and says so, and a mistake is reported with its line.
func (s *sendmail) newaliases(cfg *config.Config) int {
	var m *aliases.Map
	err := privsep.Do(func() (err error) {
		m, err = aliases.Load(cfg.Aliases)
		return err
	})
	if derr := privsep.Drop(); derr != nil {
		s.errorf("fatal: %v", derr)
		return exOSErr
	}
	switch {
	case err == nil:
		fmt.Fprintf(s.stdout, "%s: %d aliases, valid (relaymail reads this file for every message; there is no database to build)\n", cfg.Aliases, m.Len())
		return exOK
	case errors.Is(err, fs.ErrNotExist) && cfg.Aliases == aliases.DefaultPath:
		fmt.Fprintf(s.stdout, "%s: no such file, so there are no aliases (nothing to build)\n", cfg.Aliases)
		return exOK
	}
	s.aliasError(cfg, err)
	return exConfig
}

// showAddresses prints the envelope -bv works out, after one line for each
// rewrite that made it: "root -> admin@example.com (alias, /etc/aliases
// line 3)", the qualification of bare names, and what happened to the
// sender.
func (s *sendmail) showAddresses(req *request, cfg *config.Config) (relay.Envelope, int) {
	opts := injectOptions(req, cfg)
	opts.Trace = func(line string) { fmt.Fprintln(s.stdout, line) }
	if req.SenderSet && !cfg.AllowFromOverride {
		fmt.Fprintf(s.stdout, "sender %s ignored (allow_from_override no)\n", show(req.Sender))
	}
	env, err := inject.Envelope(opts)
	if err != nil {
		s.errorf("%v", err)
		return env, intakeExit(err)
	}
	fmt.Fprintf(s.stdout, "sender <%s>\n", env.Sender)
	for _, r := range env.Recipients {
		fmt.Fprintf(s.stdout, "recipient <%s>\n", r)
	}
	return env, exOK
}
