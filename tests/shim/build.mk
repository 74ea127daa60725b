# LD_PRELOAD shims for failure tests (not linked into any product binary). Built without the
# sanitizers: they are preloaded into sanitized and plain binaries alike.
SHIMS := $(BUILD)/tests/shim/libmemslot-fail.so $(BUILD)/tests/shim/libsndbuf-default.so
ALL_TARGETS += $(SHIMS)

$(BUILD)/tests/shim/lib%.so: tests/shim/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -fPIC -shared -o $@ $< -ldl
