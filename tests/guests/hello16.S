/* Real-mode raw guest: loaded and entered at 0x8000 (CS=0), prints over COM1 and leaves through the
 * debug-exit port with code 0x11. */
        .code16
        .globl _start
_start:
        cli
        xor %ax, %ax
        mov %ax, %ds
        mov %ax, %ss
        mov $0x7000, %sp
        mov $msg, %si
1:      lodsb
        test %al, %al
        jz 3f
        mov %al, %bl
        mov $0x3fd, %dx
2:      inb %dx, %al
        test $0x20, %al
        jz 2b
        mov $0x3f8, %dx
        mov %bl, %al
        outb %al, %dx
        jmp 1b
3:      mov $0x501, %dx
        mov $0x11, %al
        outb %al, %dx
4:      hlt
        jmp 4b
msg:    .asciz "hello from real mode\n"
