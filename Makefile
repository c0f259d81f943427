# roost: one non-recursive Makefile.
#   make          build build/bin/roost-node and build/bin/roostctl
#   make run      private redis-server + one node for domain "localhost"
#   make test     unit, integration (real redis-server) and end-to-end tests
#   make check    the same tests built with ASan+UBSan (in build/san)
#   make fuzz     libFuzzer targets (clang) in $(BUILD)/fuzz, each run for
#                 FUZZ_SECONDS (default 30) on a copy of its seed corpus
#   make chaos    the chaos scenarios (rolling restart, SIGKILL, Redis restart)
#                 with their figures
#   make docker-test  opt-in: images, docker/compose.yml cluster, rolling
#                 restart through HAProxy (docker/test-cluster.sh); never in test

BUILD    ?= build
CC       ?= cc
PYTHON   ?= /usr/bin/python3
SAN      ?=
PKGS     := libuv hiredis expat libprotobuf-c openssl libidn libcyaml

OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -fno-strict-aliasing -I. -I$(BUILD)/gen
ifneq ($(SAN),)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif
# Lazy (=) so pkg-config only runs once deps.sh had its chance.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
# http-parser (libhttp-parser-dev, the admin listener) ships no .pc file.
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -lhttp_parser
# expat's reparse deferral (2.6, backported by later Debian 2.5 builds)
# is switched off where the installed header has it.
EXPAT_H    = $(shell pkg-config --variable=includedir expat)/expat.h
PKG_CFLAGS += $(shell grep -qs XML_SetReparseDeferralEnabled $(EXPAT_H) && echo -DROOST_HAVE_REPARSE_DEFERRAL)
CHECK_LIBS = $(shell pkg-config --libs check)

GEN_C     := $(BUILD)/gen/proto/roost.pb-c.c
GEN_H     := $(BUILD)/gen/proto/roost.pb-c.h
STORE_SRC := $(wildcard store/*.c)
NODE_SRC  := $(filter-out node/main.c,$(wildcard node/*.c))
STORE_OBJ := $(STORE_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/roost.pb-c.o
NODE_OBJ  := $(NODE_SRC:%.c=$(BUILD)/obj/%.o)
STORE_LIB := $(BUILD)/lib/libroost-store.a
NODE_LIB  := $(BUILD)/lib/libroost-node.a

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
BENCH_SRC := $(wildcard tests/bench/*.c)

# Fuzz targets: tests/fuzz/fuzz_<t>.c with seeds in tests/fuzz/corpus/<t>/.
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_DRV     := $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/fuzz_%)

BINS := $(BUILD)/bin/roost-node $(BUILD)/bin/roostctl

.PHONY: all deps run test check unit integration e2e ops clean bench bench-peers fuzz fuzz-corpus chaos docker-test
.DELETE_ON_ERROR:

all: deps
	@$(MAKE) --no-print-directory $(BINS)

deps:
	@sh ops/deps.sh

$(GEN_C) $(GEN_H): proto/roost.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen proto/roost.proto

$(BUILD)/obj/gen/roost.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Wno-error -c $< -o $@

$(BUILD)/obj/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(STORE_LIB): $(STORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(NODE_LIB): $(NODE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/roost-node: $(BUILD)/obj/node/main.o $(NODE_LIB) $(STORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bin/roostctl: $(BUILD)/obj/ops/roostctl.o $(STORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(NODE_LIB) $(STORE_LIB) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< $(NODE_LIB) $(STORE_LIB) $(PKG_LIBS) $(CHECK_LIBS)

$(BUILD)/tests/integration/%: tests/integration/%.c tests/integration/testutil.c \
                              tests/integration/testutil.h $(NODE_LIB) $(STORE_LIB) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< tests/integration/testutil.c \
	    $(NODE_LIB) $(STORE_LIB) $(PKG_LIBS) $(CHECK_LIBS)

# The fuzz targets as plain programs (tests/fuzz/driver.c instead of
# libFuzzer), built like the unit tests, to replay the seed corpora.
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/driver.c tests/fuzz/fuzz.h \
                       $(NODE_LIB) $(STORE_LIB) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/driver.c \
	    $(NODE_LIB) $(STORE_LIB) $(PKG_LIBS)

# tests/unit/test_compat: the current codec against an older and a newer
# encoder generated from tests/compat/*.proto (mixed-version clusters).
COMPAT_PROTO := $(wildcard tests/compat/*.proto)
COMPAT_C     := $(COMPAT_PROTO:%.proto=$(BUILD)/gen/%.pb-c.c)
COMPAT_H     := $(COMPAT_PROTO:%.proto=$(BUILD)/gen/%.pb-c.h)
COMPAT_OBJ   := $(COMPAT_PROTO:%.proto=$(BUILD)/obj/gen/%.pb-c.o)

$(BUILD)/gen/tests/compat/%.pb-c.c $(BUILD)/gen/tests/compat/%.pb-c.h: tests/compat/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/tests/compat/%.pb-c.o: $(BUILD)/gen/tests/compat/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Wno-error -c $< -o $@

$(BUILD)/tests/unit/test_compat: tests/unit/test_compat.c $(COMPAT_OBJ) $(COMPAT_H) \
                                 $(NODE_LIB) $(STORE_LIB) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< $(COMPAT_OBJ) \
	    $(NODE_LIB) $(STORE_LIB) $(PKG_LIBS) $(CHECK_LIBS)

run: all
	@sh ops/run-local.sh $(BUILD)

unit: deps
	@$(MAKE) --no-print-directory $(UNIT_BIN)
	@sh tests/run-unit.sh $(UNIT_BIN)
	@$(MAKE) --no-print-directory fuzz-corpus

# Replays every fuzz target's corpus once (seeds and crash reproducers).
fuzz-corpus: deps
	@$(MAKE) --no-print-directory $(FUZZ_DRV)
	@rc=0; for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz corpus $$t"; \
	    $(BUILD)/tests/fuzz/fuzz_$$t tests/fuzz/corpus/$$t || rc=1; \
	done; exit $$rc

integration: deps
	@$(MAKE) --no-print-directory $(INTEG_BIN) $(BINS)
	@sh tests/with-redis.sh sh tests/run-unit.sh $(INTEG_BIN)

e2e: deps
	@$(MAKE) --no-print-directory $(BINS)
	ROOST_BIN=$(abspath $(BUILD)/bin) $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

# Offline checks of ops/ and docker/ (manifests, rules, unit, RUNBOOK).
ops: deps
	@$(MAKE) --no-print-directory $(BINS)
	ROOST_BIN=$(abspath $(BUILD)/bin) $(PYTHON) -m pytest -q -p no:cacheprovider tests/ops

# The libraries and binaries first: under -j the suites below run side by
# side, and each would otherwise rebuild the shared archives under the others.
test: deps
	@$(MAKE) --no-print-directory $(BINS) $(NODE_LIB) $(STORE_LIB)
	@$(MAKE) --no-print-directory unit integration e2e ops

check:
	@$(MAKE) --no-print-directory BUILD=build/san SAN=1 OPT=-O1 test

# The chaos scenarios of issue 6 alone (they also run in `make test`), with
# their figures printed: sent, lost, duplicated, resumptions, time to resume.
chaos: deps
	@$(MAKE) --no-print-directory $(BINS)
	ROOST_BIN=$(abspath $(BUILD)/bin) $(PYTHON) -m pytest -q -s -p no:cacheprovider \
	    tests/e2e/test_chaos.py

# roost-bench: the load tool, then tests/bench/run.sh (private redis + 2 nodes,
# standard scenarios, one table). Reports figures; asserts nothing about time.
$(BUILD)/bin/roost-bench: $(BENCH_SRC) $(wildcard tests/bench/*.h) $(STORE_LIB) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $(BENCH_SRC) $(STORE_LIB) $(PKG_LIBS)

bench: deps
	@$(MAKE) --no-print-directory $(BINS) $(BUILD)/bin/roost-bench
	@sh tests/bench/run.sh $(BUILD)

# Opt-in, never part of test or bench: the same roost-bench scenarios against
# Prosody and ejabberd from Debian (apt-get install prosody ejabberd), each a
# private single-node instance on a free loopback port. See tests/bench/peers.sh.
bench-peers: deps
	@$(MAKE) --no-print-directory $(BUILD)/bin/roost-bench
	@sh tests/bench/peers.sh $(BUILD)

# libFuzzer: the server sources and generated protobuf C compiled again
# with clang and coverage instrumentation in their own object dir (the
# normal build uses gcc). Warnings are not errors here: gcc's -Werror build
# is the gate, and a clang-only warning must not stop fuzzing.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g $(FUZZ_SAN) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
                -fno-strict-aliasing -I. -I$(BUILD)/gen
FUZZ_LIBOBJ  := $(STORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(NODE_SRC:%.c=$(FUZZ_DIR)/obj/%.o) \
                $(FUZZ_DIR)/obj/gen/roost.pb-c.o
FUZZ_LIB     := $(FUZZ_DIR)/lib/libroost-fuzz.a
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/obj/gen/roost.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/obj/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIBOBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB) $(GEN_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -Wshadow -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< \
	    $(FUZZ_LIB) $(PKG_LIBS)

# Each target runs on a scratch copy of its corpus (new inputs stay out of
# the tree); a crash leaves crash-* in $(FUZZ_DIR)/artifacts/<t>/ and fails.
fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@rc=0; for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz $$t ($(FUZZ_SECONDS)s)"; \
	    rm -rf $(FUZZ_DIR)/run/$$t && mkdir -p $(FUZZ_DIR)/run/$$t $(FUZZ_DIR)/artifacts/$$t && \
	    cp tests/fuzz/corpus/$$t/* $(FUZZ_DIR)/run/$$t/ && \
	    $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ $(FUZZ_DIR)/run/$$t \
	        > $(FUZZ_DIR)/$$t.log 2>&1 || { rc=1; tail -40 $(FUZZ_DIR)/$$t.log; }; \
	    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' $(FUZZ_DIR)/$$t.log | tail -2; \
	done; exit $$rc

# Opt-in (needs docker): builds the images from a local debootstrap base and
# runs the cluster check. Not part of `make test`.
docker-test:
	sh docker/test-cluster.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
