# Posthorn build. `make` builds build/posthorn; `make test` runs every test; see README.md.
# Objects of the release build go to build/rel, of the ASan+UBSan test build to build/asan.

CC ?= cc
PKGS := libevent_core libevent_openssl libevent_pthreads openssl sqlite3 libsodium libunbound zlib libpq
# One query per package: a package whose .pc file cannot be resolved must not take every
# other package's flags with it (libunbound.pc needs nettle-dev's hogweed.pc and nettle.pc).
PKG_CFLAGS := $(foreach p,$(PKGS),$(shell pkg-config --cflags $(p) 2>/dev/null))
PKG_LIBS := $(foreach p,$(PKGS),$(shell pkg-config --libs $(p) 2>/dev/null))

WARN := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wvla
BASE_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc $(WARN) $(PKG_CFLAGS) -MMD -MP
# Hardened release build (checked by tests/check-hardening.sh): FORTIFY level 3 (gcc 12,
# glibc 2.34+), stack protector, a position-independent executable, full RELRO with BIND_NOW.
REL_CFLAGS := $(BASE_CFLAGS) -O2 -g -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3 \
	-fstack-protector-strong -fPIE
REL_LDFLAGS := -pie -Wl,-z,relro,-z,now
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 -g $(ASAN_FLAGS)
LIBS := $(PKG_LIBS) -lpthread

SRCS := $(shell find src -name '*.c' | sort)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
REL_OBJS := $(SRCS:src/%.c=build/rel/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/%.o)
ASAN_LIB_OBJS := $(LIB_SRCS:src/%.c=build/asan/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)

.PHONY: FORCE check-hardening test-pg all asan unit-tests run test fuzz fuzz-build bench bench-load format check-format check-layers clean

all: build/posthorn

build/posthorn: $(REL_OBJS)
	$(CC) $(REL_LDFLAGS) -o $@ $^ $(LIBS)

# The release objects are rebuilt when their flags change (a copied build/ keeps old ones).
build/rel/.flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(REL_CFLAGS)' | cmp -s - $@ || echo '$(REL_CFLAGS)' >$@

build/rel/%.o: src/%.c build/rel/.flags
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c -o $@ $<

# Test drivers that are not cmocka programs of their own (tests/unit/<name>.c).
TEST_DRIVERS := build/asan/tests/spf_suite build/asan/tests/dkim_check build/asan/tests/milter_check

asan: build/asan/posthorn $(UNIT_BINS) $(TEST_DRIVERS)

build/asan/posthorn: $(ASAN_OBJS)
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LIBS)

build/asan/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c -o $@ $<

build/asan/tests/%: tests/unit/%.c $(ASAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Itests/unit -o $@ $< $(ASAN_LIB_OBJS) $(LIBS) -lcmocka

unit-tests: $(UNIT_BINS)

# Fuzz targets: clang + libFuzzer. `make fuzz` builds them and runs each for FUZZ_SECONDS.
FUZZ_CC := clang
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS)
FUZZ_LIB_SRCS := $(filter src/core/% src/mime/% src/net/dns_packet.c src/smtp/smtp_parser.c src/smtp/smtp_data.c src/pop3/pop3_parser.c src/imap/imap_parser.c src/imap/imap_notify.c src/imap/imap_seqset.c src/imap/imap_search.c src/imap/imap_search_doc.c src/imap/imap_sort.c src/imap/imap_thread.c src/auth/sasl.c src/smtp/smtp_reply.c src/smtp/mta_sts.c src/smtp/tlsrpt.c src/smtp/spf.c src/smtp/dmarc.c src/smtp/dmarc_report.c src/smtp/psl.c src/smtp/authres.c src/smtp/milter_proto.c,$(LIB_SRCS))
FUZZ_SECONDS ?= 30

build/fuzz/%: fuzz/%.c $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRCS) $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	  mkdir -p build/fuzz/corpus/$$n; \
	  dict=; [ -f fuzz/$$n.dict ] && dict=-dict=fuzz/$$n.dict; \
	  echo "== $$n"; $$f $$dict -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus/$$n fuzz/corpus/$$n || exit 1; \
	done

run:
	@sh tests/run-demo.sh

test:
	@sh tests/run-all.sh

# The whole integration suite on PostgreSQL (make test runs only the store modules there).
test-pg:
	@POSTHORN_TEST_STORE=postgresql sh tests/run-all.sh

bench-load:
	$(MAKE) -C bench/load

bench: all bench-load
	@bench/run

format:
	clang-format -i $(shell find src tests/unit fuzz -name '*.[ch]')

check-format:
	@sh tests/check-format.sh

check-layers:
	@sh tests/check-layers.sh

check-hardening: build/posthorn
	@sh tests/check-hardening.sh build/posthorn

clean:
	rm -rf build

-include $(REL_OBJS:.o=.d) $(ASAN_OBJS:.o=.d)
-include $(UNIT_BINS:=.d)
