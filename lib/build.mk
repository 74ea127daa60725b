LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB_A := $(BUILD)/libkvmfleet.a
LIB_LIBS := $(call pkg_libs,json-c)

$(LIB_A): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

UNIT_TESTS += $(BUILD)/tests/test-str-util $(BUILD)/tests/test-json-util $(BUILD)/tests/test-ini $(BUILD)/tests/test-log
UNIT_TESTS += $(BUILD)/tests/test-sha256 $(BUILD)/tests/test-cpuset
$(BUILD)/tests/test-%: $(BUILD)/tests/unit/test-%.o $(BUILD)/tests/unit/test-main.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB_A) $(LIB_LIBS) $(EXTRA_LIBS_$*)
