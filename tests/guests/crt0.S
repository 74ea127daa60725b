/* Entry of the 64-bit test guests. The VMM starts every vCPU here in long mode with paging:
 * RDI = vCPU index, RSI = zero page (boot_params), RDX = vCPU count. */
#define GUEST_MAX_VCPUS 8
        .section .text.start, "ax"
        .code64
        .globl _start
_start:
        cli
        cmp $GUEST_MAX_VCPUS, %rdi
        jae park
        mov %rdi, %rax
        inc %rax
        shl $12, %rax
        lea stacks(%rip), %rsp
        add %rax, %rsp
        call guest_main
park:
        cli
        hlt
        jmp park

        .section .bss
        .balign 4096
stacks:
        .skip 4096 * GUEST_MAX_VCPUS
