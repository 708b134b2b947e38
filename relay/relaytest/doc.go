// Package relaytest provides in-process recording servers for tests, in the
// manner of net/http/httptest: a QMTP server that behaves like qmail-qmtpd,
// and an SMTP/LMTP server on go-smtp's server. Both listen on 127.0.0.1 or
// on a unix socket, record what they receive, and can be scripted to refuse,
// defer, close or stall.
//
// Only tests (and the qmtp-sink test tool) may import this package.
package relaytest
