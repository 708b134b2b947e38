# relaymail build and test entry points. `make check` is what CI runs
# (.ci/run); it installs what the tests need when it is missing.

GO        ?= go
BIN       := bin
TOOLS     := $(CURDIR)/.tools/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
# govulncheck from the module proxy: v1.1.4 is the newest whose dependencies
# the proxy serves (v1.9.0 needs a golang.org/x/telemetry it refuses).
GOVULNCHECK_VERSION := v1.1.4
# Each fuzz target runs this long in `make check`; `make fuzz` runs longer.
FUZZTIME  ?= 10s
FUZZLONG  ?= 2m
APT_PACKAGES := mandoc bsdextrautils file rpm
# nfpm builds the .deb, .rpm and .apk (`make package`), run from the module
# proxy at this version: the newest whose dependencies the proxy serves.
NFPM_VERSION := v2.45.2
NFPM      := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
DIST      ?= dist
STAGE     := $(DIST)/stage
# Packages are reproducible: every time inside them is the last commit's.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# vX.Y.Z when the commit is tagged so; else 0.0.0 with the commit time as a
# prerelease (git20261121131324), which every package format orders.
PKG_VERSION    ?= $(shell git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null | sed 's/^v//' || true)
PKG_PRERELEASE ?= $(if $(PKG_VERSION),,git$(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y%m%d%H%M%S))
PKG_ARCH       ?= $(shell $(GO) env GOARCH)
MAN_PAGES := $(wildcard man/*.[0-9])

export CGO_ENABLED ?= 0

.PHONY: all build demo check deps vet staticcheck vulncheck test fuzz-short fuzz manlint man package fmt clean crash-long bench

all: build

build:
	mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/sendmail ./cmd/sendmail
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/qmail-inject ./cmd/qmail-inject
	$(GO) build -trimpath -o $(BIN)/qmtp-sink ./internal/cmd/qmtp-sink

# Quick start: build, start a local QMTP sink, send a sample message through
# bin/sendmail, show what the sink stored, stop the sink.
demo: build
	./scripts/demo.sh

check: deps vet staticcheck vulncheck test fuzz-short manlint

# Install what the tests need when it is missing: mandoc from Debian,
# staticcheck from the Go module proxy into .tools/, and the real servers of
# the e2e suite (scripts/e2e-deps.sh: Dovecot, an extracted Postfix).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@[ -x $(TOOLS)/staticcheck ] || GOBIN=$(TOOLS) CGO_ENABLED=0 $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@./scripts/e2e-deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

staticcheck: deps
	$(TOOLS)/staticcheck ./...

# Known vulnerabilities in the code relaymail reaches (scripts/vulncheck.sh):
# skipped, with the reason, where the database (vuln.go.dev, or GOVULNDB)
# cannot be read.
vulncheck:
	@[ -x $(TOOLS)/govulncheck ] || GOBIN=$(TOOLS) CGO_ENABLED=0 $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) >/dev/null 2>&1 || true
	@./scripts/vulncheck.sh $(TOOLS)/govulncheck

test:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# Every Fuzz target, briefly, against its committed corpus.
fuzz-short:
	@./scripts/fuzz.sh $(FUZZTIME)

fuzz:
	@./scripts/fuzz.sh $(FUZZLONG)

# The queue's crash test (e2e/crash_test.go) with many more SIGKILLs than the
# 300 submissions per variant that `make check` runs.
CRASH_ITERATIONS ?= 5000
crash-long:
	RELAYMAIL_CRASH_ITERATIONS=$(CRASH_ITERATIONS) $(GO) test -count=1 -v -run '^TestCrash$$' -timeout 60m ./e2e/

# Benchmarks (bench/README.md): relaymail against msmtp, nullmailer and dma
# (extracted from Debian by scripts/bench-deps.sh, never installed), in one
# run, alternating, on loopback: caller latency, round trips at 20 ms RTT,
# peak RSS up to 500 MB, 1,000 messages, a queue flush, size and start-up.
# Prints PASS or FAIL per target and writes bench/results/latest.{md,json,svg}
# and bench/results/queue-flush.md. Needs root. Not part of `check`. It runs
# in a private mount namespace (unshare), where dma gets its compiled-in
# /etc/dma/dma.conf from an overlay that no other process sees.
BENCH_TIMEOUT ?= 60m
bench: build
	@./scripts/e2e-deps.sh
	@./scripts/bench-deps.sh
	$(GO) build -trimpath -o $(BIN)/qmqp-sink ./bench/cmd/qmqp-sink
	$(GO) build -trimpath -o $(BIN)/latencyproxy ./bench/cmd/latencyproxy
	$(GO) build -trimpath -o $(BIN)/smtp-tls-sink ./bench/cmd/smtp-tls-sink
	@ns=""; if unshare --mount --propagation private true 2>/dev/null; then \
		ns="unshare --mount --propagation private env RELAYMAIL_BENCH_MOUNTNS=private RELAYMAIL_BENCH_OUTER_MOUNTNS=$$(readlink /proc/self/ns/mnt)"; \
	else echo "bench: no private mount namespace (unshare): dma will be skipped"; fi; \
	echo "$$ns $(GO) test -count=1 -run '^$$' -bench '^BenchmarkPeers$$' -benchtime 1x -timeout $(BENCH_TIMEOUT) ./bench/"; \
	$$ns $(GO) test -count=1 -run '^$$' -bench '^BenchmarkPeers$$' -benchtime 1x -timeout $(BENCH_TIMEOUT) ./bench/

manlint: deps
	mandoc -T lint -W warning man/*.[0-9]

# The plain-text renderings in man/txt, for reading on the web and in
# reviews; the mdoc pages are the source. internal/mantest checks that they
# are up to date.
man:
	@mkdir -p man/txt
	@for p in $(MAN_PAGES); do \
		./scripts/man-txt.sh $$p > man/txt/$$(basename $$p).txt.tmp && \
		mv man/txt/$$(basename $$p).txt.tmp man/txt/$$(basename $$p).txt || exit 1; \
	done

# dist/relaymail_*.deb, dist/relaymail-*.rpm and dist/relaymail_*.apk from
# packaging/nfpm.yaml: the static binaries, the links, /etc/relaymail.conf,
# the spool, the queue runner (systemd and cron) and the manuals.
package:
	rm -rf $(STAGE) && mkdir -p $(STAGE)/man
	GOARCH=$(PKG_ARCH) $(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' -o $(STAGE)/sendmail ./cmd/sendmail
	GOARCH=$(PKG_ARCH) $(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' -o $(STAGE)/qmail-inject ./cmd/qmail-inject
	for p in $(MAN_PAGES); do gzip -9n -c $$p > $(STAGE)/man/$$(basename $$p).gz || exit 1; done
	rm -f $(DIST)/relaymail[_-]*.deb $(DIST)/relaymail[_-]*.rpm $(DIST)/relaymail[_-]*.apk
	for f in deb rpm apk; do \
		PKG_STAGE=$(STAGE) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) PKG_VERSION=$(or $(PKG_VERSION),0.0.0) \
		PKG_PRERELEASE=$(PKG_PRERELEASE) PKG_ARCH=$(PKG_ARCH) \
		$(NFPM) package --config packaging/nfpm.yaml --packager $$f --target $(DIST)/ || exit 1; \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')
	$(GO) vet ./...

clean:
	rm -rf $(BIN) $(DIST)
