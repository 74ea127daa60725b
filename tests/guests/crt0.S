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

/* Second entry, for comparing with QEMU (-M microvm -kernel NAME.elf): the Xen PVH boot protocol
 * enters in 32-bit protected mode without paging. Build identity page tables for the first GiB,
 * switch to long mode and continue at _start as vCPU 0 of 1 with no zero page (RSI = 0). */
        .section .note.Xen, "a", @note
        .balign 4
        .long 4                 /* name size */
        .long 8                 /* desc size */
        .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .balign 4
        .quad pvh_start

        .text
        .code32
pvh_start:
        cli
        mov $pvh_pd, %edi
        mov $0x83, %eax         /* present, writable, 2 MiB page */
        mov $512, %ecx
1:      mov %eax, (%edi)
        movl $0, 4(%edi)
        add $0x200000, %eax
        add $8, %edi
        loop 1b
        movl $(pvh_pd + 3), pvh_pdpt
        movl $(pvh_pdpt + 3), pvh_pml4
        mov $pvh_pml4, %eax
        mov %eax, %cr3
        mov %cr4, %eax
        or $0x20, %eax          /* PAE */
        mov %eax, %cr4
        mov $0xc0000080, %ecx   /* EFER.LME */
        rdmsr
        or $0x100, %eax
        wrmsr
        mov %cr0, %eax
        or $0x80000001, %eax    /* PG | PE */
        mov %eax, %cr0
        lgdt pvh_gdt_desc
        ljmp $0x08, $pvh_long
        .code64
pvh_long:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        xor %edi, %edi
        xor %esi, %esi
        mov $1, %edx
        jmp _start

        .section .rodata
        .balign 8
pvh_gdt:
        .quad 0
        .quad 0x00af9a000000ffff /* 0x08: 64-bit code */
        .quad 0x00cf92000000ffff /* 0x10: data */
pvh_gdt_desc:
        .word 3 * 8 - 1
        .long pvh_gdt

        .section .bss
        .balign 4096
pvh_pml4:
        .skip 4096
pvh_pdpt:
        .skip 4096
pvh_pd:
        .skip 4096
stacks:
        .skip 4096 * GUEST_MAX_VCPUS
