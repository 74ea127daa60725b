# Test guests: freestanding, built to build/guests/NAME.elf (64-bit, long mode with paging) and
# build/guests/hello16.bin (raw, real mode at 0x8000).
GUESTS := hello memtouch counter reset mailbox lapic svm-l2 pcienum vblk
GUEST_CC ?= gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -nostdlib -fno-pic -fno-pie -no-pie -static \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables -m64 \
	-Wl,-T,tests/guests/guest.ld -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-z,max-page-size=4096
GUEST_COMMON := tests/guests/crt0.S tests/guests/lib.c tests/guests/guest.h tests/guests/guest.ld tests/guests/pci.h

ALL_TARGETS += $(GUESTS:%=$(BUILD)/guests/%.elf) $(BUILD)/guests/hello16.bin

$(BUILD)/guests/%.elf: tests/guests/%.c $(GUEST_COMMON)
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -o $@ tests/guests/crt0.S tests/guests/lib.c $<

$(BUILD)/guests/hello16.o: tests/guests/hello16.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) -m16 -c -o $@ $<

$(BUILD)/guests/hello16.bin: $(BUILD)/guests/hello16.o
	ld -m elf_i386 -Ttext=0x8000 --oformat binary -o $@ $<
