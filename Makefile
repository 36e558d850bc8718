# nono — build, run, test, install. `make run` starts a real session of your
# shell; `make test` runs every test.

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(DESTDIR)$(PREFIX)/bin
MANDIR   = $(DESTDIR)$(PREFIX)/share/man
DATADIR  = $(DESTDIR)$(PREFIX)/share
CARGO   ?= cargo
STRIP   ?= strip
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

# The binary `install` copies. Left unset, `install` builds the release one
# first; set it (as the packaging test does) to install a binary as it is.
NONO_BIN ?=
INSTALL_BIN = $(or $(NONO_BIN),$(TARGET_DIR)/release/nono)

# Every page under man/, so a new one is linted and installed without
# touching this file.
MAN1 = $(wildcard man/*.1)
MAN5 = $(wildcard man/*.5)

# Where distributions look for completions under a prefix.
BASH_COMPLETION = $(DATADIR)/bash-completion/completions/nono
ZSH_COMPLETION  = $(DATADIR)/zsh/site-functions/_nono
FISH_COMPLETION = $(DATADIR)/fish/vendor_completions.d/nono.fish

MUSL_TARGET = x86_64-unknown-linux-musl
STATIC_BIN  = $(TARGET_DIR)/$(MUSL_TARGET)/release/nono

.PHONY: all build run test bench check-man static install uninstall clean

all: build

build:
	$(CARGO) build --release

# An attached session of your shell in the current directory, with the dev
# profile (toolchains and git config readable, no credentials); detach with Ctrl-] d.
# A git worktree keeps its repository outside the directory: grant it too,
# so git works in the shell (in a plain clone it is ./.git, already granted).
GIT_COMMON_DIR = $(shell git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)

run: build
	@echo "nono: $${SHELL:-/bin/sh} with the dev profile; its rc files are not granted (they often hold tokens). Detach: Ctrl-] d"
	$(TARGET_DIR)/release/nono run --profile dev $(if $(GIT_COMMON_DIR),-a $(GIT_COMMON_DIR)) -- "$${SHELL:-/bin/sh}"

test:
	$(CARGO) test

bench: build
	$(CARGO) bench --bench runtime

# Lint every manual page with groff and mandoc; any message fails. Installs
# the tools (Debian packages) when they are missing.
check-man:
	@if ! command -v groff >/dev/null || ! command -v mandoc >/dev/null; then \
	    echo "installing groff-base and mandoc"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq groff-base mandoc >/dev/null; \
	fi
	@status=0; \
	for page in $(MAN1) $(MAN5); do \
	    out=$$(groff -t -ww -man -z "$$page" 2>&1; mandoc -Tlint -Wall "$$page" 2>&1); \
	    if [ -n "$$out" ]; then printf '%s\n' "$$out"; status=1; \
	    else echo "$$page: ok"; fi; \
	done; \
	exit $$status

# A fully static x86_64 binary (musl libc), for minimal images.
static:
	@if command -v rustup >/dev/null && \
	    ! rustup target list --installed | grep -qx $(MUSL_TARGET); then \
	    rustup target add $(MUSL_TARGET); \
	fi
	$(CARGO) build --release --target $(MUSL_TARGET)
	@# Static: no program interpreter and no shared library needed.
	@if command -v readelf >/dev/null; then \
	    if readelf -lW $(STATIC_BIN) | grep -q 'Requesting program interpreter' || \
	        readelf -dW $(STATIC_BIN) | grep -q '(NEEDED)'; then \
	        echo "$(STATIC_BIN) is not static"; exit 1; \
	    fi; \
	else \
	    file -L $(STATIC_BIN) | grep -Eq 'static(ally|-pie) linked' || \
	        { echo "$(STATIC_BIN) is not static"; exit 1; }; \
	fi
	@echo "$(STATIC_BIN): static, $$(stat -c %s $(STATIC_BIN)) bytes"

install: $(if $(NONO_BIN),,build)
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man5 \
	    $(dir $(BASH_COMPLETION)) $(dir $(ZSH_COMPLETION)) $(dir $(FISH_COMPLETION))
	install -m 0755 $(INSTALL_BIN) $(BINDIR)/nono
	$(STRIP) $(BINDIR)/nono
	@# -n: no name or time stamp in the header, so the files are reproducible.
	for page in $(MAN1); do gzip -9n < "$$page" > $(MANDIR)/man1/$${page#man/}.gz || exit 1; done
	for page in $(MAN5); do gzip -9n < "$$page" > $(MANDIR)/man5/$${page#man/}.gz || exit 1; done
	chmod 0644 $(patsubst man/%,$(MANDIR)/man1/%.gz,$(MAN1)) $(patsubst man/%,$(MANDIR)/man5/%.gz,$(MAN5))
	$(INSTALL_BIN) completions bash > $(BASH_COMPLETION)
	$(INSTALL_BIN) completions zsh > $(ZSH_COMPLETION)
	$(INSTALL_BIN) completions fish > $(FISH_COMPLETION)
	chmod 0644 $(BASH_COMPLETION) $(ZSH_COMPLETION) $(FISH_COMPLETION)

uninstall:
	rm -f $(BINDIR)/nono \
	    $(patsubst man/%,$(MANDIR)/man1/%.gz,$(MAN1)) \
	    $(patsubst man/%,$(MANDIR)/man5/%.gz,$(MAN5)) \
	    $(BASH_COMPLETION) $(ZSH_COMPLETION) $(FISH_COMPLETION)

clean:
	$(CARGO) clean
