module github.com/relaymail/relaymail

go 1.26.0

require (
	github.com/emersion/go-message v0.18.2
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/emersion/go-smtp v0.25.1
	github.com/pborman/getopt/v2 v2.1.0
)

require golang.org/x/sys v0.49.0
