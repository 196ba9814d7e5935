# ngx_rtmp_pgauth
#
#   make            build objs/ngx_rtmp_pgauth_module.so for the installed
#                   Debian nginx (NGX_RTMP_SRC=/path to use a checkout of
#                   nginx-rtmp-module for the headers)
#   make run        a local PostgreSQL and nginx; prints what to paste into OBS
#   make test       the whole test suite, then again with the module built
#                   with AddressSanitizer (TEST=t/010-config.t for one file,
#                   ASAN=0 to skip the second pass)
#   make deps       install the Debian packages of all of these (each target
#                   installs what it needs)
#   make fuzz       the libFuzzer targets of t/fuzz, FUZZ_SECONDS (60) each
#   make bench      the module against nginx-rtmp alone and on_publish to a
#                   Go service; writes docs/benchmarks.md; private HLS
#                   against an open location: docs/benchmarks-viewers.md
#   make soak       20,000 publish attempts, RSS/fd/backend samples, report
#                   in docs/soak.md (not part of make test)
#   make deb        build/deb/libnginx-mod-rtmp-pgauth_*.deb (debhelper)
#   make install    install the module and its modules-available snippet
#   make test-chroot
#                   make test in a pristine debootstrap of SUITE (bookworm,
#                   or trixie), as root, of the committed HEAD (TEST=...)
#   make run-chroot make run there, with a publish and Ctrl-C
#   make clean      leave the tree as cloned

MODULE     := objs/ngx_rtmp_pgauth_module.so
ASAN_MODULE := objs/asan/ngx_rtmp_pgauth_module.so
SOURCES    := config $(wildcard src/*.c src/*.h)
RTMPC      := t/tools/rtmpc
RTMP_CORE  := t/tools/rtmp.c t/tools/rtmp.h
NODE_DEPS  := node_modules/playwright-core/package.json

RTMP_PORT  ?= 1935
HTTP_PORT  ?= 8080
# make run RTMPS_PORT=1936: RTMPS too, through nginx's stream module
RTMPS_PORT ?=
TEST       ?= t/
PROVE_JOBS ?= 4
ASAN       ?= 1
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := notify strings lists
FUZZ_BINS  := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
FUZZ_INCS  := -Ibuild/nginx/src/core -Ibuild/nginx/src/event \
              -Ibuild/nginx/src/event/quic \
              -Ibuild/nginx/src/os/unix -Ibuild/nginx/objs -Isrc

DESTDIR    ?=
MODULES    ?= /usr/lib/nginx/modules
AVAILABLE  ?= /usr/share/nginx/modules-available
ENABLED    ?= /etc/nginx/modules-enabled
DATADIR    ?= /usr/share/ngx-rtmp-pgauth
SUITE      ?= bookworm

export NGX_RTMP_SRC PG_CONFIG

.PHONY: all deps run test test-asan fuzz bench soak deb install uninstall \
	clean test-chroot run-chroot

all: $(MODULE)

deps:
	@util/deps.sh

$(MODULE): $(SOURCES) util/build.sh
	@util/deps.sh build
	@util/build.sh

$(ASAN_MODULE): $(SOURCES) util/build.sh
	@util/deps.sh build
	@VARIANT=asan util/build.sh

# hls.js for the player page, playwright-core for its browser test: the
# versions of package-lock.json
$(NODE_DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund --no-update-notifier --loglevel=error
	@touch $@

# the test client; t/tools/rtmp.c is the RTMP core it shares with
# t/bench/loadc (built by util/bench.pl)
$(RTMPC): t/tools/rtmpc.c $(RTMP_CORE)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $(filter %.c,$^)

run:
	@util/deps.sh run
	@$(MAKE) -s $(MODULE)
	@RTMP_PORT=$(RTMP_PORT) HTTP_PORT=$(HTTP_PORT) RTMPS_PORT=$(RTMPS_PORT) \
	    util/run.sh

test:
	@util/deps.sh test
	@$(MAKE) -s $(MODULE) $(RTMPC) $(NODE_DEPS)
	prove -j$(PROVE_JOBS) -r $(TEST)
	@if [ "$(ASAN)" = 1 ]; then $(MAKE) -s test-asan; fi
	@if [ "$(TEST)" = t/ ]; then $(MAKE) -s fuzz FUZZ_SECONDS=15; fi

# the same tests, the module under AddressSanitizer: any report fails them
test-asan:
	@util/deps.sh test
	@$(MAKE) -s $(ASAN_MODULE) $(RTMPC) $(NODE_DEPS)
	PGAUTH_ASAN=1 prove -j$(PROVE_JOBS) -r $(TEST)

# every parser of outside input, under libFuzzer with ASan and UBSan
build/fuzz/fuzz_%: t/fuzz/fuzz_%.c src/ngx_rtmp_pgauth_parse.c \
		src/ngx_rtmp_pgauth_parse.h $(MODULE)
	@mkdir -p build/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined $(FUZZ_INCS) \
		-o $@ $< src/ngx_rtmp_pgauth_parse.c

fuzz:
	@util/deps.sh fuzz
	@$(MAKE) -s $(MODULE)
	@$(MAKE) -s $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus-$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=build/fuzz/$$t- \
			-print_final_stats=1 build/fuzz/corpus-$$t \
			t/fuzz/corpus/$$t > build/fuzz/$$t.log 2>&1 \
		|| { tail -n 40 build/fuzz/$$t.log; exit 1; }; \
		grep -E '^stat::number_of_executed_units' build/fuzz/$$t.log; \
	done

bench:
	@util/deps.sh bench
	@$(MAKE) -s $(MODULE) $(RTMPC)
	perl util/bench.pl --out docs/benchmarks.md
	perl util/bench-viewers.pl --out docs/benchmarks-viewers.md

soak:
	@util/deps.sh
	@$(MAKE) -s $(MODULE) $(RTMPC)
	perl util/soak.pl --out docs/soak.md

deb:
	@util/deps.sh deb
	util/deb.sh

# the two commands on a pristine Debian (not part of make test)
test-chroot:
	@SUITE=$(SUITE) TEST='$(filter-out t/,$(TEST))' util/chroot.sh test

run-chroot:
	@SUITE=$(SUITE) util/chroot.sh run

install: $(MODULE)
	install -D -m 644 $(MODULE) \
		$(DESTDIR)$(MODULES)/ngx_rtmp_pgauth_module.so
	install -D -m 644 util/mod-rtmp-pgauth.conf \
		$(DESTDIR)$(AVAILABLE)/mod-rtmp-pgauth.conf
	install -d $(DESTDIR)$(ENABLED)
	ln -sf $(AVAILABLE)/mod-rtmp-pgauth.conf \
		$(DESTDIR)$(ENABLED)/70-mod-rtmp-pgauth.conf
	install -D -m 644 src/pgauth.sql $(DESTDIR)$(DATADIR)/pgauth.sql

uninstall:
	rm -f $(DESTDIR)$(MODULES)/ngx_rtmp_pgauth_module.so \
		$(DESTDIR)$(AVAILABLE)/mod-rtmp-pgauth.conf \
		$(DESTDIR)$(ENABLED)/70-mod-rtmp-pgauth.conf \
		$(DESTDIR)$(DATADIR)/pgauth.sql
	rmdir $(DESTDIR)$(DATADIR) 2>/dev/null || true

clean:
	@if [ -f run/logs/nginx.pid ] || [ -f run/pg/data/postmaster.pid ]; then \
		echo "make clean: stop 'make run' first" >&2; exit 1; fi
	@if grep -q ' $(CURDIR)/build/' /proc/mounts; then \
		echo "make clean: something is mounted under build/" >&2; \
		exit 1; fi
	rm -rf --one-file-system build objs run node_modules $(RTMPC) t/tmp
