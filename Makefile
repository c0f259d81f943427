# roost: one non-recursive Makefile.
#   make          build build/bin/roost-node and build/bin/roostctl
#   make run      private redis-server + one node for domain "localhost"
#   make test     unit, integration (real redis-server) and end-to-end tests
#   make check    the same tests built with ASan+UBSan (in build/san)

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
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
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

BINS := $(BUILD)/bin/roost-node $(BUILD)/bin/roostctl

.PHONY: all deps run test check unit integration e2e clean bench
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

run: all
	@sh ops/run-local.sh $(BUILD)

unit: deps
	@$(MAKE) --no-print-directory $(UNIT_BIN)
	@sh tests/run-unit.sh $(UNIT_BIN)

integration: deps
	@$(MAKE) --no-print-directory $(INTEG_BIN) $(BINS)
	@sh tests/with-redis.sh sh tests/run-unit.sh $(INTEG_BIN)

e2e: deps
	@$(MAKE) --no-print-directory $(BINS)
	ROOST_BIN=$(abspath $(BUILD)/bin) $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

test: deps
	@$(MAKE) --no-print-directory unit integration e2e

check:
	@$(MAKE) --no-print-directory BUILD=build/san SAN=1 OPT=-O1 test

# roost-bench: the load tool, then tests/bench/run.sh (private redis + 2 nodes,
# standard scenarios, one table). Reports figures; asserts nothing about time.
$(BUILD)/bin/roost-bench: $(BENCH_SRC) $(wildcard tests/bench/*.h) $(STORE_LIB) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $(BENCH_SRC) $(STORE_LIB) $(PKG_LIBS)

bench: deps
	@$(MAKE) --no-print-directory $(BINS) $(BUILD)/bin/roost-bench
	@sh tests/bench/run.sh $(BUILD)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
