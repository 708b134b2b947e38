# relaymail build and test entry points. `make check` is what CI runs
# (.ci/run); it installs what the tests need when it is missing.

GO        ?= go
BIN       := bin
TOOLS     := $(CURDIR)/.tools/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
# Each fuzz target runs this long in `make check`; `make fuzz` runs longer.
FUZZTIME  ?= 5s
FUZZLONG  ?= 2m
APT_PACKAGES := mandoc

export CGO_ENABLED ?= 0

.PHONY: all build demo check deps vet staticcheck test fuzz-short fuzz manlint fmt clean crash-long bench

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

check: deps vet staticcheck test fuzz-short manlint

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

# Benchmarks (bench/README.md): a queue flush of 1,000 messages into
# smtp-sink, Dovecot LMTP and bin/qmtp-sink, against one sendmail process per
# message. Not part of `check`; writes bench/results/queue-flush.md.
bench: build
	@./scripts/e2e-deps.sh
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/

manlint: deps
	mandoc -T lint -W warning man/*.[0-9]

fmt:
	gofmt -w $$(git ls-files '*.go')
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
