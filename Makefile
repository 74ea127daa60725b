# kvmfleet: plain GNU make. Each component adds its own rules in <dir>/build.mk.
#   make            build every binary into build/
#   make deps       install missing Debian packages (and npm packages for the tests)
#   make check      deps + build + every test; SANITIZE=1 builds with ASan+UBSan
#   make run        build and start the agent with its state under ./var
#   make bench      benchmarks (results: docs/BENCHMARKS.md)
#   make valgrind   unit tests under valgrind
#   make clean

BUILD ?= build
SANITIZE ?= 0
CC ?= gcc
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

PKGS := libmicrohttpd json-c libsystemd sqlite3 libxml-2.0 libkmod libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
pkg_libs = $(shell pkg-config --libs $(1) 2>/dev/null)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-overflow=2 -Wpointer-arith \
	-Wmissing-prototypes -Wstrict-prototypes -Wmissing-declarations -Wundef -Wvla -Wwrite-strings \
	-Wimplicit-fallthrough -Wnull-dereference -Wdate-time -Wno-unused-parameter
OPT := -O2
ifeq ($(SANITIZE),1)
OPT := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
CFLAGS_ALL := -std=gnu11 $(OPT) -g $(WARNINGS) -D_GNU_SOURCE -DKVMFLEET_VERSION='"$(VERSION)"' \
	-I. -Ilib -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(filter -fsanitize=%,$(OPT)) -pthread $(LDFLAGS)

BINARIES :=
UNIT_TESTS :=
ALL_TARGETS :=

.PHONY: all deps check run bench valgrind clean FORCE
.SECONDARY:
all: build-all

# Objects are rebuilt when the compiler flags change (SANITIZE=1 <-> 0).
$(BUILD)/.cflags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CFLAGS_ALL) $(LDFLAGS_ALL)' | cmp -s - $@ || echo '$(CFLAGS_ALL) $(LDFLAGS_ALL)' > $@

$(BUILD)/%.o: %.c $(BUILD)/.cflags
	@mkdir -p $(dir $@)
	$(if $(V),,@echo "  CC      $<";)$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

include lib/build.mk
include $(filter-out lib/build.mk,$(sort $(wildcard */build.mk tests/*/build.mk)))

build-all: $(BINARIES) $(UNIT_TESTS) $(ALL_TARGETS)

deps:
	@tools/deps.sh

check: deps
	@$(MAKE) --no-print-directory build-all
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run-tests.sh

valgrind: build-all
	@BUILD=$(BUILD) VALGRIND=1 tests/run-tests.sh unit

run: deps
	@$(MAKE) --no-print-directory build-all
	@tools/run-dev.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory build-all
	@BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)
