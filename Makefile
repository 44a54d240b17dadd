# Posthorn build. `make` builds build/posthorn; `make test` runs every test; see README.md.
# Objects of the release build go to build/rel, of the ASan+UBSan test build to build/asan.

CC ?= cc
PKGS := libevent_core libevent_openssl libevent_pthreads openssl sqlite3 libsodium libunbound zlib libpq jansson
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
# The test build: POSTHORN_TEST_BUILD compiles in the test-only switches, all armed through
# the environment: blob_unsafe_nosync() and the fault points of src/core/fault.h
# (tests/durability/); the release build has none of them.
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 -g $(ASAN_FLAGS) -DPOSTHORN_TEST_BUILD
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

.PHONY: FORCE check-hardening powerloss durability test-pg all asan unit-tests run test fuzz fuzz-build fuzz-smoke fuzz-campaign fuzz-merge bench bench-load format check-format check-layers clean

all: build/posthorn

build/posthorn: $(REL_OBJS)
	$(CC) $(REL_LDFLAGS) -o $@ $^ $(LIBS)

# The objects are rebuilt when their flags change (a copied build/ keeps old ones).
build/rel/.flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(REL_CFLAGS)' | cmp -s - $@ || echo '$(REL_CFLAGS)' >$@

build/asan/.flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(ASAN_CFLAGS)' | cmp -s - $@ || echo '$(ASAN_CFLAGS)' >$@

build/rel/%.o: src/%.c build/rel/.flags
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c -o $@ $<

# Test drivers that are not cmocka programs of their own (tests/unit/<name>.c).
TEST_DRIVERS := build/asan/tests/spf_suite build/asan/tests/dkim_check build/asan/tests/milter_check

asan: build/asan/posthorn $(UNIT_BINS) $(TEST_DRIVERS)

build/asan/posthorn: $(ASAN_OBJS)
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LIBS)

build/asan/%.o: src/%.c build/asan/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c -o $@ $<

build/asan/tests/%: tests/unit/%.c $(ASAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Itests/unit -o $@ $< $(ASAN_LIB_OBJS) $(LIBS) -lcmocka

unit-tests: $(UNIT_BINS)

# Fuzz targets: clang + libFuzzer. The library is compiled once, instrumented for coverage
# (-fsanitize=fuzzer-no-link), into build/fuzz/obj/ and one static archive; each target links
# against it (the linker takes only the objects a target needs). `make fuzz` runs each target
# for FUZZ_SECONDS; `make fuzz-smoke` a few seconds each (CI); `make fuzz-campaign` a long run
# of every target with a summary table in build/fuzz/campaign.md.
FUZZ_CC := clang
FUZZ_SAN := address,undefined
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer,$(FUZZ_SAN) $(PKG_CFLAGS)
FUZZ_OBJ_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer-no-link,$(FUZZ_SAN) \
	$(PKG_CFLAGS) -MMD -MP
FUZZ_LIB_SRCS := $(filter-out src/cli/%,$(LIB_SRCS))
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:src/%.c=build/fuzz/obj/%.o)
FUZZ_LIB := build/fuzz/libposthorn-fuzz.a
FUZZ_SECONDS ?= 30
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_CAMPAIGN_SECONDS ?= 600

build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_OBJ_CFLAGS) -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

build/fuzz/%: fuzz/%.c $(FUZZ_LIB) $(wildcard fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ifuzz -o $@ $< $(FUZZ_LIB) $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	  mkdir -p build/fuzz/corpus/$$n build/fuzz/artifacts/$$n; \
	  dict=; [ -f fuzz/$$n.dict ] && dict=-dict=fuzz/$$n.dict; \
	  echo "== $$n"; $$f $$dict -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/fuzz/artifacts/$$n/ \
	    build/fuzz/corpus/$$n fuzz/corpus/$$n || exit 1; \
	done

fuzz-smoke: fuzz-build
	@sh fuzz/run.sh smoke $(FUZZ_SMOKE_SECONDS) $(FUZZ_BINS)

# FUZZ_TARGETS="smtp_session mime" runs a part of the campaign (rows add to the same table).
FUZZ_TARGETS ?=
fuzz-campaign: fuzz-build
	@sh fuzz/run.sh campaign $(FUZZ_CAMPAIGN_SECONDS) \
	  $(if $(FUZZ_TARGETS),$(FUZZ_TARGETS:%=build/fuzz/fuzz_%),$(FUZZ_BINS))

# The campaign's finds that add coverage, into the committed corpora (fuzz/corpus/).
fuzz-merge: fuzz-build
	@sh fuzz/run.sh merge 0 $(if $(FUZZ_TARGETS),$(FUZZ_TARGETS:%=build/fuzz/fuzz_%),$(FUZZ_BINS))

run:
	@sh tests/run-demo.sh

# The crash matrix (tests/durability/README.md): every fault point on both store engines,
# DURABILITY_ITERATIONS (default 10) iterations each, then the power-loss run with its
# negative control (`make powerloss`); prints both tables, fails on any loss.
.PHONY: durability
durability: build/asan/posthorn
	@rc=0; /usr/bin/python3 tests/durability/run.py || rc=1; \
	  $(MAKE) --no-print-directory powerloss || rc=1; exit $$rc

test:
	@sh tests/run-all.sh

# The whole integration suite on PostgreSQL (make test runs only the store modules there).
test-pg:
	@POSTHORN_TEST_STORE=postgresql sh tests/run-all.sh

# Power loss (issue 13): the data directory (SQLite, then PostgreSQL's) on powerfs, many
# cuts, each followed by its negative control (no fsync) that must lose mail.
# POWERLOSS_ROUNDS cuts per case.
POWERLOSS_ROUNDS ?= 10
powerloss: build/asan/posthorn
	@POSTHORN_BIN=$(CURDIR)/build/asan/posthorn /usr/bin/python3 tests/durability/powerloss.py \
	  --both --engine all --rounds $(POWERLOSS_ROUNDS)

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

-include $(REL_OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(FUZZ_LIB_OBJS:.o=.d)
-include $(UNIT_BINS:=.d)
