// Package smtp is the SMTP (RFC 5321) and LMTP (RFC 2033) client that
// relays a message to a smarthost. LMTP is a mode of the same client
// (Options.LMTP): LHLO instead of EHLO, and one reply per accepted
// recipient after the message.
//
// go-smtp's client is not used (see the design notes): it cannot pipeline,
// send BDAT, set the EHLO name before STARTTLS, set write deadlines while the
// message is sent, or keep LMTP replies in recipient order.
//
// # Session
//
// Dial connects, starts TLS first for TLSImplicit (RFC 8314), reads the
// greeting and sends EHLO (HELO after a 5xx to EHLO, LHLO for LMTP). For
// TLSStartTLS, STARTTLS (RFC 3207) is required: a server without it is a
// temporary failure and nothing goes out in plain text. Bytes the server
// sends after its 220 to STARTTLS and before the handshake abort the
// session (command injection). After TLS the extensions are forgotten and
// EHLO is sent again. AUTH (RFC 4954) follows when a password is
// configured: PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195) or XOAUTH2, and
// never in plain text unless the server is on a unix socket, or on a
// loopback address with TLS explicitly off.
//
// Replies are read with caps on the line length (MaxReplyLine) and on the
// number of lines (MaxReplyLines), so a hostile server cannot exhaust
// memory. Every wait has the RFC 5321 §4.5.3.2 timeout (Timeouts), and every
// write a deadline: DataBlock, renewed per block, while the message is
// sent.
//
// # Transactions and round trips
//
// With PIPELINING (RFC 2920) MAIL, every RCPT and DATA leave in one group,
// in one write call, and every reply is then read and checked. With
// CHUNKING (RFC 3030) as well, the group ends with "BDAT <n> LAST" and the
// whole message (no dot-stuffing), so one message to any number of
// recipients costs three server turns after connecting: greeting, EHLO and
// the transaction; with DATA it costs four. QUIT is written without waiting
// for its reply. Without PIPELINING every command waits for its reply.
//
// MAIL carries SIZE (RFC 1870, the exact size with CRLF line endings; a
// message over the announced limit fails before anything is sent), BODY
// (RFC 6152: 8BITMIME for an 8-bit message, 7BIT when the caller said so),
// SMTPUTF8 (RFC 6531, for non-ASCII addresses or on request) and the DSN
// parameters RET and ENVID (RFC 3461); RCPT carries NOTIFY and ORCPT. Each
// is sent only when the server offers the extension. An 8-bit message to a
// server without 8BITMIME is sent unchanged with a warning; a non-ASCII
// address to a server without SMTPUTF8 fails permanently for that address.
//
// The message is stored with LF line endings; it is streamed from the spool
// file and sent with CRLF, dot-stuffed for DATA (RFC 5321 §4.5.2). A line
// longer than 998 octets (RFC 5322 §2.1.1) is folded as Postfix folds it
// (smtp_line_length_limit): CRLF and a space are inserted after 998 octets,
// so the rest of the line continues on a line of its own that starts with a
// space. In a header that is ordinary folding; in a body it changes the
// text, which is still better than a server refusing or truncating the
// line.
//
// A recipient refused with 452 (or 552) "too many recipients"
// (RFC 5321 §4.5.3.1.10) is sent in a further transaction on the same
// connection once the current one is done.
//
// # Results
//
// Send returns one relay.Result per envelope recipient, in envelope order,
// duplicates included. A RCPT refusal decides its recipient (4xx Deferred,
// 5xx Failed with the scope relay.ScopeOf gives its enhanced code); a
// refusal of MAIL or of the message decides every recipient concerned
// (MessageScope for a 5xx). In LMTP the replies after the message are read
// one per accepted RCPT, in order, even for duplicates (RFC 2033 §4.2). A
// 421, a lost connection or a timeout leaves every undecided recipient
// Deferred and makes Send return an error.
package smtp
