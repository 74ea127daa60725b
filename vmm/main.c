/* SPDX-License-Identifier: MIT */
/* kvmfleet-vmm: one process per VM. Reads the VM spec, builds the VM, runs one thread per vCPU, and
 * serves the control socket from the main thread until the VM ends. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "fd-util.h"
#include "kvm.h"
#include "json-util.h"
#include "log.h"
#include "memory.h"
#include "memslot-pool.h"
#include "nested.h"
#include "placement.h"
#include "snapshot.h"
#include "spec.h"
#include "str-util.h"
#include "vm.h"

#define SPEC_SIZE_MAX (1024 * 1024)
#define MAX_CONNECTIONS 64

typedef struct Args {
        const char *spec_path;
        int spec_fd;
        const char *control_path;
        const char *console_path;
        const char *status_path;
        const char *restore_dir;
        const char *housekeeping_cpus, *guest_cpus;
        bool start_paused;
        bool check_only;
} Args;

static void help(void) {
        printf("Usage: kvmfleet-vmm (--spec FILE | --spec-fd N | --restore DIR) --control PATH [OPTIONS]\n"
               "Runs one KVM virtual machine described by a VM spec (JSON, API contract v1).\n\n"
               "  --spec FILE            read the spec from FILE\n"
               "  --spec-fd N            read the spec from file descriptor N\n"
               "  --control PATH         control socket (unix, SOCK_SEQPACKET, JSON; docs/vmm-protocol.md)\n"
               "  --console-socket PATH  unix stream socket that attaches to the serial console\n"
               "  --status-file PATH     write the final status JSON there when the VM ends\n"
               "  --restore DIR          restore the snapshot in DIR (docs/snapshot.md) instead of booting; a spec\n"
               "                         given as well may change only name, uuid, console and lifecycle actions\n"
               "  --paused               start with the vCPUs paused\n"
               "  --housekeeping-cpus LIST  run the main thread (control socket, signals) on these CPUs\n"
               "  --guest-cpus LIST      run the vCPU threads (unless the spec has a cpuset), device I/O threads\n"
               "                         and the memslot pool on these CPUs; both or neither\n"
               "                         (docs/configuration.md, \"CPU placement\")\n"
               "  --check-spec           validate the spec and its files, print the canonical spec, exit\n"
               "  --log-level LEVEL      debug, info, notice, warning, err\n"
               "  --version\n");
}

static int parse_args(int argc, char **argv, Args *a) {
        enum { ARG_SPEC = 0x100, ARG_SPEC_FD, ARG_CONTROL, ARG_CONSOLE, ARG_STATUS, ARG_CHECK, ARG_LOG, ARG_VERSION, ARG_RESTORE, ARG_PAUSED,
               ARG_HOUSEKEEPING, ARG_GUEST };
        static const struct option options[] = {
                { "spec", required_argument, NULL, ARG_SPEC },
                { "spec-fd", required_argument, NULL, ARG_SPEC_FD },
                { "control", required_argument, NULL, ARG_CONTROL },
                { "console-socket", required_argument, NULL, ARG_CONSOLE },
                { "status-file", required_argument, NULL, ARG_STATUS },
                { "check-spec", no_argument, NULL, ARG_CHECK },
                { "restore", required_argument, NULL, ARG_RESTORE },
                { "paused", no_argument, NULL, ARG_PAUSED },
                { "housekeeping-cpus", required_argument, NULL, ARG_HOUSEKEEPING },
                { "guest-cpus", required_argument, NULL, ARG_GUEST },
                { "log-level", required_argument, NULL, ARG_LOG },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        unsigned fd;

        *a = (Args){ .spec_fd = -1 };
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_SPEC:
                        a->spec_path = optarg;
                        break;
                case ARG_SPEC_FD:
                        if (safe_atou(optarg, &fd) < 0 || fd > 65535)
                                return log_error_errno(EINVAL, "Invalid --spec-fd: %s", optarg);
                        a->spec_fd = (int) fd;
                        break;
                case ARG_CONTROL:
                        a->control_path = optarg;
                        break;
                case ARG_CONSOLE:
                        a->console_path = optarg;
                        break;
                case ARG_STATUS:
                        a->status_path = optarg;
                        break;
                case ARG_CHECK:
                        a->check_only = true;
                        break;
                case ARG_RESTORE:
                        a->restore_dir = optarg;
                        break;
                case ARG_PAUSED:
                        a->start_paused = true;
                        break;
                case ARG_HOUSEKEEPING:
                        a->housekeeping_cpus = optarg;
                        break;
                case ARG_GUEST:
                        a->guest_cpus = optarg;
                        break;
                case ARG_LOG: {
                        int l = log_level_from_string(optarg);
                        if (l < 0)
                                return log_error_errno(EINVAL, "Invalid --log-level: %s", optarg);
                        log_set_max_level(l);
                        break;
                }
                case ARG_VERSION:
                        printf("kvmfleet-vmm %s\n", KVMFLEET_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument: %s", argv[optind]);
        if (a->spec_path && a->spec_fd >= 0)
                return log_error_errno(EINVAL, "--spec and --spec-fd exclude each other.");
        if (!a->restore_dir && !a->spec_path && a->spec_fd < 0)
                return log_error_errno(EINVAL, "One of --spec, --spec-fd or --restore is required.");
        if (a->restore_dir && a->check_only)
                return log_error_errno(EINVAL, "--check-spec does not apply to --restore.");
        if (!a->housekeeping_cpus != !a->guest_cpus)
                return log_error_errno(EINVAL, "--housekeeping-cpus and --guest-cpus go together.");
        if (!a->control_path && !a->check_only)
                return log_error_errno(EINVAL, "--control is required.");
        return 1;
}

static int read_spec(const Args *a, VmSpec **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        JsonError e = {};
        int r;

        if (a->spec_path)
                r = read_full_file(a->spec_path, SPEC_SIZE_MAX, &text, &len);
        else {
                r = read_full_fd(a->spec_fd, SPEC_SIZE_MAX, &text, &len);
                safe_close(a->spec_fd);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read the spec %s: %m", a->spec_path ? a->spec_path : "fd");
        r = vm_spec_from_string(text, len, ret, &e);
        if (r == -EINVAL)
                return log_error_errno(r, "Invalid spec: %s: %s", e.path, e.message);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the spec: %m");
        return 0;
}

/* Verifies the snapshot before any KVM object exists (docs/snapshot.md, "Compatibility"), and picks
 * the spec: the snapshot's, or the one given if it describes the same machine. Refusals say which
 * file or field; -EINVAL for a snapshot this host must not restore. */
static int restore_prepare(const Args *a, SnapshotManifest **ret_manifest, VmSpec **ret_spec) {
        _cleanup_(snapshot_manifest_freep) SnapshotManifest *m = NULL;
        _cleanup_vm_spec_ VmSpec *snap_spec = NULL;
        _cleanup_close_ int kvm_fd = -1;
        char vendor[13];
        JsonError e = {};
        int r;

        r = snapshot_verify_dir(a->restore_dir, &m, &snap_spec, &e);
        if (r < 0) {
                log_error_errno(r, "Refusing snapshot %s: %s: %s", a->restore_dir, e.path, e.message);
                return -EINVAL;
        }
        snapshot_host_cpu_vendor(vendor);
        r = kvm_open(&kvm_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to open /dev/kvm: %m");
        r = snapshot_manifest_check_host(m, vendor, (uint32_t) nested_state_max_size(kvm_fd), &e);
        if (r < 0) {
                log_error_errno(r, "Refusing snapshot %s: manifest.json: %s: %s", a->restore_dir, e.path, e.message);
                return -EINVAL;
        }
        if (a->spec_path || a->spec_fd >= 0) {
                VmSpec *given = NULL;
                r = read_spec(a, &given);
                if (r < 0)
                        return -EIO;
                r = snapshot_spec_compatible(snap_spec, given, &e);
                if (r < 0) {
                        vm_spec_free(given);
                        log_error_errno(r, "Refusing snapshot %s: the spec's %s: %s", a->restore_dir, e.path, e.message);
                        return -EINVAL;
                }
                *ret_spec = given;
        } else
                *ret_spec = TAKE_PTR(snap_spec);
        *ret_manifest = TAKE_PTR(m);
        return 0;
}

static int console_listen(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, 8) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

typedef enum ConnKind { CONN_CONTROL_LISTEN = 1, CONN_CONTROL, CONN_CONSOLE_LISTEN, CONN_CONSOLE, CONN_SIGNAL, CONN_END } ConnKind;

/* epoll data: kind in the upper 32 bits, fd in the lower. */
static uint64_t ev_data(ConnKind kind, int fd) {
        return ((uint64_t) kind << 32) | (uint32_t) fd;
}

static int epoll_add(int ep, ConnKind kind, int fd) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = ev_data(kind, fd) };
        return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void control_serve(Vm *vm, int ep, int fd, char *buf, unsigned *n_conns) {
        ssize_t n = recv(fd, buf, CONTROL_MESSAGE_MAX + 1, MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                (*n_conns)--;
                return;
        }
        _cleanup_free_ char *reply = NULL;
        ControlAction action = CONTROL_ACTION_NONE;
        memslot_pool_hold_wakeups(); /* the pool's work waits for the reply (memslot-pool.h) */
        int r = control_handle(vm, buf, (size_t) n, &reply, &action);
        if (r < 0) {
                memslot_pool_wake(vm->mem ? vm->mem->pool : NULL);
                log_error_errno(r, "Failed to handle a control request: %m");
                return;
        }
        if (send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                int e = errno;
                log_warning_errno(e, "Failed to send a control reply of %zu bytes: %m", strlen(reply));
                /* Said in a short reply rather than left for the client to wait out its timeout. */
                _cleanup_free_ char *err = NULL;
                if (e == EMSGSIZE && control_reply_too_large(buf, (size_t) n, strlen(reply), &err) >= 0)
                        (void) send(fd, err, strlen(err), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        memslot_pool_wake(vm->mem ? vm->mem->pool : NULL);
        if (action == CONTROL_ACTION_STOP) {
                log_info("Stop requested over the control socket.");
                vm_request_stop(vm);
        }
}

static int run(int argc, char **argv) {
        _cleanup_(vm_freep) Vm *vm = NULL;
        _cleanup_close_ int log_fd = -1, control_fd = -1, console_fd = -1, sig_fd = -1, ep = -1;
        _cleanup_free_ char *buf = NULL;
        _cleanup_(snapshot_manifest_freep) SnapshotManifest *manifest = NULL;
        VmSpec *spec = NULL;
        JsonError e = {};
        Args a;
        unsigned n_conns = 0;
        sigset_t mask;
        int r;

        log_set_ident("kvmfleet-vmm");
        r = parse_args(argc, argv, &a);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (a.housekeeping_cpus) {
                r = placement_init(a.housekeeping_cpus, a.guest_cpus);
                if (r == -EINVAL)
                        return log_error_errno(r, "Invalid --housekeeping-cpus \"%s\" or --guest-cpus \"%s\": expected CPU lists such as 0-1,4",
                                               a.housekeeping_cpus, a.guest_cpus), 2;
                if (r < 0)
                        return log_error_errno(r, "Cannot run on housekeeping CPUs %s: %m", a.housekeeping_cpus), 1;
                log_debug("Housekeeping on CPUs %s, guest threads on CPUs %s.", placement_housekeeping_cpus(), placement_guest_cpus());
        }
        if (a.restore_dir) {
                r = restore_prepare(&a, &manifest, &spec);
                if (r < 0)
                        return r == -EINVAL ? 3 : 1;
        } else {
                r = read_spec(&a, &spec);
                if (r < 0)
                        return 1;
        }

        if (a.check_only) {
                _cleanup_vm_spec_ VmSpec *s = spec;
                _cleanup_json_ json_object *canon = NULL;
                r = vm_spec_check_files(s, &e);
                if (r < 0)
                        return log_error_errno(r, "Invalid spec: %s: %s", e.path, e.message), 1;
                r = vm_spec_to_json(s, &canon);
                if (r < 0)
                        return log_error_errno(r, "Failed to format the spec: %m"), 1;
                printf("%s\n", json_to_string(canon));
                return 0;
        }

        /* Blocked before any thread exists, so every vCPU thread inherits it; signalfd reads them. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (spec->console_log) {
                log_fd = open(spec->console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
                if (log_fd < 0) {
                        log_error_errno(errno, "Invalid spec: $.console.log: cannot open \"%s\": %m", spec->console_log);
                        vm_spec_free(spec);
                        return 1;
                }
        }

        r = a.restore_dir ? vm_create_for_restore(spec, &vm, &e) : vm_create(spec, &vm, &e);
        if (r >= 0 && a.restore_dir) {
                r = vm_snapshot_restore(vm, manifest, a.restore_dir, &e);
                if (r < 0)
                        return log_error_errno(r, "Failed to restore %s: %s: %s", a.restore_dir, e.path, e.message), 1;
                log_info("VM %s restored from %s.", vm->spec->name, a.restore_dir);
        }
        if (r == -EINVAL)
                return log_error_errno(r, "Invalid spec: %s: %s", e.path, e.message), 1;
        if (r < 0 && e.message[0])
                return log_error_errno(r, "Failed to create the VM: %s: %s", e.path, e.message), 1;
        if (r < 0)
                return log_error_errno(r, "Failed to create the VM: %s: %m", kvm_last_failed_ioctl()), 1;

        if (vm->spec->n_nics > 0)
                log_warning("The spec names %zu nic(s); this VMM has no virtio-net device yet, they are not attached.",
                            vm->spec->n_nics);
        if (vm->spec->n_disks > 0 && vm->n_devices == 0)
                log_warning("The spec names %zu disk(s) but irqchip \"none\" cannot deliver their interrupts; they are not attached.",
                            vm->spec->n_disks);
        if (log_fd >= 0)
                r = serial_add_output_fd(vm->serial, log_fd);
        else
                r = serial_add_output_fd(vm->serial, STDOUT_FILENO);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the console output: %m"), 1;

        r = control_listen(a.control_path, &control_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", a.control_path), 1;
        if (a.console_path) {
                r = console_listen(a.console_path, &console_fd);
                if (r < 0) {
                        unlink(a.control_path);
                        return log_error_errno(r, "Failed to listen on %s: %m", a.console_path), 1;
                }
        }
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        ep = epoll_create1(EPOLL_CLOEXEC);
        buf = malloc(CONTROL_MESSAGE_MAX + 1);
        if (sig_fd < 0 || ep < 0 || !buf || epoll_add(ep, CONN_CONTROL_LISTEN, control_fd) < 0 ||
            epoll_add(ep, CONN_SIGNAL, sig_fd) < 0 || epoll_add(ep, CONN_END, vm->end_event_fd) < 0 ||
            (console_fd >= 0 && epoll_add(ep, CONN_CONSOLE_LISTEN, console_fd) < 0)) {
                r = -errno;
                goto finish;
        }

        vm->pause_requested = a.start_paused;
        r = vm_signals_init();
        if (r >= 0)
                r = vm_start(vm);
        if (r < 0) {
                log_error_errno(r, "Failed to start the vCPUs: %m");
                goto finish;
        }
        log_debug("VM %s running with %u vCPUs.", vm->spec->name, vm->n_vcpus);

        for (bool ended = false; !ended;) {
                struct epoll_event evs[16];
                int n = epoll_wait(ep, evs, ELEMENTSOF(evs), -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = log_error_errno(errno, "epoll_wait failed: %m");
                        vm_request_stop(vm);
                        break;
                }
                for (int i = 0; i < n; i++) {
                        ConnKind kind = (ConnKind) (evs[i].data.u64 >> 32);
                        int fd = (int) (uint32_t) evs[i].data.u64;
                        switch (kind) {
                        case CONN_CONTROL_LISTEN:
                        case CONN_CONSOLE_LISTEN: {
                                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                                if (c < 0)
                                        break;
                                if (n_conns >= MAX_CONNECTIONS) {
                                        close(c);
                                        break;
                                }
                                if (kind == CONN_CONTROL_LISTEN) {
                                        control_conn_setup(c);
                                        if (epoll_add(ep, CONN_CONTROL, c) < 0) {
                                                close(c);
                                                break;
                                        }
                                } else {
                                        if (epoll_add(ep, CONN_CONSOLE, c) < 0) {
                                                close(c);
                                                break;
                                        }
                                        if (serial_attach_client(vm->serial, c) < 0) { /* closed it */
                                                epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL);
                                                break;
                                        }
                                }
                                n_conns++;
                                break;
                        }
                        case CONN_CONTROL:
                                control_serve(vm, ep, fd, buf, &n_conns);
                                break;
                        case CONN_CONSOLE: {
                                uint8_t in[1024];
                                ssize_t k = read(fd, in, sizeof in);
                                if (k > 0)
                                        serial_input(vm->serial, in, (size_t) k);
                                else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
                                        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                                        serial_detach_client(vm->serial, fd);
                                        n_conns--;
                                }
                                break;
                        }
                        case CONN_SIGNAL: {
                                struct signalfd_siginfo si;
                                if (read(fd, &si, sizeof si) == sizeof si) {
                                        log_info("Received signal %u, stopping the VM.", si.ssi_signo);
                                        vm_request_stop(vm);
                                }
                                break;
                        }
                        case CONN_END:
                                ended = true;
                                break;
                        }
                }
        }

finish:
        vm_request_stop(vm);
        vm_join(vm);
        unlink(a.control_path);
        if (a.console_path)
                unlink(a.console_path);

        _cleanup_json_ json_object *status = NULL;
        if (vm_status_json(vm, &status) >= 0) {
                const char *text = json_to_string(status);
                if (a.status_path) {
                        int w = write_file_atomic(a.status_path, text, strlen(text), 0644);
                        if (w < 0)
                                log_warning_errno(w, "Failed to write %s: %m", a.status_path);
                }
        }
        if (r < 0)
                return 1;
        log_info("VM %s ended: %s%s%s", vm->spec->name, vm->exit.reason, vm->exit.detail[0] ? ": " : "",
                 vm->exit.detail);
        return vm_exit_status(&vm->exit);
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
