/* SPDX-License-Identifier: MIT */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "kvm.h"
#include "memslot.h"
#include "nested.h"
#include "str-util.h"

#define XSAVE_LEGACY_SIZE ((int) sizeof(struct kvm_xsave))
#define MSR_LIST_MAX 4096

/* ---- one vCPU's state, as KVM hands it out ---- */

typedef struct VcpuSnapshot {
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct kvm_fpu fpu;
        void *xsave;
        size_t xsave_size;
        struct kvm_xcrs xcrs;
        bool have_xcrs;
        struct kvm_msr_entry *msrs;
        size_t n_msrs;
        struct kvm_lapic_state lapic;
        bool have_lapic;
        struct kvm_vcpu_events events;
        struct kvm_mp_state mp_state;
        struct kvm_debugregs debugregs;
        struct kvm_nested_state *nested;
        size_t nested_size;
        const char *failed; /* the ioctl that failed */
} VcpuSnapshot;

static void vcpu_snapshot_done(VcpuSnapshot *s) {
        free(s->xsave);
        free(s->msrs);
        free(s->nested);
}

typedef struct SaveContext {
        VcpuSnapshot *snap;
        const uint32_t *msr_indices;
        size_t n_msr_indices;
        size_t xsave_size;
        bool xsave2;
        bool have_xcrs;
        bool lapic;
        int nested_size;
} SaveContext;

/* KVM_GET_MSRS stops at the first MSR it cannot read: keep what it read, skip that one, go on. */
static int get_msrs(int fd, const uint32_t *indices, size_t n, struct kvm_msr_entry **ret, size_t *ret_n) {
        _cleanup_free_ struct kvm_msrs *req = calloc(1, sizeof *req + n * sizeof(struct kvm_msr_entry));
        _cleanup_free_ struct kvm_msr_entry *out = calloc(n ?: 1, sizeof *out);
        size_t done = 0, kept = 0;

        if (!req || !out)
                return -ENOMEM;
        while (done < n) {
                req->nmsrs = (uint32_t) (n - done);
                for (size_t i = done; i < n; i++)
                        req->entries[i - done] = (struct kvm_msr_entry){ .index = indices[i] };
                int r = __kvm_ioctl(fd, KVM_GET_MSRS, req);
                if (r < 0)
                        return r;
                memcpy(out + kept, req->entries, (size_t) r * sizeof *out);
                kept += (size_t) r;
                done += (size_t) r + 1; /* entry r is unreadable */
        }
        *ret = TAKE_PTR(out);
        *ret_n = kept;
        return 0;
}

static int vcpu_save(Vcpu *v, void *userdata) {
        SaveContext *c = userdata;
        VcpuSnapshot *s = &c->snap[v->index];
        int r;

        /* An I/O or MMIO exit completes only at the next KVM_RUN: do that without running the guest. */
        if (v->run && v->state != VCPU_STATE_OFFLINE) {
                v->run->immediate_exit = 1;
                r = __kvm_ioctl(v->fd, KVM_RUN, 0);
                v->run->immediate_exit = 0;
                if (r < 0 && r != -EINTR)
                        return s->failed = "KVM_RUN (immediate_exit)", r;
        }
#define GET(cmd, field)                                                  \
        do {                                                             \
                r = kvm_ioctl(v->fd, cmd, &s->field);                    \
                if (r < 0)                                               \
                        return s->failed = #cmd, r;                      \
        } while (0)
        GET(KVM_GET_REGS, regs);
        GET(KVM_GET_SREGS, sregs);
        GET(KVM_GET_FPU, fpu);
        GET(KVM_GET_VCPU_EVENTS, events);
        GET(KVM_GET_MP_STATE, mp_state);
        GET(KVM_GET_DEBUGREGS, debugregs);
        if (c->have_xcrs) {
                GET(KVM_GET_XCRS, xcrs);
                s->have_xcrs = true;
        }
        if (c->lapic) {
                GET(KVM_GET_LAPIC, lapic);
                s->have_lapic = true;
        }
#undef GET
        s->xsave = calloc(1, c->xsave_size);
        if (!s->xsave)
                return -ENOMEM;
        s->xsave_size = c->xsave_size;
        r = c->xsave2 ? __kvm_ioctl(v->fd, KVM_GET_XSAVE2, s->xsave) : __kvm_ioctl(v->fd, KVM_GET_XSAVE, s->xsave);
        if (r < 0)
                return s->failed = c->xsave2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", r;
        r = get_msrs(v->fd, c->msr_indices, c->n_msr_indices, &s->msrs, &s->n_msrs);
        if (r < 0)
                return s->failed = "KVM_GET_MSRS", r;
        if (c->nested_size > 0) {
                r = nested_state_get(v->fd, c->nested_size, &s->nested, &s->nested_size);
                if (r < 0)
                        return s->failed = "KVM_GET_NESTED_STATE", r;
        }
        return 0;
}

static int msr_index_list(int kvm_fd, uint32_t **ret, size_t *ret_n) {
        struct kvm_msr_list probe = { .nmsrs = 0 };
        int r = __kvm_ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe);
        if (r < 0 && r != -E2BIG)
                return r;
        if (probe.nmsrs > MSR_LIST_MAX)
                return -E2BIG;
        _cleanup_free_ struct kvm_msr_list *list = calloc(1, sizeof *list + probe.nmsrs * sizeof(uint32_t));
        if (!list)
                return -ENOMEM;
        list->nmsrs = probe.nmsrs;
        r = __kvm_ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list);
        if (r < 0)
                return r;
        uint32_t *out = malloc((list->nmsrs ?: 1) * sizeof *out);
        if (!out)
                return -ENOMEM;
        memcpy(out, list->indices, list->nmsrs * sizeof *out);
        *ret = out;
        *ret_n = list->nmsrs;
        return 0;
}

/* ---- writing ---- */

static int write_snapshot_file(SnapshotManifest *m, int dir_fd, const char *name, const void *data, size_t len) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        char hex[SHA256_HEX_SIZE];
        if (fd < 0)
                return -errno;
        int r = loop_write(fd, data, len);
        if (r < 0)
                return r;
        if (fsync(fd) < 0)
                return -errno;
        sha256_hex(data, len, hex);
        return snapshot_manifest_add_file(m, name, len, hex);
}

static void remove_tree(const char *path) {
        DIR *d = opendir(path);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d)))
                        if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void) rmdir(path);
}

static SnapshotVcpuRun vcpu_run_of(VcpuState s) {
        return s == VCPU_STATE_OFFLINE ? SNAPSHOT_VCPU_OFFLINE
               : s == VCPU_STATE_HALTED ? SNAPSHOT_VCPU_HALTED
                                        : SNAPSHOT_VCPU_RUNNING;
}

static int save_into(Vm *vm, SnapshotManifest *m, int dir_fd, JsonError *e) {
        _cleanup_free_ uint32_t *msr_indices = NULL;
        _cleanup_free_ VcpuSnapshot *snap = NULL;
        _cleanup_json_ json_object *spec = NULL;
        size_t n_msr_indices = 0;
        char name[SNAPSHOT_FILE_NAME_MAX + 1];
        int r;

        r = vm_spec_to_json(vm->spec, &spec);
        if (r < 0)
                return r;
        const char *spec_text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PRETTY);
        r = write_snapshot_file(m, dir_fd, SNAPSHOT_SPEC_FILE, spec_text, strlen(spec_text));
        if (r < 0)
                return json_error_set(e, SNAPSHOT_SPEC_FILE, "cannot write: %s", strerror(-r)), r;

        /* memory: one file per slot of the VMM's table */
        m->memslots = calloc(vm->mem->n_slots ?: 1, sizeof *m->memslots);
        if (!m->memslots)
                return -ENOMEM;
        for (size_t i = 0; i < vm->mem->n_slots; i++) {
                const Memslot *s = &vm->mem->slots[i];
                SnapshotMemslot *ms = &m->memslots[m->n_memslots++];
                memslot_to_info(s, &ms->info);
                snprintf(ms->file, sizeof ms->file, "memslot-%u-%u.bin", (unsigned) s->as_id, s->slot);
                r = write_snapshot_file(m, dir_fd, ms->file, s->host, s->size);
                if (r < 0)
                        return json_error_set(e, ms->file, "cannot write: %s", strerror(-r)), r;
        }

        /* vCPUs: each on its own thread (vm_vcpu_call), while the VM stays paused */
        SaveContext c = { .lapic = vm->spec->irqchip != VM_IRQCHIP_NONE,
                          .have_xcrs = kvm_check_extension(vm->kvm_fd, KVM_CAP_XCRS) > 0,
                          .nested_size = nested_state_max_size(vm->kvm_fd) };
        int xsave2 = kvm_check_extension(vm->vm_fd, KVM_CAP_XSAVE2);
        c.xsave2 = xsave2 > XSAVE_LEGACY_SIZE;
        c.xsave_size = (size_t) (c.xsave2 ? xsave2 : XSAVE_LEGACY_SIZE);
        r = msr_index_list(vm->kvm_fd, &msr_indices, &n_msr_indices);
        if (r < 0)
                return json_error_set(e, "$", "KVM_GET_MSR_INDEX_LIST failed: %s", strerror(-r)), r;
        c.msr_indices = msr_indices;
        c.n_msr_indices = n_msr_indices;
        snap = calloc(vm->n_vcpus, sizeof *snap);
        m->vcpu_run = calloc(vm->n_vcpus, sizeof *m->vcpu_run);
        if (!snap || !m->vcpu_run)
                return -ENOMEM;
        c.snap = snap;
        m->vcpus = vm->n_vcpus;
        m->xsave_size = (uint32_t) c.xsave_size;
        m->nested_state_size = (uint32_t) c.nested_size;
        pthread_mutex_lock(&vm->lock);
        for (unsigned i = 0; i < vm->n_vcpus; i++)
                m->vcpu_run[i] = vcpu_run_of(vm->vcpus[i].state);
        pthread_mutex_unlock(&vm->lock);

        for (unsigned i = 0; i < vm->n_vcpus && r >= 0; i++) {
                r = vm_vcpu_call(vm, i, vcpu_save, &c, SNAPSHOT_VCPU_TIMEOUT_MS);
                if (r < 0)
                        json_error_set(e, "$.vcpus", "saving vCPU %u failed: %s: %s", i, snap[i].failed ?: "vm_vcpu_call",
                                       strerror(-r));
        }
        for (unsigned i = 0; i < vm->n_vcpus && r >= 0; i++) {
                const VcpuSnapshot *s = &snap[i];
                struct {
                        const char *what;
                        const void *data;
                        size_t len;
                        bool present;
                } parts[] = {
                        { "regs", &s->regs, sizeof s->regs, true },
                        { "sregs", &s->sregs, sizeof s->sregs, true },
                        { "fpu", &s->fpu, sizeof s->fpu, true },
                        { "xsave", s->xsave, s->xsave_size, true },
                        { "xcrs", &s->xcrs, sizeof s->xcrs, s->have_xcrs },
                        { "msrs", s->msrs, s->n_msrs * sizeof *s->msrs, true },
                        { "lapic", &s->lapic, sizeof s->lapic, s->have_lapic },
                        { "events", &s->events, sizeof s->events, true },
                        { "mp_state", &s->mp_state, sizeof s->mp_state, true },
                        { "debugregs", &s->debugregs, sizeof s->debugregs, true },
                        { "nested", s->nested, s->nested_size, s->nested != NULL },
                };
                for (size_t k = 0; k < ELEMENTSOF(parts) && r >= 0; k++) {
                        if (!parts[k].present)
                                continue;
                        snprintf(name, sizeof name, "vcpu%u-%s.bin", i, parts[k].what);
                        r = write_snapshot_file(m, dir_fd, name, parts[k].data ?: "", parts[k].len);
                        if (r < 0)
                                json_error_set(e, name, "cannot write: %s", strerror(-r));
                }
        }
        for (unsigned i = 0; i < vm->n_vcpus; i++)
                vcpu_snapshot_done(&snap[i]);
        if (r < 0)
                return r;

        /* the VM's devices */
        if (vm->spec->irqchip == VM_IRQCHIP_KERNEL) {
                static const struct {
                        uint32_t chip;
                        const char *file;
                } chips[] = { { KVM_IRQCHIP_PIC_MASTER, "vm-pic-master.bin" },
                              { KVM_IRQCHIP_PIC_SLAVE, "vm-pic-slave.bin" },
                              { KVM_IRQCHIP_IOAPIC, "vm-ioapic.bin" } };
                for (size_t k = 0; k < ELEMENTSOF(chips); k++) {
                        struct kvm_irqchip chip = { .chip_id = chips[k].chip };
                        r = kvm_ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip);
                        if (r < 0)
                                return json_error_set(e, chips[k].file, "KVM_GET_IRQCHIP failed: %s", strerror(-r)), r;
                        r = write_snapshot_file(m, dir_fd, chips[k].file, &chip, sizeof chip);
                        if (r < 0)
                                return json_error_set(e, chips[k].file, "cannot write: %s", strerror(-r)), r;
                }
                struct kvm_pit_state2 pit;
                r = kvm_ioctl(vm->vm_fd, KVM_GET_PIT2, &pit);
                if (r < 0)
                        return json_error_set(e, "vm-pit2.bin", "KVM_GET_PIT2 failed: %s", strerror(-r)), r;
                r = write_snapshot_file(m, dir_fd, "vm-pit2.bin", &pit, sizeof pit);
                if (r < 0)
                        return json_error_set(e, "vm-pit2.bin", "cannot write: %s", strerror(-r)), r;
        }
        if (vm->have_ioapic) {
                IoapicState st;
                ioapic_get_state(&vm->ioapic, &st);
                r = write_snapshot_file(m, dir_fd, "vm-ioapic-user.bin", &st, sizeof st);
                if (r < 0)
                        return json_error_set(e, "vm-ioapic-user.bin", "cannot write: %s", strerror(-r)), r;
        }
        SerialState ss;
        serial_get_state(vm->serial, &ss);
        r = write_snapshot_file(m, dir_fd, "vm-serial.bin", &ss, sizeof ss);
        if (r < 0)
                return json_error_set(e, "vm-serial.bin", "cannot write: %s", strerror(-r)), r;
        struct kvm_clock_data clock = {};
        r = kvm_ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock);
        if (r < 0)
                return json_error_set(e, "vm-clock.bin", "KVM_GET_CLOCK failed: %s", strerror(-r)), r;
        r = write_snapshot_file(m, dir_fd, "vm-clock.bin", &clock, sizeof clock);
        if (r < 0)
                return json_error_set(e, "vm-clock.bin", "cannot write: %s", strerror(-r)), r;
        return 0;
}

int vm_snapshot_save(Vm *vm, const char *dir, JsonError *e) {
        _cleanup_(snapshot_manifest_freep) SnapshotManifest *m = NULL;
        _cleanup_json_ json_object *manifest = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int dir_fd = -1;
        int r;

        pthread_mutex_lock(&vm->lock);
        bool paused = vm->state == VM_STATE_PAUSED;
        pthread_mutex_unlock(&vm->lock);
        if (!paused) {
                json_error_set(e, "$", "the VM is %s; pause it first", vm_state_to_string(vm->state));
                return -EBUSY;
        }
        /* Device state (queues, MSI-X, in-flight requests) is not part of the format: a snapshot
         * of a VM whose guest bound a virtio device would restore into a driver that hangs. */
        if (vm_devices_in_use(vm)) {
                json_error_set(e, "$", "a guest driver has bound a virtio device (see \"devices\" in status); "
                                       "snapshots of VMs with active virtio devices are not supported");
                return -EOPNOTSUPP;
        }
        r = snapshot_check_target(dir, e);
        if (r < 0)
                return r;
        /* next to the target, so the rename stays on one file system */
        /* mkdtemp's template: ".tmp-" and six 'X' */
        if (asprintf(&tmp, "%s.tmp-%6s", dir, "") < 0)
                return -ENOMEM;
        memset(tmp + strlen(tmp) - 6, 'X', 6);
        if (!mkdtemp(tmp)) { /* mode 0700 */
                r = -errno;
                json_error_set(e, "$.dir", "cannot create a directory next to \"%.200s\": %s", dir, strerror(-r));
                return r;
        }
        dir_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        m = calloc(1, sizeof *m);
        if (dir_fd < 0 || !m) {
                r = dir_fd < 0 ? -errno : -ENOMEM;
                goto fail;
        }
        m->version = SNAPSHOT_FORMAT_VERSION;
        strscpy(m->kvmfleet_version, sizeof m->kvmfleet_version, KVMFLEET_VERSION);
        m->created_at = (uint64_t) time(NULL);
        snapshot_host_cpu_vendor(m->cpu_vendor);
        m->irqchip = vm->spec->irqchip;
        r = save_into(vm, m, dir_fd, e);
        if (r < 0)
                goto fail;
        r = snapshot_manifest_to_json(m, &manifest);
        if (r < 0)
                goto fail;
        const char *text = json_object_to_json_string_ext(manifest, JSON_C_TO_STRING_PRETTY);
        {
                _cleanup_close_ int fd = openat(dir_fd, SNAPSHOT_MANIFEST_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0 || loop_write(fd, text, strlen(text)) < 0 || loop_write(fd, "\n", 1) < 0 || fsync(fd) < 0) {
                        r = -errno;
                        json_error_set(e, SNAPSHOT_MANIFEST_FILE, "cannot write: %s", strerror(-r));
                        goto fail;
                }
        }
        if (fsync(dir_fd) < 0 || rename(tmp, dir) < 0) {
                r = -errno;
                json_error_set(e, "$.dir", "cannot move the snapshot into \"%.200s\": %s", dir, strerror(-r));
                goto fail;
        }
        return 0;
fail:
        if (!e->message[0])
                json_error_set(e, "$.dir", "writing the snapshot failed: %s", strerror(-r));
        remove_tree(tmp);
        return r;
}

/* ---- restoring ---- */

int snapshot_spec_compatible(const VmSpec *snap, const VmSpec *given, JsonError *e) {
        if (given->vcpus != snap->vcpus)
                return json_error_set(e, "$.vcpus", "%u differs from the snapshot's %u", given->vcpus, snap->vcpus);
        if (given->memory != snap->memory)
                return json_error_set(e, "$.memory", "%" PRIu64 " differs from the snapshot's %" PRIu64, given->memory,
                                      snap->memory);
        if (given->irqchip != snap->irqchip)
                return json_error_set(e, "$.irqchip", "\"%s\" differs from the snapshot's \"%s\"",
                                      vm_irqchip_to_string(given->irqchip), vm_irqchip_to_string(snap->irqchip));
        if (given->memory_backing != snap->memory_backing)
                return json_error_set(e, "$.memory_backing", "differs from the snapshot's \"%s\"",
                                      vm_memory_backing_to_string(snap->memory_backing));
        if (given->nested != snap->nested)
                return json_error_set(e, "$.cpu.nested", "differs from the snapshot's");
        if (given->pit_reinject != snap->pit_reinject)
                return json_error_set(e, "$.pit.reinject", "differs from the snapshot's");
        return 0;
}

static int read_file_exact(int dir_fd, const char *name, void *buf, size_t len, JsonError *e) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (fd < 0)
                return json_error_set(e, name, "cannot open: %s", strerror(errno)), -ENOENT;
        if (fstat(fd, &st) < 0 || (uint64_t) st.st_size != len)
                return json_error_set(e, name, "has %lld bytes, expected %zu", (long long) st.st_size, len), -EMSGSIZE;
        ssize_t n = loop_read(fd, buf, len);
        if (n < 0 || (size_t) n != len)
                return json_error_set(e, name, "cannot read %zu bytes", len), -EIO;
        return 0;
}

static const SnapshotFile *vcpu_file(const SnapshotManifest *m, unsigned i, const char *what, char *name, size_t n) {
        snprintf(name, n, "vcpu%u-%s.bin", i, what);
        return snapshot_manifest_find_file(m, name);
}

static int restore_memslots(Vm *vm, const SnapshotManifest *m, int dir_fd, JsonError *e) {
        MemslotInfo done;
        MemslotError me;
        int r;

        /* RAM slots of the fresh layout that the snapshot no longer has (deleted at run time) */
        for (size_t i = 0; i < vm->mem->n_slots;) {
                const Memslot *s = &vm->mem->slots[i];
                bool keep = false;
                for (size_t k = 0; k < m->n_memslots; k++)
                        keep |= m->memslots[k].info.slot == s->slot && m->memslots[k].info.as_id == s->as_id;
                if (keep) {
                        i++;
                        continue;
                }
                r = vm_memslot_delete(vm, s->slot, s->as_id, true, &done, &me);
                if (r < 0)
                        return json_error_set(e, "$.memslots", "removing RAM slot %u failed: %s", s->slot, me.message), r;
        }
        for (size_t k = 0; k < m->n_memslots; k++) {
                const SnapshotMemslot *ms = &m->memslots[k];
                char path[64];
                snprintf(path, sizeof path, "manifest.json: $.memslots[%zu]", k);
                Memslot *s = guest_memory_find_slot(vm->mem, ms->info.slot, ms->info.as_id);
                if (!s) {
                        if (ms->info.role == MEMSLOT_ROLE_RAM)
                                return json_error_set(e, path, "RAM slot %u is not in this spec's memory layout", ms->info.slot);
                        r = vm_memslot_create(vm, &ms->info, false, &done, &me);
                        if (r < 0)
                                return json_error_set(e, path, "%s", me.message), r;
                } else {
                        if (s->size != ms->info.size)
                                return json_error_set(e, path, "RAM slot %u has %" PRIu64 " bytes here, %" PRIu64 " in the snapshot",
                                                      ms->info.slot, s->size, ms->info.size);
                        if (s->gpa != ms->info.gpa) {
                                r = vm_memslot_move(vm, ms->info.slot, ms->info.as_id, ms->info.gpa, true, &done, &me);
                                if (r < 0)
                                        return json_error_set(e, path, "%s", me.message), r;
                        }
                        if (ms->info.dirty_log) {
                                r = vm_memslot_set_flags(vm, ms->info.slot, ms->info.as_id, true, -1, &done, &me);
                                if (r < 0)
                                        return json_error_set(e, path, "%s", me.message), r;
                        }
                }
                s = guest_memory_find_slot(vm->mem, ms->info.slot, ms->info.as_id);
                if (!s || !s->host)
                        return json_error_set(e, path, "slot %u has no mapping after it was set up", ms->info.slot), -EIO;
                r = read_file_exact(dir_fd, ms->file, s->host, ms->info.size, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* KVM_SET_MSRS stops at the first MSR it refuses. One whose saved value is what KVM reports anyway
 * (a paravirtual MSR that the guest never enabled and this VM type refuses to write) is skipped;
 * any other refusal names the MSR. */
static int set_msrs(int fd, const struct kvm_msr_entry *entries, size_t n, uint32_t *ret_failed) {
        _cleanup_free_ struct kvm_msrs *req = calloc(1, sizeof *req + n * sizeof *entries);
        size_t done = 0;
        if (!req)
                return -ENOMEM;
        while (done < n) {
                req->nmsrs = (uint32_t) (n - done);
                memcpy(req->entries, entries + done, (n - done) * sizeof *entries);
                int r = __kvm_ioctl(fd, KVM_SET_MSRS, req);
                if (r < 0)
                        return r;
                done += (size_t) r;
                if (done == n)
                        break;
                struct {
                        struct kvm_msrs hdr;
                        struct kvm_msr_entry entry;
                } cur = { .hdr.nmsrs = 1, .entry.index = entries[done].index };
                if (__kvm_ioctl(fd, KVM_GET_MSRS, &cur) != 1 || cur.entry.data != entries[done].data) {
                        *ret_failed = entries[done].index;
                        return -EINVAL;
                }
                done++;
        }
        return 0;
}

static int restore_vcpu(Vm *vm, Vcpu *v, const SnapshotManifest *m, int dir_fd, size_t host_xsave_size, JsonError *e) {
        _cleanup_free_ struct kvm_msr_entry *msrs = NULL;
        _cleanup_free_ struct kvm_nested_state *nested = NULL;
        _cleanup_free_ void *xsave = NULL;
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct kvm_fpu fpu;
        struct kvm_xcrs xcrs;
        struct kvm_lapic_state lapic;
        struct kvm_vcpu_events events;
        struct kvm_mp_state mp_state;
        struct kvm_debugregs debugregs;
        char name[SNAPSHOT_FILE_NAME_MAX + 1];
        const SnapshotFile *f;
        unsigned i = v->index;
        int r;

#define READ(what, var)                                                                         \
        do {                                                                                    \
                if (!vcpu_file(m, i, what, name, sizeof name))                                  \
                        return json_error_set(e, name, "missing from the snapshot"), -ENOENT;   \
                r = read_file_exact(dir_fd, name, &var, sizeof var, e);                         \
                if (r < 0)                                                                      \
                        return r;                                                               \
        } while (0)
        READ("regs", regs);
        READ("sregs", sregs);
        READ("fpu", fpu);
        READ("events", events);
        READ("mp_state", mp_state);
        READ("debugregs", debugregs);
        bool have_xcrs = vcpu_file(m, i, "xcrs", name, sizeof name) != NULL;
        if (have_xcrs)
                READ("xcrs", xcrs);
        bool have_lapic = vcpu_file(m, i, "lapic", name, sizeof name) != NULL;
        if (have_lapic != (vm->spec->irqchip != VM_IRQCHIP_NONE))
                return json_error_set(e, name, "the LAPIC state does not match irqchip \"%s\"",
                                      vm_irqchip_to_string(vm->spec->irqchip)), -EINVAL;
        if (have_lapic)
                READ("lapic", lapic);
#undef READ
        f = vcpu_file(m, i, "xsave", name, sizeof name);
        if (!f)
                return json_error_set(e, name, "missing from the snapshot"), -ENOENT;
        if (f->size > host_xsave_size)
                return json_error_set(e, name, "%" PRIu64 " bytes of XSAVE state, this host's KVM takes %zu", f->size,
                                      host_xsave_size), -E2BIG;
        xsave = calloc(1, host_xsave_size);
        if (!xsave)
                return -ENOMEM;
        r = read_file_exact(dir_fd, name, xsave, f->size, e);
        if (r < 0)
                return r;
        f = vcpu_file(m, i, "msrs", name, sizeof name);
        if (!f || f->size % sizeof(struct kvm_msr_entry) || f->size / sizeof(struct kvm_msr_entry) > MSR_LIST_MAX)
                return json_error_set(e, name, "missing or not a whole number of MSR entries"), -EINVAL;
        size_t n_msrs = f->size / sizeof(struct kvm_msr_entry);
        msrs = calloc(n_msrs ?: 1, sizeof *msrs);
        if (!msrs)
                return -ENOMEM;
        r = read_file_exact(dir_fd, name, msrs, f->size, e);
        if (r < 0)
                return r;
        f = vcpu_file(m, i, "nested", name, sizeof name);
        if (f) {
                if (f->size < NESTED_STATE_HEADER_SIZE || f->size > m->nested_state_size)
                        return json_error_set(e, name, "%" PRIu64 " bytes of nested state, the manifest allows %u", f->size,
                                              m->nested_state_size), -EINVAL;
                nested = calloc(1, f->size);
                if (!nested)
                        return -ENOMEM;
                r = read_file_exact(dir_fd, name, nested, f->size, e);
                if (r < 0)
                        return r;
        }

        /* The order of the KVM selftests' vcpu_load_state(): special registers first (EFER, CR4 and
         * the APIC base that the rest depends on), the LAPIC before the MSRs (TSC deadline needs
         * the LAPIC in that mode), events and mp_state, general registers, nested state last. */
#define SET(cmd, var, file)                                                                                   \
        do {                                                                                                  \
                r = kvm_ioctl(v->fd, cmd, &var);                                                              \
                if (r < 0)                                                                                    \
                        return json_error_set(e, file, "vCPU %u: " #cmd " failed: %s", i, strerror(-r)), r;   \
        } while (0)
        SET(KVM_SET_SREGS, sregs, "sregs");
        if (have_lapic)
                SET(KVM_SET_LAPIC, lapic, "lapic");
        uint32_t failed_msr = 0;
        r = set_msrs(v->fd, msrs, n_msrs, &failed_msr);
        if (r == -EINVAL && failed_msr)
                return json_error_set(e, "msrs", "vCPU %u: KVM_SET_MSRS refused MSR 0x%x", i, failed_msr), r;
        if (r < 0)
                return json_error_set(e, "msrs", "vCPU %u: KVM_SET_MSRS failed: %s", i, strerror(-r)), r;
        if (have_xcrs)
                SET(KVM_SET_XCRS, xcrs, "xcrs");
        SET(KVM_SET_FPU, fpu, "fpu");
        r = __kvm_ioctl(v->fd, KVM_SET_XSAVE, xsave);
        if (r < 0)
                return json_error_set(e, "xsave", "vCPU %u: KVM_SET_XSAVE failed: %s", i, strerror(-r)), r;
        SET(KVM_SET_VCPU_EVENTS, events, "events");
        SET(KVM_SET_MP_STATE, mp_state, "mp_state");
        SET(KVM_SET_DEBUGREGS, debugregs, "debugregs");
        SET(KVM_SET_REGS, regs, "regs");
#undef SET
        if (nested) {
                r = nested_state_set(v->fd, nested, nested->size == f->size ? f->size : 0);
                if (r < 0)
                        return json_error_set(e, "nested", "vCPU %u: KVM_SET_NESTED_STATE failed: %s", i, strerror(-r)), r;
        }
        switch (m->vcpu_run[i]) {
        case SNAPSHOT_VCPU_OFFLINE:
                v->state = VCPU_STATE_OFFLINE;
                break;
        case SNAPSHOT_VCPU_HALTED:
                v->state = VCPU_STATE_HALTED;
                break;
        case SNAPSHOT_VCPU_RUNNING:
                v->state = VCPU_STATE_CREATED;
                break;
        }
        return 0;
}

int vm_snapshot_restore(Vm *vm, const SnapshotManifest *m, const char *dir, JsonError *e) {
        _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r;

        if (dir_fd < 0)
                return json_error_set(e, "$.dir", "cannot open \"%.200s\": %s", dir, strerror(errno)), -errno;
        if (m->vcpus != vm->n_vcpus || m->irqchip != vm->spec->irqchip)
                return json_error_set(e, "manifest.json: $.vcpus", "the snapshot's machine differs from the spec's");
        r = restore_memslots(vm, m, dir_fd, e);
        if (r < 0)
                return r;

        if (vm->spec->irqchip == VM_IRQCHIP_KERNEL) {
                static const char *const files[] = { "vm-pic-master.bin", "vm-pic-slave.bin", "vm-ioapic.bin" };
                for (size_t k = 0; k < ELEMENTSOF(files); k++) {
                        struct kvm_irqchip chip;
                        r = read_file_exact(dir_fd, files[k], &chip, sizeof chip, e);
                        if (r < 0)
                                return r;
                        r = kvm_ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip);
                        if (r < 0)
                                return json_error_set(e, files[k], "KVM_SET_IRQCHIP failed: %s", strerror(-r)), r;
                }
                struct kvm_pit_state2 pit;
                r = read_file_exact(dir_fd, "vm-pit2.bin", &pit, sizeof pit, e);
                if (r < 0)
                        return r;
                r = kvm_ioctl(vm->vm_fd, KVM_SET_PIT2, &pit);
                if (r < 0)
                        return json_error_set(e, "vm-pit2.bin", "KVM_SET_PIT2 failed: %s", strerror(-r)), r;
        }
        if (vm->have_ioapic) {
                IoapicState st;
                r = read_file_exact(dir_fd, "vm-ioapic-user.bin", &st, sizeof st, e);
                if (r < 0)
                        return r;
                r = ioapic_set_state(&vm->ioapic, &st);
                if (r < 0)
                        return json_error_set(e, "vm-ioapic-user.bin", "KVM_SET_GSI_ROUTING failed: %s", strerror(-r)), r;
        }
        SerialState ss;
        r = read_file_exact(dir_fd, "vm-serial.bin", &ss, sizeof ss, e);
        if (r < 0)
                return r;
        serial_set_state(vm->serial, &ss);

        int xsave2 = kvm_check_extension(vm->vm_fd, KVM_CAP_XSAVE2);
        size_t host_xsave_size = (size_t) (xsave2 > XSAVE_LEGACY_SIZE ? xsave2 : XSAVE_LEGACY_SIZE);
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                r = restore_vcpu(vm, &vm->vcpus[i], m, dir_fd, host_xsave_size, e);
                if (r < 0)
                        return r;
        }

        /* last, so that kvmclock goes on from the saved value when the vCPUs next run */
        struct kvm_clock_data clock;
        r = read_file_exact(dir_fd, "vm-clock.bin", &clock, sizeof clock, e);
        if (r < 0)
                return r;
        clock.flags = 0; /* not KVM_CLOCK_REALTIME: the guest does not see the time it spent saved */
        r = kvm_ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock);
        if (r < 0)
                return json_error_set(e, "vm-clock.bin", "KVM_SET_CLOCK failed: %s", strerror(-r)), r;
        return 0;
}
