# fugue — a process supervisor for socket servers.
#   make            build fugue, the example worker and the test worker
#   make run        install missing build dependencies, build, serve the example on 127.0.0.1:8080
#   make test       install missing dependencies, build, run every test
#   make test-compat  install the real servers, build, run the compatibility matrix
#   make check-layers  fail if the modules of src/ call or include each other in a circle
#   make bench      run the benchmarks (BENCH_QUICK=1: a 3-minute smoke test)
#   make fuzz       run the libFuzzer targets (FUZZ_SECONDS each)
#   make install    PREFIX=/usr/local DESTDIR= MANDIR=$(PREFIX)/share/man
#   make deb        install missing packaging tools, build the Debian package in build/deb/
#   make test-deb   build the package, install it, try it, purge it (as root; see tests/package/)

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
DESTDIR	?=

CC	?= cc
CFLAGS	?= -O2 -g
# Development and CI builds stop at a warning; a package build passes WERROR=
# (debian/rules), so that a newer compiler's new warnings do not break it.
WERROR	?= -Werror
WARN	 = -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# Kept apart from CFLAGS and CPPFLAGS so that "make CFLAGS=..." keeps them.
ALL_CPPFLAGS = -D_GNU_SOURCE $(CPPFLAGS)
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS)
# libev ships no pkg-config file on Debian; inih and check do.
INIH_LIBS  = $(shell pkg-config --libs inih 2>/dev/null || echo -linih)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)
LIBS	= -lev $(INIH_LIBS)

VERSION	= 0.2.0

SRCS	= src/util.c src/args.c src/config.c src/cfgset.c src/cfgload.c src/cfgcheck.c src/values.c src/listen.c src/spawn.c src/workers.c \
	  src/fsm.c src/gen.c src/supervise.c src/master.c src/stop.c src/reload.c src/reexec.c src/genops.c src/recycle.c src/handover.c src/status.c \
	  src/logging.c src/lines.c src/logsink.c src/pidfile.c src/notify.c src/state.c src/statecfg.c src/upgrade.c src/control.c src/client.c src/hook.c \
	  src/activate.c src/metrics.c src/promtext.c src/procstat.c
OBJS	= $(SRCS:.c=.o)
HDRS	= $(wildcard src/*.h)

UNIT	= $(patsubst %.c,%,$(wildcard tests/unit/check_*.c))

all: fugue examples/hello tests/worker

fugue: src/main.o $(OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ src/main.o $(OBJS) $(LIBS)

src/%.o: src/%.c $(HDRS)
	$(CC) $(ALL_CPPFLAGS) -DFUGUE_VERSION='"$(VERSION)"' $(ALL_CFLAGS) -c -o $@ $<

examples/hello: examples/hello.c
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

tests/worker: tests/worker.c
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

tests/unit/check_%: tests/unit/check_%.c $(OBJS)
	$(CC) $(ALL_CPPFLAGS) -Isrc $(CHECK_CFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(OBJS) $(LIBS) $(CHECK_LIBS)

deps:
	@sh tools/deps.sh

deps-test:
	@sh tools/deps.sh test

run: deps
	@$(MAKE) --no-print-directory all
	./fugue -c fugue.conf.example

unit: $(UNIT)
	@set -e; for t in $(UNIT); do echo "== $$t"; CK_DEFAULT_TIMEOUT=30 ./$$t; done

# Test files run this many at a time (each file's tests in order).
TEST_JOBS ?= 2

integration: all
	python3 tests/integration/run.py -j $(TEST_JOBS)

check-layers: $(OBJS) src/main.o
	python3 tools/check-layers

test: deps-test
	@$(MAKE) --no-print-directory all $(UNIT)
	@$(MAKE) --no-print-directory check-layers unit integration

# The compatibility matrix: gunicorn, uvicorn, uWSGI, lighttpd, php-fpm, Go,
# Node with express and Python's http.server under fugue (tests/compat).
# What it builds or installs (the Go server, express) goes in COMPAT_BUILD.
COMPAT_BUILD = tests/compat/build

test-compat: deps-compat
	@$(MAKE) --no-print-directory all compat-build
	python3 tests/compat/run.py

deps-compat:
	@sh tools/deps.sh compat

compat-build: $(COMPAT_BUILD)/server $(COMPAT_BUILD)/node_modules/express/package.json

$(COMPAT_BUILD)/server: tests/compat/go/main.go
	@mkdir -p $(COMPAT_BUILD)
	cd tests/compat/go && GOCACHE=$(CURDIR)/$(COMPAT_BUILD)/go-cache \
	    go build -o $(CURDIR)/$@ main.go

$(COMPAT_BUILD)/node_modules/express/package.json:
	@mkdir -p $(COMPAT_BUILD)
	npm install --prefix $(COMPAT_BUILD) --no-save --no-package-lock \
	    --no-audit --no-fund --loglevel=error express@4

# The same suite with AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize: deps-test
	@$(MAKE) --no-print-directory clean
	@$(MAKE) --no-print-directory CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" all $(UNIT)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(MAKE) --no-print-directory unit integration; r=$$?; \
	    $(MAKE) --no-print-directory clean >/dev/null; exit $$r

bench: deps
	@$(MAKE) --no-print-directory all
	python3 bench/run

install: fugue
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 fugue $(DESTDIR)$(BINDIR)/fugue
	install -m 0644 man/fugue.8 $(DESTDIR)$(MANDIR)/man8/fugue.8
	install -m 0644 man/fugue.conf.5 $(DESTDIR)$(MANDIR)/man5/fugue.conf.5

version:
	@echo $(VERSION)

# The package is built in a copy of the tree, in build/deb/, because
# dpkg-buildpackage writes its output to the parent of the tree it builds
# (debian/rules cleans the copy first).
DEB_DIR	= build/deb
deb: deps-deb
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/fugue-$(VERSION)
	tar -cf - --exclude=./.git --exclude=./build --exclude=./fuzz/build --exclude=./bench/results . | \
	    tar -xf - -C $(DEB_DIR)/fugue-$(VERSION)
	cd $(DEB_DIR)/fugue-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls $(DEB_DIR)/*.deb

deps-deb:
	@sh tools/deps.sh deb

test-deb:
	sh tests/package/test-deb.sh

lint-man:
	mandoc -Tlint -W warning man/fugue.8 man/fugue.conf.5

clean:
	rm -f fugue src/*.o examples/hello tests/worker $(UNIT)
	rm -rf fuzz/build build $(COMPAT_BUILD)

# libFuzzer targets (clang): make fuzz [FUZZ_SECONDS=60]; see fuzz/fuzz.mk
include fuzz/fuzz.mk

.PHONY: all deps deps-test deps-deb run unit integration check-layers test sanitize bench install \
	version deb test-deb test-compat deps-compat compat-build lint-man clean \
	fuzz fuzz-build fuzz-seeds fuzz-clean
