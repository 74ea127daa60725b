AGENT_SRCS := $(filter-out agent/main.c,$(wildcard agent/*.c))
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/schema.o
AGENT_LIBS := $(call pkg_libs,libmicrohttpd json-c libsystemd sqlite3 libxml-2.0) -lm
# Objects the agent takes from other components (the VM spec, the VMM control client).
AGENT_EXTRA_OBJS := $(BUILD)/vmm/spec.o $(BUILD)/vmm/control-client.o $(BUILD)/vmm/memslot-rules.o
AGENT_EXTRA_OBJS += $(BUILD)/vmm/snapshot-manifest.o

BINARIES += $(BUILD)/kvmfleetd

$(BUILD)/gen/schema.c: $(sort $(wildcard schema/*.sql)) schema/gen-schema.sh
	@mkdir -p $(dir $@)
	schema/gen-schema.sh $@ $(sort $(wildcard schema/*.sql))

$(BUILD)/gen/schema.o: $(BUILD)/gen/schema.c $(BUILD)/.cflags
	$(CC) $(CFLAGS_ALL) -Iagent -c -o $@ $<

$(BUILD)/kvmfleetd: $(BUILD)/agent/main.o $(AGENT_OBJS) $(AGENT_EXTRA_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB_A) $(AGENT_LIBS)

UNIT_TESTS += $(BUILD)/tests/test-store $(BUILD)/tests/test-agent-config
$(BUILD)/tests/test-store: $(BUILD)/agent/store.o $(BUILD)/gen/schema.o
EXTRA_LIBS_store := $(call pkg_libs,sqlite3)
$(BUILD)/tests/test-agent-config: $(BUILD)/agent/config.o

# libvirt domain XML (agent/domain-xml.c) maps to and from the VM spec.
$(BUILD)/kvmfleetd: $(BUILD)/vmm/spec.o
UNIT_TESTS += $(BUILD)/tests/test-metrics
$(BUILD)/tests/test-metrics: $(BUILD)/agent/metrics.o
EXTRA_LIBS_metrics := $(call pkg_libs,sqlite3) -lm
UNIT_TESTS += $(BUILD)/tests/test-metrics-kvm
$(BUILD)/tests/test-metrics-kvm: $(BUILD)/agent/metrics-kvm.o $(BUILD)/agent/metrics.o
EXTRA_LIBS_metrics-kvm := $(call pkg_libs,json-c sqlite3) -lm
UNIT_TESTS += $(BUILD)/tests/test-apicv-trace
$(BUILD)/tests/test-apicv-trace: $(BUILD)/agent/apicv-trace.o
