/* SPDX-License-Identifier: MIT */
#include "vm.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "apicv.h"
#include "arch/x86/cpuid.h"
#include "dev/tap.h"
#include "dev/virtio-blk.h"
#include "dev/virtio-net.h"
#include "dev/virtio-rng.h"
#include "kvm.h"
#include "memslot.h"
#include "placement.h"
#include "stats.h"
#include "str-util.h"

#define VCPU_KICK_SIGNAL SIGUSR1
#define KVM_TSS_ADDR 0xfffbd000ULL
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

const char *vm_state_to_string(VmState s) {
        static const char *const names[] = { "created", "running", "paused", "stopped" };
        return (unsigned) s < ELEMENTSOF(names) ? names[s] : "unknown";
}

const char *vcpu_state_to_string(VcpuState s) {
        static const char *const names[] = { "created", "running", "parked", "halted", "offline", "stopped" };
        return (unsigned) s < ELEMENTSOF(names) ? names[s] : "unknown";
}

int vm_exit_status(const VmExit *exit) {
        if (streq(exit->reason, "stopped"))
                return 0;
        if (streq(exit->reason, "shutdown"))
                return 10;
        if (streq(exit->reason, "reset"))
                return 11;
        if (streq(exit->reason, "debug-exit"))
                return 64 + (int) (exit->code & 63);
        return 12;
}

static void kick_handler(int sig) {
        (void) sig;
}

int vm_signals_init(void) {
        struct sigaction sa = { .sa_handler = kick_handler }; /* no SA_RESTART: KVM_RUN must return EINTR */
        sigemptyset(&sa.sa_mask);
        if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
                return -errno;
        return 0;
}

/* ---- interrupt lines ---- */

static void serial_irq(void *userdata, bool level) {
        Vm *vm = userdata;
        if (vm->spec->irqchip == VM_IRQCHIP_KERNEL) {
                struct kvm_irq_level line = { .irq = SERIAL_COM1_IRQ, .level = level };
                (void) kvm_ioctl(vm->vm_fd, KVM_IRQ_LINE, &line);
        } else if (vm->have_ioapic)
                ioapic_set_irq(&vm->ioapic, SERIAL_COM1_IRQ, level);
}

/* ---- setup ---- */

static int setup_irqchip(Vm *vm, JsonError *e) {
        int r;
        if (vm->spec->irqchip != VM_IRQCHIP_NONE) {
                r = irq_routing_new(vm->vm_fd, vm->spec->irqchip, &vm->irq);
                if (r < 0)
                        return r;
        }
        switch (vm->spec->irqchip) {
        case VM_IRQCHIP_KERNEL: {
                r = __kvm_ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0);
                if (r < 0)
                        return json_error_set(e, "$.irqchip", "KVM_CREATE_IRQCHIP failed: %s", strerror(-r));
                struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
                r = kvm_ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit);
                if (r < 0)
                        return json_error_set(e, "$.irqchip", "KVM_CREATE_PIT2 failed: %s", strerror(-r));
                struct kvm_reinject_control rc = { .pit_reinject = vm->spec->pit_reinject };
                /* KVM_REINJECT_CONTROL is declared _IO (no size) in the uapi header, so no size check. */
                r = __kvm_ioctl(vm->vm_fd, KVM_REINJECT_CONTROL, &rc);
                if (r < 0)
                        return json_error_set(e, "$.pit.reinject", "KVM_REINJECT_CONTROL failed: %s", strerror(-r));
                return 0;
        }
        case VM_IRQCHIP_SPLIT:
                if (!kvm_check_extension(vm->vm_fd, KVM_CAP_SPLIT_IRQCHIP))
                        return json_error_set(e, "$.irqchip", "unsupported: KVM_CAP_SPLIT_IRQCHIP is absent");
                r = kvm_enable_cap(vm->vm_fd, KVM_CAP_SPLIT_IRQCHIP, IOAPIC_PINS);
                if (r < 0)
                        return json_error_set(e, "$.irqchip", "enabling KVM_CAP_SPLIT_IRQCHIP failed: %s",
                                              strerror(-r));
                r = ioapic_init(&vm->ioapic, vm->vm_fd, vm->irq);
                if (r < 0)
                        return json_error_set(e, "$.irqchip", "KVM_SET_GSI_ROUTING failed: %s", strerror(-r));
                vm->have_ioapic = true;
                return 0;
        case VM_IRQCHIP_NONE:
                return 0;
        }
        return -EINVAL;
}

/* The PCI bus and, with an interrupt controller to deliver MSI-X, the virtio functions in slot
 * order: disks, NICs, virtio-rng. */
static int setup_devices(Vm *vm, JsonError *e) {
        char path[64];
        int r = pci_bus_new(&vm->pci);
        if (r < 0)
                return r;
        if (vm->spec->irqchip == VM_IRQCHIP_NONE)
                return 0;
        VirtioPciEnv env = { .vm_fd = vm->vm_fd, .mem = vm->mem, .irq = vm->irq, .bus = vm->pci };
        for (size_t i = 0; i < vm->spec->n_disks; i++) {
                const VmDisk *d = &vm->spec->disks[i];
                VirtioBlk *b = NULL;
                snprintf(path, sizeof path, "$.disks[%zu].path", i);
                r = virtio_blk_open(d->path, d->readonly, d->serial, &b);
                if (r < 0)
                        return json_error_set(e, path, "cannot open \"%.200s\"%s: %s", d->path,
                                              d->readonly ? " read-only" : " read-write", strerror(-r));
                r = virtio_blk_attach(b, &env, &vm->devices[vm->n_devices]);
                if (r < 0)
                        return json_error_set(e, path, "cannot attach \"%.200s\" as virtio-blk: %s", d->path, strerror(-r));
                vm->n_devices++;
        }
        for (size_t i = 0; i < vm->spec->n_nics; i++) {
                const VmNic *nic = &vm->spec->nics[i];
                char mac_text[18], reason[256];
                uint8_t mac[6];
                VirtioNet *net = NULL;
                int tap_fd = -1;

                snprintf(path, sizeof path, "$.nics[%zu].tap", i);
                r = tap_open(TAP_DEV_PATH, nic->tap, &tap_fd);
                if (r < 0)
                        return json_error_set(e, path, "%s", tap_strerror(r, nic->tap, reason, sizeof reason));
                vm_spec_nic_mac(vm->spec, i, mac_text);
                r = virtio_net_parse_mac(mac_text, mac);
                if (r < 0) {
                        safe_close(tap_fd);
                        snprintf(path, sizeof path, "$.nics[%zu].mac", i);
                        return json_error_set(e, path, "\"%s\" is not a MAC address", mac_text);
                }
                r = virtio_net_new(tap_fd, mac, nic->tap, &net);
                if (r < 0)
                        return json_error_set(e, path, "cannot create virtio-net: %s", strerror(-r));
                r = virtio_net_attach(net, &env, &vm->devices[vm->n_devices]);
                if (r < 0)
                        return json_error_set(e, path, "cannot attach tap \"%s\" as virtio-net: %s", nic->tap,
                                              strerror(-r));
                vm->n_devices++;
        }
        r = virtio_rng_attach(&env, &vm->devices[vm->n_devices]);
        if (r < 0)
                return json_error_set(e, "$", "cannot create virtio-rng: %s", strerror(-r));
        vm->n_devices++;
        return 0;
}

bool vm_devices_in_use(Vm *vm) {
        for (size_t i = 0; i < vm->n_devices; i++)
                if (virtio_pci_device_status(vm->devices[i]) != 0)
                        return true;
        return false;
}

static int vcpu_set_lint(Vcpu *v) {
        struct kvm_lapic_state lapic;
        int r = kvm_ioctl(v->fd, KVM_GET_LAPIC, &lapic);
        if (r < 0)
                return r;
        uint32_t lvt0, lvt1;
        memcpy(&lvt0, lapic.regs + APIC_LVT0, 4);
        memcpy(&lvt1, lapic.regs + APIC_LVT1, 4);
        lvt0 = (lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
        lvt1 = (lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
        memcpy(lapic.regs + APIC_LVT0, &lvt0, 4);
        memcpy(lapic.regs + APIC_LVT1, &lvt1, 4);
        return kvm_ioctl(v->fd, KVM_SET_LAPIC, &lapic);
}

static int vcpu_setup(Vm *vm, Vcpu *v, int mmap_size) {
        _cleanup_free_ struct kvm_cpuid2 *cpuid = NULL;
        struct kvm_sregs sregs;
        struct kvm_regs regs;
        int r;

        v->fd = __kvm_ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long) v->index);
        if (v->fd < 0)
                return v->fd;
        v->run = mmap(NULL, (size_t) mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        if (v->run == MAP_FAILED) {
                v->run = NULL;
                kvm_note_failed_ioctl("mmap(kvm_run)");
                return -errno;
        }
        v->run_size = (size_t) mmap_size;

        r = x86_cpuid_for_vcpu(vm->cpuid, v->index, vm->n_vcpus, vm->spec->nested, vm->spec->kvm_pv_off,
                               &cpuid);
        if (r < 0)
                return r;
        r = __kvm_ioctl(v->fd, KVM_SET_CPUID2, cpuid);
        if (r < 0)
                return r;

        struct {
                struct kvm_msrs hdr;
                struct kvm_msr_entry entries[2];
        } msrs = {
                .hdr.nmsrs = 2,
                .entries = { { .index = MSR_IA32_MISC_ENABLE, .data = 1 /* fast strings */ },
                             { .index = MSR_MTRR_DEF_TYPE, .data = (1u << 11) | 6 /* enabled, write-back */ } },
        };
        r = __kvm_ioctl(v->fd, KVM_SET_MSRS, &msrs);
        if (r < 0)
                return r;
        if (r != 2) {
                kvm_note_failed_ioctl("KVM_SET_MSRS (boot MSRs)");
                return -EIO;
        }

        /* Taken now: vCPU ioctls wait for the vCPU mutex, which KVM_RUN holds while the guest runs. */
        if (kvm_check_extension(vm->kvm_fd, KVM_CAP_BINARY_STATS_FD)) {
                v->stats_fd = __kvm_ioctl(v->fd, KVM_GET_STATS_FD, 0);
                if (v->stats_fd < 0)
                        return v->stats_fd;
        }

        struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
        r = kvm_ioctl(v->fd, KVM_SET_FPU, &fpu);
        if (r < 0)
                return r;

        if (vm->spec->irqchip != VM_IRQCHIP_NONE) {
                r = vcpu_set_lint(v);
                if (r < 0)
                        return r;
        }

        bool starts = v->index == 0 || !vm->boot.bsp_only;
        if (!starts) {
                /* Linux APs: with an in-kernel LAPIC KVM keeps them waiting for INIT/SIPI. */
                v->state = vm->spec->irqchip == VM_IRQCHIP_NONE ? VCPU_STATE_OFFLINE : VCPU_STATE_CREATED;
                return 0;
        }
        r = kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs);
        if (r < 0)
                return r;
        x86_boot_sregs(&vm->boot, &sregs);
        r = kvm_ioctl(v->fd, KVM_SET_SREGS, &sregs);
        if (r < 0)
                return r;
        x86_boot_regs(&vm->boot, v->index, vm->n_vcpus, &regs);
        r = kvm_ioctl(v->fd, KVM_SET_REGS, &regs);
        if (r < 0)
                return r;
        if (v->index > 0 && vm->spec->irqchip != VM_IRQCHIP_NONE) {
                struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
                r = kvm_ioctl(v->fd, KVM_SET_MP_STATE, &mp);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int host_memory_total(uint64_t *ret) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        if (pages <= 0 || page <= 0)
                return -EIO;
        *ret = (uint64_t) pages * (uint64_t) page;
        return 0;
}

static int vm_create_internal(VmSpec *spec, bool load_boot, Vm **ret, JsonError *e) {
        _cleanup_(vm_freep) Vm *vm = NULL;
        char sz[32];
        uint64_t host_total;
        int r, mmap_size;

        vm = calloc(1, sizeof *vm);
        if (!vm) {
                vm_spec_free(spec);
                return -ENOMEM;
        }
        vm->spec = spec;
        vm->kvm_fd = vm->vm_fd = vm->stats_fd = vm->end_event_fd = -1;
        pthread_mutex_init(&vm->lock, NULL);
        pthread_condattr_t cattr;
        pthread_condattr_init(&cattr);
        pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC); /* vm_pause() computes monotonic deadlines */
        pthread_cond_init(&vm->cond, &cattr);
        pthread_condattr_destroy(&cattr);
        vm->created_usec = now_usec();
        vm->exit.vcpu = -1;

        /* Checks that need no KVM call come first. */
        r = load_boot ? vm_spec_check_files(spec, e) : 0;
        if (r < 0)
                return r;
        if (host_memory_total(&host_total) >= 0 && spec->memory > host_total)
                return json_error_set(e, "$.memory", "%s is more than the host's memory (%s)",
                                      format_size(sz, sizeof sz, spec->memory),
                                      format_size((char[32]){ 0 }, 32, host_total));
        if (spec->memory_backing == VM_MEMORY_HUGETLB) {
                uint64_t free_pages = 0;
                r = guest_memory_hugetlb_free_pages(&free_pages);
                if (r < 0 || free_pages < spec->memory / (2ULL << 20))
                        return json_error_set(e, "$.memory_backing",
                                              "hugetlb needs %" PRIu64 " free 2MiB huge pages, the host has %" PRIu64
                                              " (reserve them in /proc/sys/vm/nr_hugepages)",
                                              (uint64_t) (spec->memory / (2ULL << 20)), r < 0 ? (uint64_t) 0 : free_pages);
        }

        vm->end_event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vm->end_event_fd < 0)
                return -errno;
        r = serial_new(SERIAL_RING_SIZE, &vm->serial);
        if (r < 0)
                return r;
        r = guest_memory_new(spec->memory, spec->memory_backing, &vm->mem);
        if (r < 0)
                return json_error_set(e, "$.memory", "cannot allocate %s of %s guest memory: %s",
                                      format_size(sz, sizeof sz, spec->memory),
                                      vm_memory_backing_to_string(spec->memory_backing), strerror(-r));
        r = guest_memory_layout_ram(vm->mem);
        if (r < 0)
                return r;
        r = load_boot ? x86_boot_load(spec, vm->mem, &vm->boot, e) : 0;
        if (r < 0)
                return r;

        r = kvm_open(&vm->kvm_fd);
        if (r < 0)
                return json_error_set(e, "$", "cannot open /dev/kvm: %s", strerror(-r));
        vm->vm_fd = __kvm_ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
        if (vm->vm_fd < 0)
                return json_error_set(e, "$", "KVM_CREATE_VM failed: %s", strerror(-vm->vm_fd));
        int max_vcpus = kvm_check_extension(vm->kvm_fd, KVM_CAP_MAX_VCPUS);
        if (max_vcpus > 0 && spec->vcpus > (unsigned) max_vcpus)
                return json_error_set(e, "$.vcpus", "this host's KVM supports at most %d vCPUs", max_vcpus);
        if (kvm_check_extension(vm->kvm_fd, KVM_CAP_SET_TSS_ADDR)) {
                r = __kvm_ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long) KVM_TSS_ADDR);
                if (r < 0)
                        return json_error_set(e, "$", "KVM_SET_TSS_ADDR failed: %s", strerror(-r));
        }
        r = guest_memory_register(vm->mem, vm->vm_fd);
        if (r < 0)
                return json_error_set(e, "$.memory", "KVM_SET_USER_MEMORY_REGION failed: %s", strerror(-r));
        r = setup_irqchip(vm, e);
        if (r < 0)
                return r;
        r = setup_devices(vm, e);
        if (r < 0)
                return r;
        r = apicv_setup_x2apic_api(vm->vm_fd, spec, e);
        if (r < 0)
                return r;
        r = x86_cpuid_get_supported(vm->kvm_fd, &vm->cpuid);
        if (r < 0)
                return json_error_set(e, "$", "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-r));
        if (spec->irqchip != VM_IRQCHIP_NONE && kvm_check_extension(vm->kvm_fd, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
                x86_cpuid_set_tsc_deadline(vm->cpuid);
        uint32_t missing = spec->kvm_pv_on & ~x86_cpuid_kvm_pv_features(vm->cpuid);
        if (missing) {
                unsigned bit = (unsigned) __builtin_ctz(missing);
                return json_error_set(e, "$.cpu.kvm_pv",
                                      "unsupported: KVM does not offer the paravirtual feature \"%s\" (bit %u)",
                                      vm_kvm_pv_feature_name(bit), bit);
        }
        r = vm_memslot_probe(vm);
        if (r < 0)
                return json_error_set(e, "$", "probing memslot limits failed: %s: %s", kvm_last_failed_ioctl(),
                                      strerror(-r));
        mmap_size = __kvm_ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (mmap_size < (int) sizeof(struct kvm_run))
                return json_error_set(e, "$", "KVM_GET_VCPU_MMAP_SIZE failed");

        vm->vcpus = calloc(spec->vcpus, sizeof *vm->vcpus);
        if (!vm->vcpus)
                return -ENOMEM;
        vm->n_vcpus = spec->vcpus;
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                vm->vcpus[i] = (Vcpu){ .vm = vm, .index = i, .fd = -1, .stats_fd = -1 };
        }
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                r = vcpu_setup(vm, &vm->vcpus[i], mmap_size);
                if (r < 0)
                        return json_error_set(e, "$.vcpus", "setting up vCPU %u failed: %s: %s", i,
                                              kvm_last_failed_ioctl(), strerror(-r));
        }
        serial_set_irq(vm->serial, serial_irq, vm);
        *ret = TAKE_PTR(vm);
        return 0;
}

int vm_create(VmSpec *spec, Vm **ret, JsonError *e) {
        return vm_create_internal(spec, true, ret, e);
}

int vm_create_for_restore(VmSpec *spec, Vm **ret, JsonError *e) {
        return vm_create_internal(spec, false, ret, e);
}

Vm *vm_free(Vm *vm) {
        if (!vm)
                return NULL;
        if (vm->state != VM_STATE_CREATED && vm->state != VM_STATE_STOPPED) {
                vm_request_stop(vm);
                vm_join(vm);
        }
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                Vcpu *v = &vm->vcpus[i];
                if (v->run)
                        munmap(v->run, v->run_size);
                safe_close(v->stats_fd);
                safe_close(v->fd);
        }
        free(vm->vcpus);
        /* device threads end before the memory and the VM fd they use go */
        for (size_t i = 0; i < vm->n_devices; i++)
                virtio_pci_free(vm->devices[i]);
        pci_bus_free(vm->pci);
        if (vm->have_ioapic)
                ioapic_done(&vm->ioapic);
        irq_routing_free(vm->irq);
        free(vm->cpuid);
        safe_close(vm->stats_fd);
        safe_close(vm->vm_fd);
        safe_close(vm->kvm_fd);
        guest_memory_free(vm->mem);
        serial_free(vm->serial);
        safe_close(vm->end_event_fd);
        pthread_cond_destroy(&vm->cond);
        pthread_mutex_destroy(&vm->lock);
        vm_spec_free(vm->spec);
        free(vm);
        return NULL;
}

/* ---- ending, pausing ---- */

static void kick_all_locked(Vm *vm) {
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                Vcpu *v = &vm->vcpus[i];
                if (v->run)
                        v->run->immediate_exit = 1;
                if (v->thread_started)
                        pthread_kill(v->thread, VCPU_KICK_SIGNAL);
        }
        pthread_cond_broadcast(&vm->cond);
}

void vm_end(Vm *vm, const VmExit *exit) {
        pthread_mutex_lock(&vm->lock);
        if (!vm->exit.reason[0]) {
                vm->exit = *exit;
                vm->ended_usec = now_usec();
                uint64_t one = 1;
                (void) !write(vm->end_event_fd, &one, sizeof one);
        }
        vm->stop_requested = true;
        kick_all_locked(vm);
        pthread_mutex_unlock(&vm->lock);
}

void vm_request_stop(Vm *vm) {
        VmExit exit = { .reason = "stopped", .vcpu = -1 };
        vm_end(vm, &exit);
}

static bool all_parked_locked(Vm *vm) {
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                VcpuState s = vm->vcpus[i].state;
                if (vm->vcpus[i].thread_started && s != VCPU_STATE_PARKED && s != VCPU_STATE_HALTED &&
                    s != VCPU_STATE_STOPPED)
                        return false;
        }
        return true;
}

int vm_pause(Vm *vm, int timeout_ms) {
        struct timespec deadline;
        int r = 0;

        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&vm->lock);
        if (vm->state == VM_STATE_PAUSED)
                goto out;
        if (vm->state != VM_STATE_RUNNING || vm->stop_requested) {
                r = -EBUSY;
                goto out;
        }
        vm->pause_requested = true;
        kick_all_locked(vm);
        while (!all_parked_locked(vm) && !vm->stop_requested) {
                int w = pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline);
                if (w == ETIMEDOUT) {
                        r = -ETIMEDOUT;
                        goto out;
                }
        }
        if (vm->stop_requested)
                r = -EBUSY;
        else
                vm->state = VM_STATE_PAUSED;
out:
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int vm_resume(Vm *vm) {
        int r = 0;
        pthread_mutex_lock(&vm->lock);
        if (vm->state == VM_STATE_RUNNING && !vm->pause_requested)
                goto out;
        if ((vm->state != VM_STATE_PAUSED && vm->state != VM_STATE_RUNNING) || vm->stop_requested) {
                r = -EBUSY;
                goto out;
        }
        vm->pause_requested = false;
        vm->state = VM_STATE_RUNNING;
        pthread_cond_broadcast(&vm->cond);
out:
        pthread_mutex_unlock(&vm->lock);
        return r;
}

/* ---- port and MMIO devices ---- */

static uint8_t cmos_read(Vm *vm) {
        switch (vm->cmos_index & 0x7f) {
        case 0x07: /* day of month */
        case 0x08: /* month */
                return 0x01;
        case 0x09: /* year 2000, BCD */
                return 0x00;
        case 0x0a: /* update not in progress */
                return 0x26;
        case 0x0b: /* 24-hour, BCD */
                return 0x02;
        case 0x0d: /* RTC valid */
                return 0x80;
        case 0x32: /* century, BCD */
                return 0x20;
        default:
                return 0x00;
        }
}

/* Returns true when the access ended the VM. */
static bool handle_port(Vcpu *v, uint16_t port, bool out, uint8_t *data, unsigned size) {
        Vm *vm = v->vm;

        if (port >= SERIAL_COM1_BASE && port < SERIAL_COM1_BASE + 8) {
                serial_io(vm->serial, port - SERIAL_COM1_BASE, out, data);
                return false;
        }
        if (vm->pci && pci_bus_port_io(vm->pci, port, out, data, size))
                return false;
        switch (port) {
        case DEBUG_EXIT_PORT:
                if (out) {
                        VmExit exit = { .reason = "debug-exit", .vcpu = (int) v->index };
                        memcpy(&exit.code, data, MIN(size, sizeof exit.code));
                        vm_end(vm, &exit);
                        return true;
                }
                memset(data, 0xff, size);
                return false;
        case I8042_COMMAND_PORT:
                if (out && data[0] == I8042_CMD_RESET) {
                        VmExit exit = { .reason = "reset", .vcpu = (int) v->index };
                        snprintf(exit.detail, sizeof exit.detail, "i8042 reset (0xfe to port 0x64)");
                        vm_end(vm, &exit);
                        return true;
                }
                if (!out)
                        data[0] = 0x00; /* no data, input buffer empty */
                return false;
        case I8042_DATA_PORT:
                if (!out)
                        data[0] = 0x00;
                return false;
        case CMOS_INDEX_PORT:
                if (out)
                        vm->cmos_index = data[0];
                else
                        data[0] = 0xff;
                return false;
        case CMOS_DATA_PORT:
                if (!out)
                        data[0] = cmos_read(vm);
                return false;
        default:
                /* Nothing decodes this port: reads float high as on real hardware, writes are dropped. */
                __atomic_add_fetch(&vm->unhandled_io, 1, __ATOMIC_RELAXED);
                if (!out)
                        memset(data, 0xff, size);
                return false;
        }
}

static bool handle_io(Vcpu *v) {
        struct kvm_run *run = v->run;
        uint8_t *p = (uint8_t *) run + run->io.data_offset;
        bool out = run->io.direction == KVM_EXIT_IO_OUT;

        if (run->io.data_offset + (uint64_t) run->io.size * run->io.count > v->run_size) {
                VmExit exit = { .reason = "vcpu-error", .vcpu = (int) v->index, .kvm_exit_reason = KVM_EXIT_IO };
                snprintf(exit.detail, sizeof exit.detail, "I/O exit data outside kvm_run");
                vm_end(v->vm, &exit);
                return true;
        }
        v->io_exits++;
        for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
                if (handle_port(v, run->io.port, out, p, run->io.size))
                        return true;
        return false;
}

static void handle_mmio(Vcpu *v) {
        struct kvm_run *run = v->run;
        Vm *vm = v->vm;
        unsigned len = MIN(run->mmio.len, (uint32_t) sizeof run->mmio.data);

        v->mmio_exits++;
        if (vm->have_ioapic && run->mmio.phys_addr >= IOAPIC_BASE && run->mmio.phys_addr < IOAPIC_BASE + IOAPIC_SIZE) {
                ioapic_mmio(&vm->ioapic, run->mmio.phys_addr - IOAPIC_BASE, run->mmio.is_write, run->mmio.data, len);
                return;
        }
        if (vm->pci && pci_bus_mmio(vm->pci, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data, len))
                return;
        __atomic_add_fetch(&vm->unhandled_mmio, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&vm->lock);
        vm->last_unhandled_mmio.valid = true;
        vm->last_unhandled_mmio.gpa = run->mmio.phys_addr;
        vm->last_unhandled_mmio.len = run->mmio.len;
        vm->last_unhandled_mmio.is_write = run->mmio.is_write;
        vm->last_unhandled_mmio.vcpu = v->index;
        pthread_mutex_unlock(&vm->lock);
        if (!run->mmio.is_write)
                memset(run->mmio.data, 0xff, len);
}

/* ---- the vCPU thread ---- */

typedef struct VcpuCall {
        VcpuCallFn fn;
        void *userdata;
        int result;
        bool done;
} VcpuCall;

/* Runs a pending vm_vcpu_call() with the lock dropped, so the function may block in ioctls. */
static void vcpu_run_call_locked(Vcpu *v) {
        VcpuCall *call = v->call;
        if (!call)
                return;
        v->call = NULL;
        pthread_mutex_unlock(&v->vm->lock);
        int r = call->fn(v, call->userdata);
        pthread_mutex_lock(&v->vm->lock);
        call->result = r;
        call->done = true;
        pthread_cond_broadcast(&v->vm->cond);
}

static void set_state_locked(Vcpu *v, VcpuState s) {
        if (v->state == s)
                return;
        v->state = s;
        pthread_cond_broadcast(&v->vm->cond); /* vm_pause() waits for state changes */
}

/* Waits while the VM is paused (or, halted, until it stops). Returns false when the vCPU must exit. */
static bool vcpu_wait_locked(Vcpu *v, bool halted) {
        Vm *vm = v->vm;
        for (;;) {
                vcpu_run_call_locked(v);
                if (vm->stop_requested)
                        return false;
                if (halted) {
                        set_state_locked(v, VCPU_STATE_HALTED);
                        pthread_cond_wait(&vm->cond, &vm->lock);
                        continue;
                }
                if (!vm->pause_requested)
                        return true;
                set_state_locked(v, VCPU_STATE_PARKED);
                pthread_cond_wait(&vm->cond, &vm->lock);
        }
}

static void vcpu_end(Vcpu *v, const char *reason, const char *fmt, ...) _printf_(3, 4);
static void vcpu_end(Vcpu *v, const char *reason, const char *fmt, ...) {
        VmExit exit = { .vcpu = (int) v->index, .kvm_exit_reason = v->run ? v->run->exit_reason : 0 };
        va_list ap;
        snprintf(exit.reason, sizeof exit.reason, "%s", reason);
        va_start(ap, fmt);
        vsnprintf(exit.detail, sizeof exit.detail, fmt, ap);
        va_end(ap);
        vm_end(v->vm, &exit);
}

static void *vcpu_thread(void *userdata) {
        Vcpu *v = userdata;
        Vm *vm = v->vm;
        struct kvm_run *run = v->run;
        char name[16];
        bool halted = v->state == VCPU_STATE_HALTED; /* restored from a snapshot that way */

        snprintf(name, sizeof name, "vcpu%u", v->index);
        pthread_setname_np(pthread_self(), name);

        for (;;) {
                pthread_mutex_lock(&vm->lock);
                if (!vcpu_wait_locked(v, halted)) {
                        pthread_mutex_unlock(&vm->lock);
                        break;
                }
                set_state_locked(v, VCPU_STATE_RUNNING);
                /* A call posted after the wait above is run next time round: the kick that came
                 * with it set immediate_exit, which must survive until KVM_RUN sees it. */
                run->immediate_exit = v->call ? 1 : 0;
                pthread_mutex_unlock(&vm->lock);

                int r = ioctl(v->fd, KVM_RUN, 0);
                if (r < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        vcpu_end(v, "vcpu-error", "KVM_RUN failed: %s", strerror(errno));
                        break;
                }
                v->exits++;
                switch (run->exit_reason) {
                case KVM_EXIT_IO:
                        if (handle_io(v))
                                goto done;
                        break;
                case KVM_EXIT_MMIO:
                        handle_mmio(v);
                        break;
                case KVM_EXIT_INTR:
                        break;
                case KVM_EXIT_HLT:
                        halted = true;
                        break;
                case KVM_EXIT_IOAPIC_EOI:
                        if (vm->have_ioapic)
                                ioapic_eoi(&vm->ioapic, run->eoi.vector);
                        break;
                case KVM_EXIT_SHUTDOWN:
                        vcpu_end(v, "shutdown", "triple fault or shutdown");
                        goto done;
                case KVM_EXIT_SYSTEM_EVENT: {
                        uint32_t type = run->system_event.type;
                        if (type == KVM_SYSTEM_EVENT_SHUTDOWN)
                                vcpu_end(v, "shutdown", "system event: shutdown");
                        else if (type == KVM_SYSTEM_EVENT_RESET)
                                vcpu_end(v, "reset", "system event: reset");
                        else
                                vcpu_end(v, "system-event", "system event type %u", type);
                        goto done;
                }
                case KVM_EXIT_FAIL_ENTRY: {
                        VmExit exit = { .reason = "fail-entry", .vcpu = (int) v->index,
                                        .kvm_exit_reason = KVM_EXIT_FAIL_ENTRY,
                                        .hardware_reason = run->fail_entry.hardware_entry_failure_reason };
                        snprintf(exit.detail, sizeof exit.detail, "hardware entry failure reason 0x%llx on cpu %u",
                                 (unsigned long long) run->fail_entry.hardware_entry_failure_reason,
                                 run->fail_entry.cpu);
                        vm_end(vm, &exit);
                        goto done;
                }
                case KVM_EXIT_INTERNAL_ERROR: {
                        VmExit exit = { .reason = "internal-error", .vcpu = (int) v->index,
                                        .kvm_exit_reason = KVM_EXIT_INTERNAL_ERROR,
                                        .suberror = run->internal.suberror };
                        int n = snprintf(exit.detail, sizeof exit.detail, "suberror %u", run->internal.suberror);
                        for (uint32_t i = 0; i < MIN(run->internal.ndata, 4u) && n > 0 && (size_t) n < sizeof exit.detail; i++)
                                n += snprintf(exit.detail + n, sizeof exit.detail - (size_t) n, " data[%u]=0x%llx", i,
                                              (unsigned long long) run->internal.data[i]);
                        vm_end(vm, &exit);
                        goto done;
                }
                default:
                        vcpu_end(v, "unhandled-exit", "unhandled KVM exit reason %u", run->exit_reason);
                        goto done;
                }
        }
done:
        pthread_mutex_lock(&vm->lock);
        vcpu_run_call_locked(v);
        set_state_locked(v, VCPU_STATE_STOPPED);
        pthread_mutex_unlock(&vm->lock);
        return NULL;
}

int vm_vcpu_call(Vm *vm, unsigned index, VcpuCallFn fn, void *userdata, int timeout_ms) {
        struct timespec deadline;
        VcpuCall call = { .fn = fn, .userdata = userdata };
        int r;

        if (index >= vm->n_vcpus)
                return -ENOENT;
        Vcpu *v = &vm->vcpus[index];

        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
        }

        pthread_mutex_lock(&vm->lock);
        /* One call per vCPU at a time: wait for an earlier caller's to finish. */
        while (v->call) {
                if (pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline) == ETIMEDOUT) {
                        pthread_mutex_unlock(&vm->lock);
                        return -ETIMEDOUT;
                }
        }
        if (!v->thread_started || v->state == VCPU_STATE_STOPPED) {
                pthread_mutex_unlock(&vm->lock);
                return fn(v, userdata);
        }
        v->call = &call;
        if (v->run)
                v->run->immediate_exit = 1;
        pthread_kill(v->thread, VCPU_KICK_SIGNAL);
        pthread_cond_broadcast(&vm->cond); /* wakes it where it is parked or halted */
        while (!call.done) {
                if (pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline) == ETIMEDOUT) {
                        if (v->call == &call) { /* never picked up: withdraw it */
                                v->call = NULL;
                                pthread_mutex_unlock(&vm->lock);
                                return -ETIMEDOUT;
                        }
                        /* Running now: it must finish, call lives on this stack. */
                        while (!call.done)
                                pthread_cond_wait(&vm->cond, &vm->lock);
                }
        }
        r = call.result;
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int vm_start(Vm *vm) {
        sigset_t mask, old;
        pthread_attr_t attr;
        cpu_set_t cpus;
        int r = 0;

        /* vCPU threads run only on the spec's cpuset (libvirt's <vcpu cpuset=…>), when it has one */
        pthread_attr_init(&attr);
        if (vm->spec->cpuset) {
                r = cpuset_parse(vm->spec->cpuset, &cpus);
                if (r >= 0)
                        r = -pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
                if (r < 0) {
                        pthread_attr_destroy(&attr);
                        VmExit exit = { .reason = "vcpu-error", .vcpu = -1 };
                        snprintf(exit.detail, sizeof exit.detail, "cpuset \"%s\": %s", vm->spec->cpuset, strerror(-r));
                        vm_end(vm, &exit);
                        return r;
                }
        } else if ((r = placement_guest_attr(&attr)) < 0) {
                /* otherwise the guest CPUs of the agent's placement, when it has one */
                pthread_attr_destroy(&attr);
                VmExit exit = { .reason = "vcpu-error", .vcpu = -1 };
                snprintf(exit.detail, sizeof exit.detail, "guest CPUs \"%s\": %s", placement_guest_cpus(), strerror(-r));
                vm_end(vm, &exit);
                return r;
        } else
                r = 0;

        /* vCPU threads take only the kick signal; the main thread handles the rest via signalfd. */
        sigfillset(&mask);
        sigdelset(&mask, VCPU_KICK_SIGNAL);
        sigdelset(&mask, SIGSEGV);
        sigdelset(&mask, SIGBUS);
        sigdelset(&mask, SIGFPE);
        sigdelset(&mask, SIGILL);
        sigdelset(&mask, SIGABRT);
        pthread_sigmask(SIG_SETMASK, &mask, &old);

        pthread_mutex_lock(&vm->lock);
        /* pause_requested before the start: the vCPUs park before their first KVM_RUN */
        vm->state = vm->pause_requested ? VM_STATE_PAUSED : VM_STATE_RUNNING;
        vm->started_usec = now_usec();
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                Vcpu *v = &vm->vcpus[i];
                if (v->state == VCPU_STATE_OFFLINE)
                        continue;
                int k = pthread_create(&v->thread, &attr, vcpu_thread, v);
                if (k != 0) {
                        r = -k;
                        break;
                }
                v->thread_started = true;
        }
        pthread_mutex_unlock(&vm->lock);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                VmExit exit = { .reason = "vcpu-error", .vcpu = -1 };
                snprintf(exit.detail, sizeof exit.detail, "cannot start vCPU threads%s%s: %s", vm->spec->cpuset ? " on cpuset " : "",
                         vm->spec->cpuset ?: "", strerror(-r));
                vm_end(vm, &exit);
        }
        return r;
}

void vm_join(Vm *vm) {
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                Vcpu *v = &vm->vcpus[i];
                if (!v->thread_started)
                        continue;
                pthread_join(v->thread, NULL);
                v->thread_started = false;
        }
        pthread_mutex_lock(&vm->lock);
        vm->state = VM_STATE_STOPPED;
        vm->pause_requested = false;
        pthread_mutex_unlock(&vm->lock);
}

/* ---- status and stats ---- */

static int exit_json(const VmExit *x, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        int r = 0;
        if (!o)
                return -ENOMEM;
        r |= json_add_string(o, "reason", x->reason);
        r |= json_add_int(o, "vcpu", x->vcpu);
        if (streq(x->reason, "debug-exit"))
                r |= json_add_uint(o, "code", x->code);
        if (streq(x->reason, "internal-error"))
                r |= json_add_uint(o, "suberror", x->suberror);
        if (streq(x->reason, "fail-entry"))
                r |= json_add_uint(o, "hardware_entry_failure_reason", x->hardware_reason);
        if (x->kvm_exit_reason)
                r |= json_add_uint(o, "kvm_exit_reason", x->kvm_exit_reason);
        if (x->detail[0])
                r |= json_add_string(o, "detail", x->detail);
        r |= json_add_int(o, "exit_status", vm_exit_status(x));
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int vm_status_json(Vm *vm, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *vcpus = json_object_new_array(), *slots = json_object_new_array(), *x = NULL;
        uint64_t now = now_usec();
        int r = 0;

        if (!o || !vcpus || !slots) {
                json_object_put(vcpus);
                json_object_put(slots);
                return -ENOMEM;
        }
        r |= json_add(o, "vcpus", vcpus);
        r |= json_add(o, "memslots", slots);
        pthread_mutex_lock(&vm->lock);
        r |= json_add_string(o, "state", vm_state_to_string(vm->state));
        r |= json_add_int(o, "pid", getpid());
        r |= json_add_string(o, "name", vm->spec->name);
        if (vm->spec->uuid)
                r |= json_add_string(o, "uuid", vm->spec->uuid);
        uint64_t end = vm->ended_usec ? vm->ended_usec : now;
        r |= json_add_uint(o, "uptime_ms", vm->started_usec ? (end - vm->started_usec) / 1000 : 0);
        r |= json_add_string(o, "irqchip", vm_irqchip_to_string(vm->spec->irqchip));
        r |= json_add_uint(o, "memory", vm->spec->memory);
        if (placement_housekeeping_cpus()) {
                json_object *p = json_object_new_object();
                if (!p || json_add(o, "cpu_placement", p) < 0) {
                        json_object_put(p);
                        r = -ENOMEM;
                } else {
                        r |= json_add_string(p, "housekeeping_cpus", placement_housekeeping_cpus());
                        r |= json_add_string(p, "guest_cpus", placement_guest_cpus());
                }
        } else
                r |= json_add(o, "cpu_placement", NULL);
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                Vcpu *v = &vm->vcpus[i];
                json_object *c = json_object_new_object();
                if (!c || json_object_array_add(vcpus, c) < 0) {
                        json_object_put(c);
                        r = -ENOMEM;
                        break;
                }
                r |= json_add_uint(c, "index", v->index);
                r |= json_add_string(c, "state", vcpu_state_to_string(v->state));
                r |= json_add_uint(c, "exits", v->exits);
                r |= json_add_uint(c, "io_exits", v->io_exits);
                r |= json_add_uint(c, "mmio_exits", v->mmio_exits);
        }
        if (vm->exit.reason[0] && exit_json(&vm->exit, &x) >= 0)
                r |= json_add(o, "exit", x);
        else
                r |= json_add(o, "exit", NULL);
        if (vm->last_unhandled_mmio.valid) {
                json_object *m = json_object_new_object();
                if (!m || json_add(o, "last_unhandled_mmio", m) < 0) {
                        json_object_put(m);
                        r = -ENOMEM;
                } else {
                        r |= json_add_uint(m, "gpa", vm->last_unhandled_mmio.gpa);
                        r |= json_add_uint(m, "len", vm->last_unhandled_mmio.len);
                        r |= json_add_bool(m, "write", vm->last_unhandled_mmio.is_write);
                        r |= json_add_uint(m, "vcpu", vm->last_unhandled_mmio.vcpu);
                }
        } else
                r |= json_add(o, "last_unhandled_mmio", NULL);
        pthread_mutex_unlock(&vm->lock);
        for (size_t i = 0; i < vm->mem->n_slots; i++) {
                const Memslot *s = &vm->mem->slots[i];
                MemslotInfo info;
                json_object *m = NULL;
                memslot_to_info(s, &info);
                if (memslot_info_to_json(&info, s->registered ? "active" : "pending", &m) < 0 ||
                    json_object_array_add(slots, m) < 0) {
                        json_object_put(m);
                        return -ENOMEM;
                }
        }
        r |= json_add_uint(o, "console_bytes", serial_output_total(vm->serial));
        uint64_t first = serial_first_byte_usec(vm->serial);
        r |= json_add_uint(o, "first_output_us", first && vm->started_usec ? first - vm->started_usec : 0);
        json_object *devices = json_object_new_array();
        if (!devices || json_add(o, "devices", devices) < 0) {
                json_object_put(devices);
                return -ENOMEM;
        }
        for (size_t i = 0; i < vm->n_devices; i++) {
                json_object *d = NULL;
                if (virtio_pci_status_json(vm->devices[i], &d) < 0 || json_object_array_add(devices, d) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
        }
        r |= json_add_uint(o, "unhandled_io", __atomic_load_n(&vm->unhandled_io, __ATOMIC_RELAXED));
        r |= json_add_uint(o, "unhandled_mmio", __atomic_load_n(&vm->unhandled_mmio, __ATOMIC_RELAXED));
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int vm_stats_json(Vm *vm, bool schema, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *vcpus, *stats;
        int r;

        if (!o)
                return -ENOMEM;
        if (!kvm_check_extension(vm->kvm_fd, KVM_CAP_BINARY_STATS_FD))
                return -EOPNOTSUPP;
        if (vm->stats_fd < 0) {
                vm->stats_fd = __kvm_ioctl(vm->vm_fd, KVM_GET_STATS_FD, 0);
                if (vm->stats_fd < 0)
                        return vm->stats_fd;
        }
        r = kvm_stats_read_json(vm->stats_fd, schema, &stats);
        if (r < 0)
                return r;
        r = json_add(o, "vm", stats);
        if (r < 0)
                return r;
        vcpus = json_object_new_array();
        if (!vcpus || json_add(o, "vcpus", vcpus) < 0)
                return -ENOMEM;
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                Vcpu *v = &vm->vcpus[i];
                json_object *c = json_object_new_object();
                if (!c || json_object_array_add(vcpus, c) < 0) {
                        json_object_put(c);
                        return -ENOMEM;
                }
                if (v->stats_fd < 0)
                        return -EOPNOTSUPP;
                r = kvm_stats_read_json(v->stats_fd, schema, &stats);
                if (r < 0)
                        return r;
                if (json_add_uint(c, "index", i) < 0 || json_add(c, "stats", stats) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(o);
        return 0;
}
