/* SPDX-License-Identifier: MIT */
/* One VM: the KVM VM fd, guest memory, irqchip, devices and one thread per vCPU running the exit
 * loop. The main thread owns the Vm; vCPU threads only touch it under vm->lock or through the
 * thread-safe devices. */
#pragma once

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "dev/ioapic.h"
#include "dev/pci.h"
#include "dev/virtio-pci.h"
#include "dev/serial.h"
#include "json-util.h"
#include "irq.h"
#include "memory.h"
#include "spec.h"

#define DEBUG_EXIT_PORT 0x501
#define I8042_DATA_PORT 0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_CMD_RESET 0xfe
#define CMOS_INDEX_PORT 0x70
#define CMOS_DATA_PORT 0x71
#define VM_MAX_DEVICES (VM_SPEC_DISKS_MAX + VM_SPEC_NICS_MAX + 1)

typedef enum VmState {
        VM_STATE_CREATED,
        VM_STATE_RUNNING,
        VM_STATE_PAUSED,
        VM_STATE_STOPPED,
} VmState;

typedef enum VcpuState {
        VCPU_STATE_CREATED,
        VCPU_STATE_RUNNING, /* in or around KVM_RUN */
        VCPU_STATE_PARKED,  /* paused by the VMM */
        VCPU_STATE_HALTED,  /* HLT exit without an in-kernel irqchip: nothing can wake it */
        VCPU_STATE_OFFLINE, /* an AP that waits for a SIPI nobody can send (irqchip none) */
        VCPU_STATE_STOPPED,
} VcpuState;

/* Why the VM ended. reason: "stopped", "shutdown", "reset", "debug-exit", "internal-error",
 * "fail-entry", "system-event", "unhandled-exit", "vcpu-error". */
typedef struct VmExit {
        char reason[32];
        int vcpu;               /* the vCPU that ended it, -1 for the VMM */
        uint64_t code;          /* debug-exit: the value written */
        uint32_t kvm_exit_reason;
        uint32_t suberror;      /* internal-error */
        uint64_t hardware_reason; /* fail-entry */
        char detail[160];
} VmExit;

typedef struct Vm Vm;

typedef struct Vcpu {
        Vm *vm;
        unsigned index;
        int fd;
        int stats_fd;
        struct kvm_run *run;
        size_t run_size;
        pthread_t thread;
        bool thread_started;
        VcpuState state;
        uint64_t exits, io_exits, mmio_exits;
        /* vm_vcpu_call(): work the vCPU thread runs between two KVM_RUNs, under vm->lock. */
        struct VcpuCall *call;
} Vcpu;

struct Vm {
        VmSpec *spec;
        int kvm_fd;
        int vm_fd;
        int stats_fd;
        int end_event_fd; /* eventfd, readable once the VM has ended */
        GuestMemory *mem;
        Serial *serial;
        Ioapic ioapic;
        bool have_ioapic;
        IrqRouting *irq;  /* the GSI routing table's owner; NULL with irqchip none */
        PciBus *pci;      /* bus 0: host bridge, then the virtio functions */
        /* virtio functions in slot order: disks (spec order), NICs, virtio-rng; none with irqchip none */
        VirtioPci *devices[VM_MAX_DEVICES];
        size_t n_devices;
        X86Boot boot;
        struct kvm_cpuid2 *cpuid;
        Vcpu *vcpus;
        unsigned n_vcpus;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        VmState state;
        bool pause_requested;
        bool stop_requested;
        VmExit exit;
        uint64_t created_usec, started_usec, ended_usec;
        uint8_t cmos_index;
        uint64_t unhandled_io, unhandled_mmio;
        /* The last MMIO access nothing decoded (e.g. to a deleted memslot), under lock. */
        struct {
                bool valid;
                uint64_t gpa;
                uint32_t len;
                bool is_write;
                unsigned vcpu;
        } last_unhandled_mmio;
};

/* Everything up to the first KVM_RUN: VM, memory, irqchip, boot image, vCPUs. Takes spec. On failure
 * e says what (field-specific errors carry the spec path; KVM errors name the ioctl). */
int vm_create(VmSpec *spec, Vm **ret, JsonError *e);
/* vm_create() without the boot image (and without checking the boot files): memory stays zero, the
 * vCPUs are created but their state is the caller's to set (vm/snapshot.h restores it). */
int vm_create_for_restore(VmSpec *spec, Vm **ret, JsonError *e);
Vm *vm_free(Vm *vm);
DEFINE_TRIVIAL_CLEANUP_FUNC(Vm *, vm_free);

/* Installs the vCPU kick signal handler; call once before vm_start(), in the main thread. */
int vm_signals_init(void);
/* Starts the vCPU threads; with pause_requested set beforehand the VM starts paused. */
int vm_start(Vm *vm);
/* Parks every vCPU; returns when all are parked (or -ETIMEDOUT). -EBUSY when not running. */
int vm_pause(Vm *vm, int timeout_ms);
int vm_resume(Vm *vm);
/* Ends the VM (first reason wins) and kicks every vCPU out of KVM_RUN. Thread-safe. */
void vm_end(Vm *vm, const VmExit *exit);
void vm_request_stop(Vm *vm);
/* Joins the vCPU threads after the VM ended. */
void vm_join(Vm *vm);

/* Runs fn(vcpu, userdata) on vCPU index's own thread between two KVM_RUNs and returns its result:
 * vCPU ioctls block while the vCPU is in KVM_RUN, so the thread is kicked out of it, runs fn, and
 * goes back in; the other vCPUs keep running. Parked or halted vCPUs run it where they wait. When
 * the thread is not running (not started yet, or ended), fn runs on the caller's thread. -ENOENT for
 * a vCPU index out of range, -ETIMEDOUT when the vCPU did not get to it in timeout_ms. fn must not
 * take vm->lock. */
typedef int (*VcpuCallFn)(Vcpu *v, void *userdata);
int vm_vcpu_call(Vm *vm, unsigned index, VcpuCallFn fn, void *userdata, int timeout_ms);

int vm_status_json(Vm *vm, json_object **ret);
/* Whether a guest driver has bound any virtio device (its device status is non-zero). */
bool vm_devices_in_use(Vm *vm);
/* {"vm": stats, "vcpus": [{"index", "stats"}]}; schema: see kvm_stats_read_json(). */
int vm_stats_json(Vm *vm, bool schema, json_object **ret);
const char *vm_state_to_string(VmState s);
const char *vcpu_state_to_string(VcpuState s);
/* Process exit status for a VM that ended this way (docs/vmm-protocol.md). */
int vm_exit_status(const VmExit *exit);
