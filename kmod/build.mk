# kvmfleet-load: KVM module loading pinned to one CPU, and the cross-CPU consistency check.
KMOD_LIB_SRCS := kmod/params.c kmod/config.c kmod/cpuid.c kmod/modules.c kmod/report.c kmod/setup.c kmod/sysroot.c
KMOD_LIB_OBJS := $(KMOD_LIB_SRCS:%.c=$(BUILD)/%.o)
KMOD_LIBS := $(call pkg_libs,libkmod json-c)

BINARIES += $(BUILD)/kvmfleet-load
$(BUILD)/kvmfleet-load: $(BUILD)/kmod/main.o $(KMOD_LIB_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB_A) $(KMOD_LIBS)

UNIT_TESTS += $(BUILD)/tests/test-kmod-config $(BUILD)/tests/test-kmod-cpuid $(BUILD)/tests/test-kmod-report
$(BUILD)/tests/test-kmod-config: $(BUILD)/kmod/config.o $(BUILD)/kmod/params.o $(BUILD)/kmod/modules.o $(BUILD)/kmod/sysroot.o
$(BUILD)/tests/test-kmod-cpuid: $(BUILD)/kmod/cpuid.o $(BUILD)/kmod/sysroot.o
$(BUILD)/tests/test-kmod-report: $(KMOD_LIB_OBJS)
EXTRA_LIBS_kmod-config := $(KMOD_LIBS)
EXTRA_LIBS_kmod-cpuid := $(KMOD_LIBS)
EXTRA_LIBS_kmod-report := $(KMOD_LIBS)
