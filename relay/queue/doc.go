// Package queue is relaymail's durable spool: messages whose recipients
// could not be delivered at once wait here, with their per-recipient state,
// until a queue run delivers them, they expire, or they fail for good.
//
// # Layout
//
// The spool directory (queue_dir, /var/spool/relaymail by default) holds four
// subdirectories, all on one file system so that link and rename are atomic:
//
//	tmp/      files being written: tmp/ID.msg (message) and tmp/ID.env (envelope)
//	msg/ID    the message bytes of a queued message; never changed once written
//	env/ID    the envelope and per-recipient state; its existence is the commit
//	failed/   messages given up on: failed/ID.msg and failed/ID.env, kept for
//	          inspection and never deleted by relaymail
//
// A queue ID is 16 hex digits of the arrival time in nanoseconds, a dash and
// 8 random hex digits (0187A3B4C5D6E7F8-1a2b3c4d): IDs sort by arrival and
// two processes cannot collide.
//
// # States
//
// A message is in exactly one of these states, named by which files exist:
//
//	S0 writing     +tmp/ID.msg                 -msg/ID -env/ID
//	S1 data safe   +msg/ID (+tmp/ID.msg)       -env/ID
//	S2 queued      +msg/ID +env/ID
//	S3 finishing   +msg/ID                     -env/ID  (after delivery)
//	S4 gone        no file
//	SF failed      +failed/ID.env +failed/ID.msg
//
// # Commit protocol (enqueue)
//
//  1. Write the message into tmp/ID.msg and fsync it.            S0
//     A submission writes tmp/ID.msg as it reads a message larger
//     than intake keeps in memory (inject.DefaultMaxMemory); a smaller
//     one gets its tmp/ID.msg only when something must be queued, so a
//     message delivered at once costs no spool file at all.
//  2. Link tmp/ID.msg to msg/ID and fsync msg/.                  S1
//  3. Write the envelope into tmp/ID.env and fsync it.
//  4. Rename tmp/ID.env to env/ID. This rename is the one commit point:
//     before it the message is not queued, after it it is.       S2
//  5. Fsync env/. Only now may sendmail report success (exit 0).
//  6. Unlink tmp/ID.msg.
//
// # Crashes
//
// What a crash (kill -9, power loss) leaves in each state, and what the next
// queue run does about it:
//
//   - S0: a tmp/ file. sendmail had not exited 0, so the caller knows the
//     message was not accepted. Files in tmp/ older than 36 hours are removed
//     by the next run; that is longer than any intake can take (the header
//     read is bounded and the body is streamed) and qmail uses the same
//     margin between its DEATH and OSSIFIED limits.
//   - S1: msg/ID without env/ID. Not committed, as in S0; msg/ files without
//     an envelope and older than 36 hours are removed.
//   - Between steps 4 and 5: the rename may or may not survive a power loss.
//     sendmail had not exited 0 yet; if the rename survived, the message is
//     delivered although the caller may also send it again: a duplicate,
//     never a loss.
//   - S2: queued. A run delivers it.
//   - S3: the envelope is gone because every recipient reached a final
//     state; msg/ID is removed at once, or by the age rule after a crash.
//
// # Delivery and per-recipient state
//
// A runner takes an exclusive, non-blocking flock on msg/ID (whose inode
// never changes) before it delivers a message, and skips messages another
// runner holds; any number of runners may work on one spool at once. After
// every attempt it writes the new state into tmp/ID.env, fsyncs it, renames
// it over env/ID and fsyncs env/. Each recipient is pending, delivered or
// failed, with the last reply it got. Only pending recipients are sent
// again. When none is pending, env/ID is removed first (the commit of
// completion) and msg/ID second. A run does this for the messages it
// finishes a group at a time (up to 100): it removes their env/ files,
// fsyncs env/ once, and only then removes their msg/ files and releases
// their locks, so that no removal of msg/ID can reach the disk before
// the removal of env/ID does.
//
// A message with a failed recipient, or that expired, moves to failed/: its
// envelope, with the reason, is written to failed/ID.env, msg/ID is renamed
// to failed/ID.msg, and env/ID is removed last.
//
// # Duplicates
//
// At worst a message is delivered twice to a recipient, never lost. That
// happens when a runner is killed after the smarthost accepted a recipient
// and before the new state was renamed into place: the next run sends that
// recipient again. No relay can avoid this window (qmail's INTERNALS says the
// same); relaymail keeps it to one rename. A power failure (not a killed
// process: the kernel keeps what was done) before the fsync that settles a
// group of finished messages may also bring back their env/ files: those
// messages are sent again. That costs one directory fsync per group
// instead of one per message, most of what a queue flush spent on the
// file system.
//
// # Retry, expiry, bounces
//
// A pending message is tried again after retry_min (1 minute), then after
// twice as long each time, up to retry_max (1 hour) between tries. When it has
// been queued longer than queue_lifetime (5 days), its pending recipients
// fail with the last reply they got. For failed recipients, a delivery status
// notification (RFC 3464: multipart/report with a message/delivery-status
// part and the original header) goes from the null sender to the envelope
// sender, through the smarthost, as a new queued message. A message from the
// null sender, or one that is itself a notification, is never bounced.
//
// # Envelope format
//
// env/ID is text, one "key value" line each, so that a person can read it and
// an older relaymail can refuse a newer format by its first line:
//
//	relaymail-envelope 1
//	id 0187A3B4C5D6E7F8-1a2b3c4d
//	arrival 2026-11-21T12:00:00Z
//	sender alice@example.com              (empty value: the null sender)
//	size 2048
//	message-id <20261121120000.1a2b3c4d5e6f7a8b@host.example.com>
//	body 8BITMIME                         (optional)
//	smtputf8 yes                          (optional)
//	dsn-ret HDRS                          (optional)
//	dsn-envid QQ+2B1                      (optional, xtext)
//	dsn-notify FAILURE,DELAY              (optional)
//	bounce yes                            (optional: this message is a notification)
//	attempts 2
//	last-attempt 2026-11-21T12:01:00Z
//	next-attempt 2026-11-21T12:03:00Z
//	rcpt pending bob@example.org
//	reply 452 4.2.2 mailbox full           (the last reply for the rcpt above)
//	rcpt delivered carol@example.org
//	rcpt failed dave@example.org
//	reply 550 5.1.1 no such user
//
// Recipients keep their envelope order. Reply text is kept on one line with
// control characters replaced. The runner treats every spool file as
// untrusted input: it parses strictly, checks every address as intake does,
// and moves a file it cannot parse to failed/ rather than guess.
//
// # Ownership and trust
//
// A spool is private (one user: directories 0700, files 0600) or shared
// (Options.Shared, or a spool directory with the set-group-ID bit: the
// packaged install, where every user's set-group-ID sendmail and the
// relaymail user's runner share it through the relaymail group;
// directories 2770, files 0640). A runner may read files that whoever wrote
// the spool cannot (a user's own files, when that user runs the queue), so
// a file is opened (trust.go) only if it is not a symbolic link
// (O_NOFOLLOW), is a regular file (opened O_NONBLOCK, so that a FIFO
// cannot stall the run), belongs to the spool directory's group (in a
// private spool also: to the effective user), is not writable by others,
// and has at most the links the commit protocol makes (1 for env/ files, 2
// for msg/ files, which share an inode with tmp/ID.msg until step 6). Any
// other file is reported and left alone: never read, moved or removed.
// Files are created with O_NOFOLLOW too, and a subdirectory that is a
// symbolic link makes Open fail.
//
// # Implementation notes
//
// These details follow from the protocol above; they do not change it.
//
// Envelope files: a line without a space is a key with an empty value (the
// null sender is written "sender"). Times are RFC 3339 in UTC, with as many
// fractional digits as they need. A file is at most 8 MiB, with at most
// 10000 recipients and replies of at most 512 octets, limits chosen so that
// the largest envelope that can be written can also be read. Every key but
// rcpt and reply appears at most once, before the first rcpt. Names in
// env/ that are not queue IDs are reported and left alone.
//
// Commit: replies given to Commit are put on one line and cut to 512
// octets. A Spool is spent by Commit whatever it returns. On an error every
// file Commit made is removed, tmp/ID.msg included, so nothing is committed
// and nothing is left behind; should the removal of env/ID after a failed
// fsync of env/ be lost in a power failure, the message is queued although
// sendmail failed: a duplicate, never a loss. An unlink of tmp/ID.msg that
// fails after step 5 is logged, not returned: the message is queued.
//
// failed/: failed/ID.env is the envelope (the final state, or the bytes of
// an envelope that could not be used), followed by one "reason" line. It is
// written under a unique name in tmp/ (tmp/ID.env.*) and renamed into
// failed/, because an envelope whose msg/ID is missing is moved without a
// lock to hold. A message file whose size differs from the envelope's is
// moved to failed/ too. When env/ID remains but msg/ID is already
// failed/ID.msg next to failed/ID.env (a move cut short), the next run
// removes env/ID, holding the flock on failed/ID.msg: the same inode that
// a runner still moving it would hold.
//
// Completion with a failed recipient: the final state is first written to
// env/ID as after any attempt, then the notification is committed, then the
// message moves to failed/. A crash after the notification was committed
// may send a second one, never none. The notification honours RFC 3461:
// none is sent when the sender asked for NOTIFY without FAILURE (-N never,
// -N success). It reports each failed recipient with the RFC 3463 code of
// its last reply (5.0.0 when there is none; an expired recipient keeps its
// 4.x.x code, as in Postfix) and carries the original header only, whatever
// RET asked. Notifications are delivered in the run that queued them.
//
// Runs: messages are locked in groups of up to 100, in ID order. A
// smarthost that cannot be connected to is not tried again in that run;
// its messages go to the next smarthost or wait. The failure to open a
// session, even a permanent one such as a refused password, defers the
// message rather than failing it (Postfix's smtp_sasl_auth_soft_bounce):
// it is a matter of configuration, and the queue keeps the mail while it is
// fixed. A Relayer without sessions is called once per message. When a
// pipelined batch fails as a whole, every message in it with a recipient
// still deferred goes on to the next smarthost.
package queue
