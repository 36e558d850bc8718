# nono — build, run, test, install. `make run` starts a real session of your
# shell; `make test` runs every test.

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(DESTDIR)$(PREFIX)/bin
MANDIR   = $(DESTDIR)$(PREFIX)/share/man
CARGO   ?= cargo

.PHONY: all build run test bench install uninstall clean

all: build

build:
	$(CARGO) build --release

# An attached session of your shell in the current directory; detach with Ctrl-] d.
run: build
	./target/release/nono run -- "$${SHELL:-/bin/sh}"

test:
	$(CARGO) test

bench: build
	$(CARGO) bench --bench runtime

install: build
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man5
	install -m 0755 target/release/nono $(BINDIR)/nono
	install -m 0644 man/nono.1 $(MANDIR)/man1/nono.1
	install -m 0644 man/nono.toml.5 $(MANDIR)/man5/nono.toml.5

uninstall:
	rm -f $(BINDIR)/nono $(MANDIR)/man1/nono.1 $(MANDIR)/man5/nono.toml.5

clean:
	$(CARGO) clean
