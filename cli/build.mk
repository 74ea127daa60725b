CLI_SRCS := $(wildcard cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
BINARIES += $(BUILD)/kvmfleetctl

$(BUILD)/kvmfleetctl: $(CLI_OBJS) $(LIB_A)
	$(if $(V),,@echo "  LINK    $@";)$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB_A) $(call pkg_libs,libcurl json-c)
