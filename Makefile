# ngx_rtmp_pgauth
#
#   make            build objs/ngx_rtmp_pgauth_module.so for the installed
#                   Debian nginx (NGX_RTMP_SRC=/path to use a checkout of
#                   nginx-rtmp-module for the headers)
#   make run        a local PostgreSQL and nginx; prints what to paste into OBS
#   make test       the whole test suite, then again with the module built
#                   with AddressSanitizer (TEST=t/010-config.t for one file,
#                   ASAN=0 to skip the second pass)
#   make deps       install the Debian packages needed
#   make soak       20,000 publish attempts, RSS/fd/backend samples, report
#                   in docs/soak.md (not part of make test)
#   make install    install the module and its modules-available snippet
#   make clean      leave the tree as cloned

MODULE     := objs/ngx_rtmp_pgauth_module.so
ASAN_MODULE := objs/asan/ngx_rtmp_pgauth_module.so
SOURCES    := config $(wildcard src/*.c src/*.h)
RTMPC      := t/tools/rtmpc

RTMP_PORT  ?= 1935
HTTP_PORT  ?= 8080
TEST       ?= t/
PROVE_JOBS ?= 2
ASAN       ?= 1

DESTDIR    ?=
MODULES    ?= /usr/lib/nginx/modules
AVAILABLE  ?= /usr/share/nginx/modules-available
ENABLED    ?= /etc/nginx/modules-enabled
DATADIR    ?= /usr/share/ngx-rtmp-pgauth

export NGX_RTMP_SRC PG_CONFIG

.PHONY: all deps run test test-asan soak install uninstall clean

all: $(MODULE)

deps:
	@util/deps.sh

$(MODULE): $(SOURCES) util/build.sh
	@util/deps.sh
	@util/build.sh

$(ASAN_MODULE): $(SOURCES) util/build.sh
	@util/deps.sh
	@VARIANT=asan util/build.sh

$(RTMPC): t/tools/rtmpc.c
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

run:
	@util/deps.sh run
	@$(MAKE) -s $(MODULE)
	@RTMP_PORT=$(RTMP_PORT) HTTP_PORT=$(HTTP_PORT) util/run.sh

test:
	@util/deps.sh
	@$(MAKE) -s $(MODULE) $(RTMPC)
	prove -j$(PROVE_JOBS) -r $(TEST)
	@if [ "$(ASAN)" = 1 ]; then $(MAKE) -s test-asan; fi

# the same tests, the module under AddressSanitizer: any report fails them
test-asan:
	@util/deps.sh
	@$(MAKE) -s $(ASAN_MODULE) $(RTMPC)
	PGAUTH_ASAN=1 prove -j$(PROVE_JOBS) -r $(TEST)

soak:
	@util/deps.sh
	@$(MAKE) -s $(MODULE) $(RTMPC)
	perl util/soak.pl --out docs/soak.md

install: $(MODULE)
	install -D -m 644 $(MODULE) \
		$(DESTDIR)$(MODULES)/ngx_rtmp_pgauth_module.so
	install -D -m 644 util/mod-rtmp-pgauth.conf \
		$(DESTDIR)$(AVAILABLE)/mod-rtmp-pgauth.conf
	install -d $(DESTDIR)$(ENABLED)
	ln -sf $(AVAILABLE)/mod-rtmp-pgauth.conf \
		$(DESTDIR)$(ENABLED)/60-mod-rtmp-pgauth.conf
	install -D -m 644 src/pgauth.sql $(DESTDIR)$(DATADIR)/pgauth.sql

uninstall:
	rm -f $(DESTDIR)$(MODULES)/ngx_rtmp_pgauth_module.so \
		$(DESTDIR)$(AVAILABLE)/mod-rtmp-pgauth.conf \
		$(DESTDIR)$(ENABLED)/60-mod-rtmp-pgauth.conf \
		$(DESTDIR)$(DATADIR)/pgauth.sql

clean:
	@if [ -f run/logs/nginx.pid ] || [ -f run/pg/data/postmaster.pid ]; then \
		echo "make clean: stop 'make run' first" >&2; exit 1; fi
	rm -rf build objs run node_modules $(RTMPC) t/tmp
