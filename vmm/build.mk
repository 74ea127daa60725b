# kvmfleet-vmm: one process per VM (vmm/), and the test guests (tests/guests/build.mk).
VMM_LIB_SRCS := vmm/spec.c vmm/placement.c vmm/memory.c vmm/memslot-pool.c vmm/memslot-rules.c vmm/memslot.c vmm/memslot-control.c vmm/kvm.c vmm/nested.c vmm/apicv.c vmm/nested-state.c vmm/nested-control.c vmm/snapshot-manifest.c vmm/snapshot.c vmm/stats.c vmm/vm.c vmm/control.c vmm/control-client.c \
	vmm/arch/x86/boot.c vmm/arch/x86/mptable.c vmm/arch/x86/acpi.c vmm/arch/x86/cpuid.c vmm/dev/serial.c vmm/dev/ioapic.c \
	vmm/dev/tap.c vmm/irq.c vmm/dev/pci.c vmm/dev/msix.c vmm/dev/virtqueue.c vmm/dev/virtio-pci.c vmm/dev/virtio-blk.c vmm/dev/virtio-net.c vmm/dev/virtio-rng.c
VMM_LIB_OBJS := $(VMM_LIB_SRCS:%.c=$(BUILD)/%.o)
VMM_OBJS := $(VMM_LIB_OBJS) $(BUILD)/vmm/main.o

# Objects under vmm/ include their own headers by path relative to vmm/.
$(BUILD)/vmm/%.o: CFLAGS_ALL += -Ivmm
$(BUILD)/tests/unit/test-spec.o $(BUILD)/tests/unit/test-vmm-%.o: CFLAGS_ALL += -Ivmm

BINARIES += $(BUILD)/kvmfleet-vmm
$(BUILD)/kvmfleet-vmm: $(VMM_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(VMM_OBJS) $(LIB_A) $(call pkg_libs,json-c)

UNIT_TESTS += $(BUILD)/tests/test-spec $(BUILD)/tests/test-vmm-boot $(BUILD)/tests/test-vmm-serial \
	$(BUILD)/tests/test-vmm-control-client
$(BUILD)/tests/test-spec: $(BUILD)/vmm/spec.o
$(BUILD)/tests/test-vmm-boot: $(BUILD)/vmm/arch/x86/boot.o $(BUILD)/vmm/arch/x86/mptable.o $(BUILD)/vmm/arch/x86/acpi.o $(BUILD)/vmm/memory.o $(BUILD)/vmm/memslot-pool.o $(BUILD)/vmm/placement.o $(BUILD)/vmm/spec.o $(BUILD)/vmm/kvm.o \
	$(BUILD)/vmm/memslot-rules.o
$(BUILD)/tests/test-vmm-serial: $(BUILD)/vmm/dev/serial.o
$(BUILD)/tests/test-vmm-control-client: $(BUILD)/vmm/control-client.o

UNIT_TESTS += $(BUILD)/tests/test-memslot-rules
$(BUILD)/tests/test-memslot-rules: $(BUILD)/vmm/memslot-rules.o
$(BUILD)/tests/unit/test-memslot-rules.o: CFLAGS_ALL += -Ivmm

UNIT_TESTS += $(BUILD)/tests/test-vmm-snapshot
$(BUILD)/tests/test-vmm-snapshot: $(BUILD)/vmm/snapshot-manifest.o $(BUILD)/vmm/spec.o $(BUILD)/vmm/memslot-rules.o
UNIT_TESTS += $(BUILD)/tests/test-vmm-apicv
$(BUILD)/tests/test-vmm-apicv: $(VMM_LIB_OBJS)
UNIT_TESTS += $(BUILD)/tests/test-vmm-nested
$(BUILD)/tests/test-vmm-nested: $(BUILD)/vmm/nested-state.o
UNIT_TESTS += $(BUILD)/tests/test-vmm-mptable
$(BUILD)/tests/test-vmm-mptable: $(BUILD)/vmm/arch/x86/mptable.o
UNIT_TESTS += $(BUILD)/tests/test-vmm-tap
$(BUILD)/tests/test-vmm-tap: $(BUILD)/vmm/dev/tap.o

# Device models (vmm/dev/): the virtqueue alone, PCI + MSI-X, virtio-blk requests on a temp file.
UNIT_TESTS += $(BUILD)/tests/test-vmm-virtqueue $(BUILD)/tests/test-vmm-pci $(BUILD)/tests/test-vmm-virtio-blk
$(BUILD)/tests/test-vmm-virtqueue: $(BUILD)/vmm/dev/virtqueue.o
$(BUILD)/tests/test-vmm-pci: $(BUILD)/vmm/dev/pci.o $(BUILD)/vmm/dev/msix.o
$(BUILD)/tests/test-vmm-virtio-blk: $(VMM_LIB_OBJS)
UNIT_TESTS += $(BUILD)/tests/test-vmm-virtio-net
$(BUILD)/tests/test-vmm-virtio-net: $(VMM_LIB_OBJS)
UNIT_TESTS += $(BUILD)/tests/test-vmm-acpi
$(BUILD)/tests/test-vmm-acpi: $(BUILD)/vmm/arch/x86/acpi.o
UNIT_TESTS += $(BUILD)/tests/test-vmm-cpuid
$(BUILD)/tests/test-vmm-cpuid: $(BUILD)/vmm/arch/x86/cpuid.o $(BUILD)/vmm/kvm.o
UNIT_TESTS += $(BUILD)/tests/test-vmm-memslot-pool
$(BUILD)/tests/test-vmm-memslot-pool: $(BUILD)/vmm/memslot-pool.o $(BUILD)/vmm/placement.o
