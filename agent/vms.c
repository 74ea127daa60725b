/* SPDX-License-Identifier: MIT */
#include "vms.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "spawn.h"
#include "memslots.h"
#include "nested-policy.h"
#include "str-util.h"
#include "time-util.h"
#include "vmm/control-client.h"
#include "vmm/spec.h"

extern char **environ;

#define READY_TIMEOUT_USEC (10 * 1000000ULL)
#define KILL_WAIT_USEC (5 * 1000000ULL)
#define CONTROL_TIMEOUT_MS 5000
#define RESTART_WINDOW_USEC (60 * 1000000ULL)
#define RESTART_HISTORY 100

typedef enum ExitClass {
        EXIT_STOPPED,      /* stop request or signal: a clean end */
        EXIT_SHUTDOWN,     /* the guest powered off */
        EXIT_RESET,        /* the guest rebooted */
        EXIT_DEBUG,        /* test guests' debug-exit port */
        EXIT_SETUP_FAILED, /* the VMM refused the spec or KVM failed before the guest ran */
        EXIT_CRASH,        /* the guest or the VMM failed, or the VMM was killed */
} ExitClass;

typedef struct VmRuntime {
        int refs; /* atomic */
        VmSupervisor *sup;
        char uuid[37];
        pthread_mutex_t op_lock; /* serializes lifecycle operations on this VM */
        unsigned log_context;    /* log context fields pushed by with_vm(), under op_lock */
        pthread_mutex_t lock;    /* protects the fields below */
        pthread_cond_t cond;     /* broadcast when the process exits */
        pid_t pid;
        int pidfd;
        bool child;              /* started by this agent (waitid works), not adopted */
        uint64_t generation;     /* one per VMM process; exits are matched to it */
        bool watching;           /* a process of this generation is alive as far as we know */
        bool exited;
        ExitClass exit_class;
        char exit_reason[256];
        uint64_t handled_generation; /* an operation already accounted for this exit */
        uint64_t restarts[RESTART_HISTORY]; /* monotonic times of automatic restarts (op_lock) */
        unsigned n_restarts;
        const char *restore_dir; /* the next spawn restores this snapshot (op_lock) */
        bool restore_paused;
        sd_event_source *src;    /* main loop only */
} VmRuntime;

typedef struct ExitItem {
        VmRuntime *rt;
        uint64_t generation;
        bool restart; /* not an exit: start a crashed VM whose on_crash is restart */
} ExitItem;

struct VmSupervisor {
        Manager *manager;
        pthread_mutex_t lock; /* the table and both queues */
        VmRuntime **vms;
        size_t n_vms;
        VmRuntime **pending; /* waiting for the main loop to watch their pidfd */
        size_t n_pending;
        int wake_fd;
        sd_event_source *wake_src;
        ExitItem *exits;
        size_t n_exits;
        pthread_cond_t worker_cond;
        pthread_t worker;
        bool worker_started, worker_stop;
};

static VmRuntime *runtime_ref(VmRuntime *rt) {
        __atomic_add_fetch(&rt->refs, 1, __ATOMIC_SEQ_CST);
        return rt;
}

static void runtime_unref(VmRuntime *rt) {
        if (!rt || __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_SEQ_CST) > 0)
                return;
        if (rt->pidfd >= 0)
                close(rt->pidfd);
        pthread_mutex_destroy(&rt->op_lock);
        pthread_mutex_destroy(&rt->lock);
        pthread_cond_destroy(&rt->cond);
        free(rt);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(VmRuntime *, runtime_unref);

/* The runtime for uuid, with a reference; created when absent and create is set. */
static VmRuntime *runtime_get(VmSupervisor *s, const char *uuid, bool create) {
        VmRuntime *rt = NULL;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_vms; i++)
                if (streq(s->vms[i]->uuid, uuid)) {
                        rt = runtime_ref(s->vms[i]);
                        goto out;
                }
        if (!create)
                goto out;
        VmRuntime **nv = realloc(s->vms, (s->n_vms + 1) * sizeof *nv);
        if (!nv)
                goto out;
        s->vms = nv;
        rt = calloc(1, sizeof *rt);
        if (!rt)
                goto out;
        rt->refs = 1;
        rt->sup = s;
        strscpy(rt->uuid, sizeof rt->uuid, uuid);
        rt->pidfd = -1;
        pthread_mutex_init(&rt->op_lock, NULL);
        pthread_mutex_init(&rt->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&rt->cond, &ca);
        pthread_condattr_destroy(&ca);
        s->vms[s->n_vms++] = rt;
        rt = runtime_ref(rt);
out:
        pthread_mutex_unlock(&s->lock);
        return rt;
}

static void runtime_forget(VmSupervisor *s, VmRuntime *rt) {
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_vms; i++)
                if (s->vms[i] == rt) {
                        s->vms[i] = s->vms[--s->n_vms];
                        runtime_unref(rt);
                        break;
                }
        pthread_mutex_unlock(&s->lock);
}

void vm_error_done(VmError *e) {
        json_object_put(e->details);
        e->details = NULL;
}

_printf_(4, 5) static int vm_error(VmError *e, unsigned status, const char *code, const char *fmt, ...) {
        va_list ap;
        e->status = status;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        switch (status) {
        case 404:
                return -ENOENT;
        case 409:
                return -EBUSY;
        case 422:
        case 400:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static int vm_error_state(VmError *e, const VmRecord *r, const char *action) {
        json_object_put(e->details);
        e->details = json_object_new_object();
        json_add_string(e->details, "state", r->state);
        json_add_string(e->details, "uuid", r->uuid);
        return vm_error(e, 409, "invalid_state", "cannot %s VM \"%s\" in state %s", action, r->name, r->state);
}

static void vm_log(int level, int error, const char *uuid, const char *name, const char *fmt, ...) _printf_(5, 6);
static void vm_log(int level, int error, const char *uuid, const char *name, const char *fmt, ...) {
        char f_uuid[64], f_name[128];
        va_list ap;
        snprintf(f_uuid, sizeof f_uuid, "VM_UUID=%s", uuid);
        snprintf(f_name, sizeof f_name, "VM_NAME=%s", name ? name : "");
        va_start(ap, fmt);
        log_internalv(level, error, LOG_FIELDS(f_uuid, f_name), fmt, ap);
        va_end(ap);
}

static void vm_event(Manager *m, const char *actor, const VmRecord *r, const char *uuid, const char *action,
                     const char *result, json_object *detail) {
        char object[48];
        snprintf(object, sizeof object, "vm/%s", r ? r->uuid : uuid);
        json_object *d = detail ? json_object_get(detail) : json_object_new_object();
        if (r && d && !json_object_object_get_ex(d, "name", NULL))
                json_add_string(d, "name", r->name);
        manager_event(m, actor, object, action, result, d);
        json_object_put(d);
}

/* ---- paths and process facts ---- */

static int vm_dir(Manager *m, const char *uuid, const char *file, char **ret) {
        if (asprintf(ret, "%s/vms/%s%s%s", m->config->state_dir, uuid, file ? "/" : "", file ? file : "") < 0)
                return -ENOMEM;
        return 0;
}

static int vm_control_path(Manager *m, const char *uuid, char **ret) {
        if (asprintf(ret, "%s/vms/%s.sock", m->config->run_dir, uuid) < 0)
                return -ENOMEM;
        return 0;
}

/* /proc/PID/stat field 22: start time in clock ticks since boot; with the pid it names one process. */
static int proc_start_time(pid_t pid, uint64_t *ret) {
        char path[64];
        _cleanup_free_ char *text = NULL;
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        int r = read_full_file(path, 4096, &text, NULL);
        if (r < 0)
                return r;
        char *p = strrchr(text, ')');
        if (!p)
                return -EBADMSG;
        p++;
        /* a zombie (its parent, not being us, has not reaped it yet) is as good as gone */
        if (p[0] == ' ' && (p[1] == 'Z' || p[1] == 'X'))
                return -ESRCH;
        /* after "comm)": state is field 3; starttime is field 22 */
        for (int field = 3; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EBADMSG;
        }
        unsigned long long v;
        if (sscanf(p, " %llu", &v) != 1)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int vms_console_path(Manager *m, const VmRecord *r, char **ret) {
        _cleanup_json_ json_object *spec = NULL;
        json_object *console, *log;
        if (json_parse(r->spec, strlen(r->spec), 64, &spec, NULL) >= 0 &&
            json_object_object_get_ex(spec, "console", &console) && json_object_object_get_ex(console, "log", &log) &&
            json_object_is_type(log, json_type_string)) {
                *ret = strdup(json_object_get_string(log));
                return *ret ? 0 : -ENOMEM;
        }
        return vm_dir(m, r->uuid, "console.log", ret);
}

static char *file_tail(const char *path, size_t max) {
        _cleanup_free_ char *text = NULL;
        size_t n;
        if (read_full_file(path, 1 << 20, &text, &n) < 0 || n == 0)
                return NULL;
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
                text[--n] = 0;
        const char *start = n > max ? text + n - max : text;
        /* the last line carries the VMM's reason; earlier lines are context */
        const char *nl = strrchr(start, '\n');
        return strdup(nl ? nl + 1 : start);
}

/* ---- the watch: pidfds in the main loop, exits to the worker ---- */

static void queue_work(VmSupervisor *s, VmRuntime *rt, uint64_t generation, bool restart) {
        pthread_mutex_lock(&s->lock);
        ExitItem *ne = realloc(s->exits, (s->n_exits + 1) * sizeof *ne);
        if (ne) {
                s->exits = ne;
                s->exits[s->n_exits++] = (ExitItem){ runtime_ref(rt), generation, restart };
                pthread_cond_signal(&s->worker_cond);
        } else
                log_error("Out of memory queueing the exit of VM %s", rt->uuid);
        pthread_mutex_unlock(&s->lock);
}

static void classify_exit(Manager *m, VmRuntime *rt, const siginfo_t *si, bool have_status) {
        _cleanup_free_ char *status_path = NULL, *text = NULL;
        _cleanup_json_ json_object *status = NULL;
        json_object *exit_obj = NULL, *v;
        const char *reason = NULL;
        int64_t code = -1;

        if (vm_dir(m, rt->uuid, "status.json", &status_path) >= 0 && read_full_file(status_path, 1 << 20, &text, NULL) >= 0 &&
            json_parse(text, strlen(text), 64, &status, NULL) >= 0 && json_object_object_get_ex(status, "exit", &exit_obj) &&
            json_object_is_type(exit_obj, json_type_object)) {
                if (json_object_object_get_ex(exit_obj, "reason", &v) && json_object_is_type(v, json_type_string))
                        reason = json_object_get_string(v);
                if (json_object_object_get_ex(exit_obj, "code", &v) && json_object_is_type(v, json_type_int))
                        code = json_object_get_int64(v);
        }

        if (have_status && (si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED)) {
                rt->exit_class = EXIT_CRASH;
                snprintf(rt->exit_reason, sizeof rt->exit_reason, "VMM killed by signal %d (SIG%s)", si->si_status,
                         sigabbrev_np(si->si_status) ?: "?");
                return;
        }
        if (have_status) {
                int st = si->si_status;
                if (st == 0)
                        rt->exit_class = EXIT_STOPPED;
                else if (st == 1 || st == 2)
                        rt->exit_class = EXIT_SETUP_FAILED;
                else if (st == 10)
                        rt->exit_class = EXIT_SHUTDOWN;
                else if (st == 11)
                        rt->exit_class = EXIT_RESET;
                else if (st >= 64 && st < 128) {
                        rt->exit_class = EXIT_DEBUG;
                        if (code < 0)
                                code = st - 64;
                } else
                        rt->exit_class = EXIT_CRASH;
                if (rt->exit_class == EXIT_SETUP_FAILED) {
                        _cleanup_free_ char *log_path = NULL, *tail = NULL;
                        if (vm_dir(m, rt->uuid, "vmm.log", &log_path) >= 0)
                                tail = file_tail(log_path, 512);
                        snprintf(rt->exit_reason, sizeof rt->exit_reason, "VMM setup failed (status %d)%s%s", st,
                                 tail ? ": " : "", tail ? tail : "");
                        return;
                }
        } else if (reason) {
                rt->exit_class = streq(reason, "stopped")    ? EXIT_STOPPED
                                 : streq(reason, "shutdown") ? EXIT_SHUTDOWN
                                 : streq(reason, "reset")    ? EXIT_RESET
                                 : streq(reason, "debug-exit") ? EXIT_DEBUG
                                                             : EXIT_CRASH;
        } else {
                rt->exit_class = EXIT_CRASH;
                snprintf(rt->exit_reason, sizeof rt->exit_reason,
                         "VMM (pid %d) exited and left no status: killed, or crashed", (int) rt->pid);
                return;
        }
        if (reason && code >= 0)
                snprintf(rt->exit_reason, sizeof rt->exit_reason, "%s code=%lld", reason, (long long) code);
        else if (reason)
                snprintf(rt->exit_reason, sizeof rt->exit_reason, "%s", reason);
        else
                snprintf(rt->exit_reason, sizeof rt->exit_reason, "VMM exited with status %d", si->si_status);
}

static int on_pidfd(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        VmRuntime *rt = userdata;
        Manager *m = rt->sup->manager;
        siginfo_t si = { 0 };
        bool have_status = false;
        uint64_t gen;

        /* Before the waiters below are woken: a stop that returns must find the slots inactive. */
        memslots_vmm_ended(m, rt->uuid);
        pthread_mutex_lock(&rt->lock);
        if (rt->child && waitid(P_PIDFD, (id_t) fd, &si, WEXITED | WNOHANG) == 0 && si.si_pid != 0)
                have_status = true;
        classify_exit(m, rt, &si, have_status);
        rt->exited = true;
        rt->watching = false;
        gen = rt->generation;
        rt->src = sd_event_source_disable_unref(rt->src);
        close(rt->pidfd);
        rt->pidfd = -1;
        pthread_cond_broadcast(&rt->cond);
        pthread_mutex_unlock(&rt->lock);
        vm_log(LOG_INFO, 0, rt->uuid, NULL, "VMM of VM %s (pid %d) exited: %s", rt->uuid, (int) rt->pid, rt->exit_reason);
        _cleanup_free_ char *ctl = NULL;
        if (vm_control_path(m, rt->uuid, &ctl) >= 0)
                vmm_control_forget(ctl); /* kept connections to the dead VMM */
        queue_work(m->vms, rt, gen, false);
        runtime_unref(rt); /* the watch's reference */
        return 0;
}

static int on_wake(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        VmSupervisor *s = userdata;
        uint64_t v;
        VmRuntime **pending;
        size_t n;

        (void) !read(fd, &v, sizeof v);
        pthread_mutex_lock(&s->lock);
        pending = s->pending;
        n = s->n_pending;
        s->pending = NULL;
        s->n_pending = 0;
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < n; i++) {
                VmRuntime *rt = pending[i];
                pthread_mutex_lock(&rt->lock);
                if (rt->pidfd >= 0 && !rt->src) {
                        int r = sd_event_add_io(s->manager->event, &rt->src, rt->pidfd, EPOLLIN, on_pidfd, rt);
                        if (r < 0)
                                log_error_errno(r, "Failed to watch the VMM of VM %s: %m", rt->uuid);
                        else {
                                pthread_mutex_unlock(&rt->lock);
                                continue; /* the watch keeps the reference */
                        }
                }
                pthread_mutex_unlock(&rt->lock);
                runtime_unref(rt);
        }
        free(pending);
        return 0;
}

/* Asks the main loop to watch rt's current pidfd (any thread). */
static int watch(VmSupervisor *s, VmRuntime *rt) {
        uint64_t one = 1;
        pthread_mutex_lock(&s->lock);
        VmRuntime **np = realloc(s->pending, (s->n_pending + 1) * sizeof *np);
        if (!np) {
                pthread_mutex_unlock(&s->lock);
                return -ENOMEM;
        }
        s->pending = np;
        s->pending[s->n_pending++] = runtime_ref(rt);
        pthread_mutex_unlock(&s->lock);
        (void) !write(s->wake_fd, &one, sizeof one);
        return 0;
}

/* Waits until the process of generation gen has exited; false on timeout. */
static bool wait_exit(VmRuntime *rt, uint64_t gen, uint64_t timeout_usec) {
        struct timespec deadline;
        bool done;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += (time_t) (timeout_usec / 1000000);
        deadline.tv_nsec += (long) (timeout_usec % 1000000) * 1000;
        if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&rt->lock);
        while (!(done = rt->generation != gen || rt->exited))
                if (pthread_cond_timedwait(&rt->cond, &rt->lock, &deadline) == ETIMEDOUT) {
                        done = rt->generation != gen || rt->exited;
                        break;
                }
        pthread_mutex_unlock(&rt->lock);
        return done;
}

static int signal_vmm(VmRuntime *rt, int sig) {
        int r = 0;
        pthread_mutex_lock(&rt->lock);
        if (rt->pidfd >= 0 && pidfd_send_signal(rt->pidfd, sig, NULL, 0) < 0)
                r = -errno;
        pthread_mutex_unlock(&rt->lock);
        return r;
}

/* ---- spawning ---- */

static int build_vmm_spec(Manager *m, const VmRecord *r, char **ret) {
        _cleanup_json_ json_object *spec = NULL;
        json_object *console;
        if (json_parse(r->spec, strlen(r->spec), 64, &spec, NULL) < 0)
                return -EBADMSG;
        if (!json_object_object_get_ex(spec, "console", &console) || !json_object_is_type(console, json_type_object)) {
                console = json_object_new_object();
                if (!console || json_add(spec, "console", console) < 0)
                        return -ENOMEM;
        }
        json_object *log;
        if (!json_object_object_get_ex(console, "log", &log) || !json_object_is_type(log, json_type_string)) {
                _cleanup_free_ char *path = NULL;
                if (vm_dir(m, r->uuid, "console.log", &path) < 0)
                        return -ENOMEM;
                /* a fresh log per run: console offsets then count from the VM's start */
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0640);
                if (fd < 0)
                        return -errno;
                close(fd);
                json_add_string(console, "log", path);
        }
        *ret = strdup(json_to_string(spec));
        return *ret ? 0 : -ENOMEM;
}

/* The environment without what belongs to the agent's own service. */
static char **child_environ(void) {
        size_t n = 0;
        for (char **e = environ; *e; e++)
                n++;
        char **env = calloc(n + 1, sizeof *env);
        if (!env)
                return NULL;
        n = 0;
        for (char **e = environ; *e; e++)
                if (!startswith(*e, "NOTIFY_SOCKET=") && !startswith(*e, "WATCHDOG_") && !startswith(*e, "LISTEN_") &&
                    !startswith(*e, "JOURNAL_STREAM=") && !startswith(*e, "INVOCATION_ID="))
                        env[n++] = *e;
        return env;
}

/* fork+exec of the VMM in its own session; state must already be "starting" (the intent). */
static int spawn_vmm(Manager *m, VmRuntime *rt, const VmRecord *r, pid_t *ret_pid, VmError *e) {
        _cleanup_free_ char *dir = NULL, *ctl = NULL, *status = NULL, *logp = NULL, *spec = NULL, *rundir = NULL;
        _cleanup_close_ int spec_fd = -1, log_fd = -1, null_fd = -1;
        _cleanup_free_ char **env = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        pid_t pid;
        int r_;

        if (vm_dir(m, r->uuid, NULL, &dir) < 0 || vm_control_path(m, r->uuid, &ctl) < 0 ||
            vm_dir(m, r->uuid, "status.json", &status) < 0 || vm_dir(m, r->uuid, "vmm.log", &logp) < 0 ||
            asprintf(&rundir, "%s/vms", m->config->run_dir) < 0)
                return vm_error(e, 500, "internal", "out of memory");
        if ((r_ = mkdir_p(dir, 0750)) < 0 || (r_ = mkdir_p(rundir, 0750)) < 0)
                return vm_error(e, 500, "internal", "cannot create the VM's directories %s, %s: %s", dir, rundir, strerror(-r_));
        r_ = build_vmm_spec(m, r, &spec);
        if (r_ < 0)
                return vm_error(e, 500, "internal", "cannot prepare the VMM's spec: %s", strerror(-r_));
        (void) unlink(status);

        int fd = memfd_create("kvmfleet-spec", MFD_CLOEXEC);
        if (fd < 0)
                return vm_error(e, 500, "internal", "memfd_create: %s", strerror(errno));
        /* above the stdio numbers, so the dup2 to 3 below is always a real dup */
        spec_fd = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        close(fd);
        log_fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0640);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (spec_fd < 0 || log_fd < 0 || null_fd < 0 || loop_write(spec_fd, spec, strlen(spec)) < 0 || lseek(spec_fd, 0, SEEK_SET) < 0)
                return vm_error(e, 500, "internal", "cannot prepare the VMM's files: %s", strerror(errno));
        if (log_fd < 10) {
                int moved = fcntl(log_fd, F_DUPFD_CLOEXEC, 10);
                close(log_fd);
                log_fd = moved;
        }
        if (null_fd < 10) {
                int moved = fcntl(null_fd, F_DUPFD_CLOEXEC, 10);
                close(null_fd);
                null_fd = moved;
        }
        env = child_environ();
        if (log_fd < 0 || null_fd < 0 || !env)
                return vm_error(e, 500, "internal", "cannot prepare the VMM's files: %s", strerror(errno ?: ENOMEM));

        char *argv[] = { m->config->vmm_binary, (char *) "--spec-fd", (char *) "3", (char *) "--control", ctl,
                         (char *) "--status-file", status, (char *) "--log-level",
                         (char *) log_level_to_string(log_get_max_level()), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
        size_t n = ELEMENTSOF(argv) - 8;
        if (rt->restore_dir) {
                argv[n++] = (char *) "--restore";
                argv[n++] = (char *) rt->restore_dir;
                if (rt->restore_paused)
                        argv[n++] = (char *) "--paused";
        }
        if (m->placement.housekeeping_cpus) {
                argv[n++] = (char *) "--housekeeping-cpus";
                argv[n++] = m->placement.housekeeping_cpus;
                argv[n++] = (char *) "--guest-cpus";
                argv[n++] = m->placement.guest_cpus;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, null_fd, 0);
        posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
        posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
        posix_spawn_file_actions_adddup2(&fa, spec_fd, 3);
        spawn_attr_init_clean(&attr, POSIX_SPAWN_SETSID);
        r_ = posix_spawn(&pid, m->config->vmm_binary, &fa, &attr, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r_ != 0)
                return vm_error(e, 500, "vmm_failed", "cannot execute %s: %s", m->config->vmm_binary, strerror(r_));

        int pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) {
                r_ = errno;
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return vm_error(e, 500, "internal", "pidfd_open(%d): %s", (int) pid, strerror(r_));
        }
        uint64_t start_time = 0;
        (void) proc_start_time(pid, &start_time);

        pthread_mutex_lock(&rt->lock);
        if (rt->pidfd >= 0)
                close(rt->pidfd);
        rt->pid = pid;
        rt->pidfd = pidfd;
        rt->child = true;
        rt->generation++;
        rt->watching = true;
        rt->exited = false;
        rt->exit_reason[0] = 0;
        pthread_mutex_unlock(&rt->lock);
        r_ = watch(m->vms, rt);
        if (r_ >= 0)
                /* the pid before anything else can go wrong, so a crash of the agent from here on finds it */
                r_ = store_vm_set_state(m->store, r->uuid, "starting", "starting", pid, start_time, ctl, NULL);
        if (r_ < 0) {
                /* this start's failure, not a crash: the exit worker must not act on it */
                pthread_mutex_lock(&rt->lock);
                uint64_t gen = rt->generation;
                rt->handled_generation = gen;
                pthread_mutex_unlock(&rt->lock);
                pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
                wait_exit(rt, gen, KILL_WAIT_USEC);
                return vm_error(e, 500, "internal", "cannot watch or record the VMM: %s", strerror(-r_));
        }
        *ret_pid = pid;
        return 0;
}

/* Polls the control socket until the VMM answers; its status's state ("running" or "paused"). */
static int wait_ready(VmRuntime *rt, uint64_t gen, const char *ctl, char *state, size_t state_size) {
        uint64_t deadline = now_monotonic_usec() + READY_TIMEOUT_USEC, delay = 100;
        for (;;) {
                pthread_mutex_lock(&rt->lock);
                bool gone = rt->generation != gen || rt->exited;
                pthread_mutex_unlock(&rt->lock);
                if (gone)
                        return -ECHILD;
                if (access(ctl, F_OK) == 0) {
                        _cleanup_json_ json_object *res = NULL;
                        int r = vmm_control_call(ctl, "status", NULL, 1000, &res, NULL, NULL);
                        if (r == 0) {
                                json_object *st;
                                strscpy(state, state_size,
                                        json_object_object_get_ex(res, "state", &st) ? json_object_get_string(st) : "running");
                                return 0;
                        }
                }
                if (now_monotonic_usec() > deadline)
                        return -ETIMEDOUT;
                wait_exit(rt, gen, delay);
                delay = delay * 2 > 1000 ? 1000 : delay * 2; /* at most 1 ms late */
        }
}

/* ---- operations; callers hold rt->op_lock ---- */

static int load(Manager *m, const char *id, VmRecord **ret, VmError *e) {
        int r = store_vm_get(m->store, id, ret);
        if (r == -ENOENT) {
                json_object_put(e->details);
                e->details = json_object_new_object();
                json_add_string(e->details, "id", id);
                return vm_error(e, 404, "not_found", "no VM \"%s\"", id);
        }
        if (r < 0)
                return vm_error(e, 500, "internal", "inventory: %s", strerror(-r));
        return 0;
}

static bool state_is(const VmRecord *r, const char *a, const char *b, const char *c) {
        return streq(r->state, a) || (b && streq(r->state, b)) || (c && streq(r->state, c));
}

static int do_start(Manager *m, VmRuntime *rt, const char *actor, const char *action, VmError *e) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        _cleanup_free_ char *ctl = NULL;
        char vmm_state[32];
        pid_t pid = 0;
        int k;

        if ((k = load(m, rt->uuid, &r, e)) < 0)
                return k;
        if (__atomic_load_n(&m->kvm_reloading, __ATOMIC_SEQ_CST))
                return vm_error(e, 409, "conflict", "KVM is being reloaded (POST /v1/host/kvm/reload); start \"%s\" afterwards", r->name);
        const char *prev = r->state;
        if (!state_is(r, "defined", "stopped", "crashed"))
                return vm_error_state(e, r, "start");
        if (nested_spec_wanted(r->spec)) {
                NestedHostFacts facts;
                nested_host_facts(&facts);
                if ((k = nested_host_check(&facts, r->name, "start", e)) < 0)
                        return k;
        }
        _cleanup_free_ char *prev_state = strdup(prev);
        if (!prev_state)
                return vm_error(e, 500, "internal", "out of memory");
        /* intent */
        k = store_vm_set_state(m->store, r->uuid, prev, "starting", 0, 0, NULL, NULL);
        if (k == -ESTALE)
                return vm_error_state(e, r, "start");
        if (k < 0)
                return vm_error(e, 500, "internal", "inventory: %s", strerror(-k));
        if (__atomic_load_n(&m->kvm_reloading, __ATOMIC_SEQ_CST)) {
                /* the reload set its flag after our first look; it counts "starting" VMs after setting it */
                store_vm_set_state(m->store, r->uuid, "starting", prev_state, 0, 0, NULL, r->exit_reason);
                return vm_error(e, 409, "conflict", "KVM is being reloaded (POST /v1/host/kvm/reload); start \"%s\" afterwards",
                                r->name);
        }
        k = spawn_vmm(m, rt, r, &pid, e);
        if (k < 0) {
                store_vm_set_state(m->store, r->uuid, "starting", prev_state, 0, 0, NULL, e->message);
                vm_event(m, actor, r, NULL, action, "failed", NULL);
                return k;
        }
        pthread_mutex_lock(&rt->lock);
        uint64_t gen = rt->generation;
        pthread_mutex_unlock(&rt->lock);
        vm_control_path(m, r->uuid, &ctl);
        k = ctl ? wait_ready(rt, gen, ctl, vmm_state, sizeof vmm_state) : -ENOMEM;
        if (k == -ECHILD) {
                /* ended before we saw it answer: if the guest ran (it powered off or rebooted at once),
                 * the start worked and the exit is handled like any other, after this operation */
                pthread_mutex_lock(&rt->lock);
                bool guest_ran = rt->exit_class == EXIT_STOPPED || rt->exit_class == EXIT_SHUTDOWN ||
                                 rt->exit_class == EXIT_RESET || rt->exit_class == EXIT_DEBUG;
                pthread_mutex_unlock(&rt->lock);
                if (guest_ran) {
                        k = 0;
                        strscpy(vmm_state, sizeof vmm_state, "running");
                }
        }
        if (k < 0) {
                if (k != -ECHILD) {
                        signal_vmm(rt, SIGKILL);
                        wait_exit(rt, gen, KILL_WAIT_USEC);
                }
                pthread_mutex_lock(&rt->lock);
                rt->handled_generation = gen;
                bool setup_failed = rt->exited && rt->exit_class == EXIT_SETUP_FAILED;
                char reason[256];
                if (k == -ECHILD || rt->exited)
                        strscpy(reason, sizeof reason, rt->exit_reason);
                else
                        snprintf(reason, sizeof reason, "VMM did not answer on %s within %llu s", ctl ? ctl : "?",
                                 (unsigned long long) (READY_TIMEOUT_USEC / 1000000));
                pthread_mutex_unlock(&rt->lock);
                store_vm_set_state(m->store, r->uuid, "starting", prev_state, 0, 0, NULL, reason);
                json_object *d = json_object_new_object();
                json_add_string(d, "reason", reason);
                vm_event(m, actor, r, NULL, action, "failed", d);
                json_object_put(d);
                vm_log(LOG_WARNING, 0, r->uuid, r->name, "Starting VM %s failed: %s", r->name, reason);
                json_object_put(e->details);
                e->details = json_object_new_object();
                json_add_string(e->details, "reason", reason);
                return vm_error(e, setup_failed ? 422 : 500, setup_failed ? "start_failed" : "vmm_failed",
                                "VM \"%s\" did not start: %s", r->name, reason);
        }
        const char *final = streq(vmm_state, "paused") ? "paused" : "running";
        k = store_vm_set_state(m->store, r->uuid, "starting", final, -1, 0, NULL, NULL);
        if (k < 0)
                return vm_error(e, 500, "internal", "inventory: %s", strerror(-k));
        json_object *d = json_object_new_object();
        json_add_int(d, "pid", pid);
        vm_event(m, actor, r, NULL, action, "ok", d);
        json_object_put(d);
        vm_log(LOG_INFO, 0, r->uuid, r->name, "VM %s started (VMM pid %d)", r->name, (int) pid);
        memslots_sync(m, r->uuid, r->name, ctl); /* the boot RAM slots, role ram */
        return 0;
}

static int do_stop(Manager *m, VmRuntime *rt, int timeout_s, bool force, const char *actor, const char *action, VmError *e) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        int k;

        if ((k = load(m, rt->uuid, &r, e)) < 0)
                return k;
        if (!state_is(r, "running", "paused", "starting") && !streq(r->state, "stopping"))
                return vm_error_state(e, r, "stop");
        if (!streq(r->state, "stopping")) {
                k = store_vm_set_state(m->store, r->uuid, r->state, "stopping", -1, 0, NULL, NULL);
                if (k == -ESTALE)
                        return vm_error_state(e, r, "stop");
                if (k < 0)
                        return vm_error(e, 500, "internal", "inventory: %s", strerror(-k));
        }
        pthread_mutex_lock(&rt->lock);
        uint64_t gen = rt->generation;
        bool alive = rt->watching && !rt->exited;
        pthread_mutex_unlock(&rt->lock);

        const char *how = "already gone";
        if (alive) {
                uint64_t t = (uint64_t) (timeout_s >= 0 ? (unsigned) timeout_s : m->config->stop_timeout) * 1000000ULL;
                bool done = false;
                if (!force) {
                        _cleanup_free_ char *ctl = NULL;
                        /* the whole graceful phase, and then SIGTERM's, fit the caller's timeout */
                        uint64_t step = t < 1000000 ? 1000000 : t;
                        int call_ms = (int) (step / 1000 < CONTROL_TIMEOUT_MS ? step / 1000 : CONTROL_TIMEOUT_MS);
                        how = "stop request";
                        if (vm_control_path(m, r->uuid, &ctl) >= 0 &&
                            vmm_control_call(ctl, "stop", NULL, call_ms, NULL, NULL, NULL) == 0)
                                done = wait_exit(rt, gen, t);
                        if (!done) {
                                how = "SIGTERM";
                                signal_vmm(rt, SIGTERM);
                                done = wait_exit(rt, gen, step < KILL_WAIT_USEC ? step : KILL_WAIT_USEC);
                        }
                }
                if (!done) {
                        how = "SIGKILL";
                        signal_vmm(rt, SIGKILL);
                        done = wait_exit(rt, gen, KILL_WAIT_USEC);
                }
                if (!done)
                        return vm_error(e, 500, "vmm_failed", "the VMM of \"%s\" did not exit after SIGKILL", r->name);
        }
        pthread_mutex_lock(&rt->lock);
        rt->handled_generation = gen;
        char reason[300];
        snprintf(reason, sizeof reason, "stopped by %s (%s)", actor, how);
        pthread_mutex_unlock(&rt->lock);
        k = store_vm_set_state(m->store, r->uuid, "stopping", "stopped", 0, 0, NULL, reason);
        if (k < 0)
                return vm_error(e, 500, "internal", "inventory: %s", strerror(-k));
        _cleanup_free_ char *ctl = NULL;
        if (vm_control_path(m, r->uuid, &ctl) >= 0)
                (void) unlink(ctl); /* left behind only by a killed VMM */
        json_object *d = json_object_new_object();
        json_add_string(d, "how", how);
        json_add_bool(d, "force", force);
        vm_event(m, actor, r, NULL, action, "ok", d);
        json_object_put(d);
        vm_log(LOG_INFO, 0, r->uuid, r->name, "VM %s stopped (%s)", r->name, how);
        return 0;
}

static int with_vm(Manager *m, const char *id, VmRuntime **ret_rt, VmError *e) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        int k = load(m, id, &r, e);
        if (k < 0)
                return k;
        VmRuntime *rt = runtime_get(m->vms, r->uuid, true);
        if (!rt)
                return vm_error(e, 500, "internal", "out of memory");
        pthread_mutex_lock(&rt->op_lock);
        /* Every line logged while this thread works on the VM names it, whatever logs it. */
        char f_uuid[64], f_name[160];
        snprintf(f_uuid, sizeof f_uuid, "VM_UUID=%s", r->uuid);
        snprintf(f_name, sizeof f_name, "VM_NAME=%s", r->name);
        rt->log_context = (log_context_push(f_uuid) >= 0) + (log_context_push(f_name) >= 0);
        *ret_rt = rt;
        return 0;
}

static void release_vm(VmRuntime *rt) {
        for (; rt->log_context > 0; rt->log_context--)
                log_context_pop();
        pthread_mutex_unlock(&rt->op_lock);
        runtime_unref(rt);
}

static int finish(Manager *m, VmRuntime *rt, int k, VmRecord **ret, VmError *e) {
        if (k >= 0 && ret) {
                k = store_vm_get(m->store, rt->uuid, ret);
                if (k < 0)
                        k = vm_error(e, 500, "internal", "inventory: %s", strerror(-k));
        }
        release_vm(rt);
        return k;
}

int vms_start(Manager *m, const char *id, const char *actor, VmRecord **ret, VmError *e) {
        VmRuntime *rt;
        int k = with_vm(m, id, &rt, e);
        if (k < 0)
                return k;
        return finish(m, rt, do_start(m, rt, actor, "start", e), ret, e);
}

int vms_start_restored(Manager *m, const char *id, const char *dir, bool paused, const char *actor, VmRecord **ret,
                       VmError *e) {
        VmRuntime *rt;
        int k = with_vm(m, id, &rt, e);
        if (k < 0)
                return k;
        rt->restore_dir = dir;
        rt->restore_paused = paused;
        k = do_start(m, rt, actor, "restore", e);
        rt->restore_dir = NULL;
        rt->restore_paused = false;
        return finish(m, rt, k, ret, e);
}

int vms_stop(Manager *m, const char *id, int timeout_s, bool force, const char *actor, VmRecord **ret, VmError *e) {
        VmRuntime *rt;
        int k = with_vm(m, id, &rt, e);
        if (k < 0)
                return k;
        return finish(m, rt, do_stop(m, rt, timeout_s, force, actor, "stop", e), ret, e);
}

int vms_restart(Manager *m, const char *id, const char *actor, VmRecord **ret, VmError *e) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        VmRuntime *rt;
        int k = with_vm(m, id, &rt, e);
        if (k < 0)
                return k;
        k = load(m, rt->uuid, &r, e);
        if (k >= 0 && !state_is(r, "running", "paused", NULL))
                k = vm_error_state(e, r, "restart");
        if (k >= 0)
                k = do_stop(m, rt, -1, false, actor, "restart_stop", e);
        if (k >= 0)
                k = do_start(m, rt, actor, "restart", e);
        return finish(m, rt, k, ret, e);
}

static int pause_resume(Manager *m, const char *id, bool pause, const char *actor, VmRecord **ret, VmError *e) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        _cleanup_free_ char *ctl = NULL, *code = NULL, *msg = NULL;
        VmRuntime *rt;
        const char *from = pause ? "running" : "paused", *to = pause ? "paused" : "running";
        const char *verb = pause ? "pause" : "resume";
        int k = with_vm(m, id, &rt, e);
        if (k < 0)
                return k;
        k = load(m, rt->uuid, &r, e);
        if (k >= 0 && !streq(r->state, from))
                k = vm_error_state(e, r, verb);
        if (k >= 0 && vm_control_path(m, r->uuid, &ctl) < 0)
                k = vm_error(e, 500, "internal", "out of memory");
        if (k >= 0) {
                int c = vmm_control_call(ctl, verb, NULL, CONTROL_TIMEOUT_MS, NULL, &code, &msg);
                if (c == 1)
                        k = vm_error(e, 500, "vmm_failed", "the VMM refused %s: %s: %s", verb, code, msg);
                else if (c < 0)
                        k = vm_error(e, 500, "vmm_failed", "the VMM did not answer %s: %s", verb, strerror(-c));
        }
        if (k >= 0) {
                int s = store_vm_set_state(m->store, r->uuid, from, to, -1, 0, NULL, NULL);
                if (s < 0) {
                        /* the VMM did it but the inventory can't say so: undo it so both agree */
                        (void) vmm_control_call(ctl, pause ? "resume" : "pause", NULL, CONTROL_TIMEOUT_MS, NULL, NULL, NULL);
                        k = vm_error(e, 500, "internal", "inventory: %s (the VM was left %s)", strerror(-s), from);
                }
        }
        if (r)
                vm_event(m, actor, r, NULL, verb, k >= 0 ? "ok" : "failed", NULL);
        return finish(m, rt, k, ret, e);
}

int vms_pause(Manager *m, const char *id, const char *actor, VmRecord **ret, VmError *e) {
        return pause_resume(m, id, true, actor, ret, e);
}

int vms_resume(Manager *m, const char *id, const char *actor, VmRecord **ret, VmError *e) {
        return pause_resume(m, id, false, actor, ret, e);
}

static void remove_vm_files(Manager *m, const char *uuid) {
        static const char *const files[] = { "console.log", "vmm.log", "status.json" };
        _cleanup_free_ char *dir = NULL;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = NULL;
                if (vm_dir(m, uuid, files[i], &p) >= 0)
                        (void) unlink(p);
        }
        if (vm_dir(m, uuid, NULL, &dir) >= 0)
                (void) rmdir(dir);
}

int vms_delete(Manager *m, const char *id, bool force, const char *actor, VmError *e) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        VmRuntime *rt;
        int k = with_vm(m, id, &rt, e);
        if (k < 0)
                return k;
        k = load(m, rt->uuid, &r, e);
        if (k >= 0 && !state_is(r, "defined", "stopped", "crashed")) {
                if (!force)
                        k = vm_error_state(e, r, "delete (stop it first, or use force=true)");
                else
                        k = do_stop(m, rt, 0, true, actor, "stop", e);
        }
        if (k >= 0) {
                int s = store_vm_delete(m->store, r->uuid);
                if (s < 0)
                        k = vm_error(e, 500, "internal", "inventory: %s", strerror(-s));
        }
        if (k >= 0) {
                remove_vm_files(m, r->uuid);
                json_object *d = json_object_new_object();
                json_add_bool(d, "force", force);
                vm_event(m, actor, r, NULL, "delete", "ok", d);
                json_object_put(d);
                vm_log(LOG_INFO, 0, r->uuid, r->name, "VM %s deleted", r->name);
        }
        release_vm(rt);
        if (k >= 0) {
                VmRuntime *again = runtime_get(m->vms, r->uuid, false);
                if (again) {
                        runtime_forget(m->vms, again);
                        runtime_unref(again);
                }
        }
        return k;
}

/* ---- create ---- */

static unsigned host_cpus(void) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}

static uint64_t host_memory(void) {
        long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
        return pages > 0 && size > 0 ? (uint64_t) pages * (uint64_t) size : 0;
}

/* Two names for one image: the same path, or (when both exist) the same inode or block device. */
static bool disk_same_image(const char *a, const char *b) {
        struct stat sa, sb;
        if (streq(a, b))
                return true;
        if (stat(a, &sa) < 0 || stat(b, &sb) < 0 || (sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
                return false;
        if (S_ISBLK(sa.st_mode))
                return sa.st_rdev == sb.st_rdev;
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Host resources a VM holds exclusively, checked against every VM in the inventory (defined ones
 * too: they hold their taps and images from define to undefine, so that a start never finds them
 * taken). A tap has one reader; an image written by one VM is not safe to attach to another at all. */
static int devices_check_conflicts(Manager *m, const VmSpec *spec, VmError *e) {
        VmRecord **recs = NULL;
        size_t n = 0;
        int k = store_vm_records(m->store, &recs, &n);
        if (k < 0)
                return vm_error(e, 500, "internal", "inventory: %s", strerror(-k));
        for (size_t i = 0; k >= 0 && i < n; i++) {
                _cleanup_vm_spec_ VmSpec *other = NULL;
                JsonError je;
                char path[64];
                if (spec->uuid && streq(recs[i]->uuid, spec->uuid))
                        continue;
                if (vm_spec_from_string(recs[i]->spec, strlen(recs[i]->spec), &other, &je) < 0)
                        continue;
                for (size_t a = 0; k >= 0 && a < spec->n_nics; a++)
                        for (size_t b = 0; k >= 0 && b < other->n_nics; b++) {
                                if (!streq(spec->nics[a].tap, other->nics[b].tap))
                                        continue;
                                snprintf(path, sizeof path, "$.nics[%zu].tap", a);
                                json_object_put(e->details);
                                e->details = json_object_new_object();
                                json_add_string(e->details, "path", path);
                                json_add_string(e->details, "existing", recs[i]->uuid);
                                json_add_string(e->details, "existing_name", recs[i]->name);
                                k = vm_error(e, 409, "conflict", "%s: tap \"%s\" is already attached to VM \"%s\" (%s)",
                                             path, spec->nics[a].tap, recs[i]->name, recs[i]->uuid);
                        }
                for (size_t a = 0; k >= 0 && a < spec->n_disks; a++)
                        for (size_t b = 0; k >= 0 && b < other->n_disks; b++) {
                                if ((spec->disks[a].readonly && other->disks[b].readonly) ||
                                    !disk_same_image(spec->disks[a].path, other->disks[b].path))
                                        continue;
                                snprintf(path, sizeof path, "$.disks[%zu].path", a);
                                json_object_put(e->details);
                                e->details = json_object_new_object();
                                json_add_string(e->details, "path", path);
                                json_add_string(e->details, "existing", recs[i]->uuid);
                                json_add_string(e->details, "existing_name", recs[i]->name);
                                k = vm_error(e, 409, "conflict",
                                             "%s: \"%s\" is already attached %s to VM \"%s\" (%s); only read-only attachments may share an image",
                                             path, spec->disks[a].path, other->disks[b].readonly ? "read-only" : "read-write",
                                             recs[i]->name, recs[i]->uuid);
                        }
        }
        vm_record_array_free(recs, n);
        return k;
}

/* The MAC a NIC gets when the spec names none, fixed at define so that GET, dumpxml and every later
 * start of the VMM agree even if the derivation ever changes. */
static int nics_fill_mac(VmSpec *spec) {
        for (size_t i = 0; i < spec->n_nics; i++) {
                char mac[18];
                if (spec->nics[i].mac)
                        continue;
                vm_spec_nic_mac(spec, i, mac);
                spec->nics[i].mac = strdup(mac);
                if (!spec->nics[i].mac)
                        return -ENOMEM;
        }
        return 0;
}

/* Held from the conflict check to the insert, so that two defines cannot both take one tap. */
static pthread_mutex_t define_lock = PTHREAD_MUTEX_INITIALIZER;

static int create_locked(Manager *m, json_object *body, bool check_files, const char *actor, VmRecord **ret,
                         VmError *e);

static int create_internal(Manager *m, json_object *body, bool check_files, const char *actor, VmRecord **ret,
                           VmError *e) {
        pthread_mutex_lock(&define_lock);
        int k = create_locked(m, body, check_files, actor, ret, e);
        pthread_mutex_unlock(&define_lock);
        return k;
}

static int create_locked(Manager *m, json_object *body, bool check_files, const char *actor, VmRecord **ret,
                         VmError *e) {
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        _cleanup_json_ json_object *canon = NULL;
        JsonError je = { .path = "" };
        char uuid[37];
        int k;

        k = vm_spec_from_json(body, &spec, &je);
        if (k >= 0 && check_files)
                k = vm_spec_check_files(spec, &je);
        if (k < 0) {
                json_object_put(e->details);
                e->details = json_object_new_object();
                json_add_string(e->details, "path", je.path);
                json_add_string(e->details, "reason", je.message);
                return vm_error(e, 422, "invalid_argument", "%s: %s", je.path, je.message);
        }
        if (uuid_is_valid(spec->name)) {
                json_object_put(e->details);
                e->details = json_object_new_object();
                json_add_string(e->details, "path", "$.name");
                json_add_string(e->details, "reason", "must not be a UUID (VM ids in paths are a uuid or a name)");
                return vm_error(e, 422, "invalid_argument", "$.name: must not be a UUID (VM ids in paths are a uuid or a name)");
        }
        unsigned max_vcpus = m->config->vm_max_vcpus ?: host_cpus();
        uint64_t max_memory = m->config->vm_max_memory ?: host_memory();
        if (spec->vcpus > max_vcpus || spec->memory > max_memory) {
                bool cpus = spec->vcpus > max_vcpus;
                char a[32], b[32];
                json_object_put(e->details);
                e->details = json_object_new_object();
                json_add_string(e->details, "path", cpus ? "$.vcpus" : "$.memory");
                json_add_uint(e->details, "limit", cpus ? max_vcpus : max_memory);
                if (cpus) {
                        json_add_string(e->details, "reason", "more vCPUs than this host allows per VM");
                        return vm_error(e, 422, "invalid_argument", "$.vcpus: %u exceeds this host's limit of %u vCPUs per VM",
                                        spec->vcpus, max_vcpus);
                }
                json_add_string(e->details, "reason", "more memory than this host allows per VM");
                return vm_error(e, 422, "invalid_argument", "$.memory: %s exceeds this host's limit of %s per VM",
                                format_size(a, sizeof a, spec->memory), format_size(b, sizeof b, max_memory));
        }
        if (spec->nested) {
                NestedHostFacts facts;
                nested_host_facts(&facts);
                if ((k = nested_host_check(&facts, spec->name, "define", e)) < 0)
                        return k;
        }
        if (spec->uuid)
                strscpy(uuid, sizeof uuid, spec->uuid);
        else {
                uuid_generate_str(uuid);
                spec->uuid = strdup(uuid);
                if (!spec->uuid)
                        return vm_error(e, 500, "internal", "out of memory");
        }
        if (nics_fill_mac(spec) < 0)
                return vm_error(e, 500, "internal", "out of memory");
        k = devices_check_conflicts(m, spec, e);
        if (k < 0)
                return k;
        k = vm_spec_to_json(spec, &canon);
        if (k < 0)
                return vm_error(e, 500, "internal", "cannot format the spec: %s", strerror(-k));
        k = store_vm_insert(m->store, uuid, spec->name, "defined", json_to_string(canon));
        if (k == -EEXIST) {
                _cleanup_(vm_record_freep) VmRecord *other = NULL;
                bool by_name = store_vm_get(m->store, spec->name, &other) >= 0 && streq(other->name, spec->name);
                json_object_put(e->details);
                e->details = json_object_new_object();
                json_add_string(e->details, "path", by_name ? "$.name" : "$.uuid");
                json_add_string(e->details, "existing", other ? other->uuid : uuid);
                return vm_error(e, 409, "conflict", "a VM with %s \"%s\" already exists", by_name ? "name" : "uuid",
                                by_name ? spec->name : uuid);
        }
        if (k < 0)
                return vm_error(e, 500, "internal", "inventory: %s", strerror(-k));
        k = store_vm_get(m->store, uuid, ret);
        if (k < 0)
                return vm_error(e, 500, "internal", "inventory: %s", strerror(-k));
        vm_event(m, actor, *ret, NULL, "create", "ok", NULL);
        vm_log(LOG_INFO, 0, uuid, spec->name, "VM %s defined (%u vCPUs, %llu bytes)", spec->name, spec->vcpus,
               (unsigned long long) spec->memory);
        return 0;
}

int vms_create(Manager *m, json_object *body, const char *actor, VmRecord **ret, VmError *e) {
        return create_internal(m, body, true, actor, ret, e);
}

int vms_create_restored(Manager *m, json_object *spec, const char *actor, VmRecord **ret, VmError *e) {
        return create_internal(m, spec, false, actor, ret, e);
}

int vms_control(Manager *m, const char *id, const char *method, json_object *params, json_object **ret, VmError *e) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        _cleanup_free_ char *ctl = NULL, *code = NULL, *msg = NULL;
        int k = load(m, id, &r, e);
        if (k < 0)
                return k;
        if (!state_is(r, "running", "paused", NULL))
                return vm_error_state(e, r, method);
        if (vm_control_path(m, r->uuid, &ctl) < 0)
                return vm_error(e, 500, "internal", "out of memory");
        k = vmm_control_call(ctl, method, params, CONTROL_TIMEOUT_MS, ret, &code, &msg);
        if (k == 1) {
                unsigned status = streq(code, "invalid_argument") ? 422 : streq(code, "unsupported") ? 422
                                  : streq(code, "invalid_state")  ? 409 : 500;
                return vm_error(e, status, status == 500 ? "vmm_failed" : code, "%s", msg);
        }
        if (k < 0)
                return vm_error(e, 500, "vmm_failed", "the VMM of \"%s\" did not answer %s: %s", r->name, method, strerror(-k));
        return 0;
}

int vms_locked(Manager *m, const char *id, VmLockedFn fn, void *userdata, VmError *e) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        _cleanup_free_ char *ctl = NULL;
        VmRuntime *rt;
        int k = with_vm(m, id, &rt, e);
        if (k < 0)
                return k;
        k = load(m, rt->uuid, &r, e);
        if (k >= 0 && state_is(r, "running", "paused", NULL) && vm_control_path(m, r->uuid, &ctl) < 0)
                k = vm_error(e, 500, "internal", "out of memory");
        if (k >= 0)
                k = fn(m, r, ctl, userdata, e);
        release_vm(rt);
        return k;
}

bool vms_vmm_alive(Manager *m, const char *uuid) {
        VmRuntime *rt = runtime_get(m->vms, uuid, false);
        bool alive = false;
        if (rt) {
                pthread_mutex_lock(&rt->lock);
                alive = rt->watching && !rt->exited;
                pthread_mutex_unlock(&rt->lock);
                runtime_unref(rt);
        }
        return alive;
}

int vms_count_by_state(Manager *m, json_object **ret) {
        static const char *const states[] = { "defined", "starting", "running", "paused", "stopping", "stopped", "crashed" };
        _cleanup_json_ json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(states); i++) {
                unsigned n;
                int k = store_vm_count(m->store, states[i], NULL, &n);
                if (k < 0)
                        return k;
                json_add_uint(o, states[i], n);
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* ---- exits nobody asked for ---- */

static const char *spec_string(const VmRecord *r, const char *key, const char *fallback, char *buf, size_t n) {
        _cleanup_json_ json_object *spec = NULL;
        json_object *v;
        if (json_parse(r->spec, strlen(r->spec), 64, &spec, NULL) >= 0 && json_object_object_get_ex(spec, key, &v) &&
            json_object_is_type(v, json_type_string)) {
                strscpy(buf, n, json_object_get_string(v));
                return buf;
        }
        return fallback;
}

/* Rate limit for automatic restarts: true if one more is allowed now (op_lock held). */
static bool restart_allowed(Manager *m, VmRuntime *rt) {
        uint64_t now = now_monotonic_usec();
        unsigned kept = 0;
        for (unsigned i = 0; i < rt->n_restarts; i++)
                if (now - rt->restarts[i] < RESTART_WINDOW_USEC)
                        rt->restarts[kept++] = rt->restarts[i];
        rt->n_restarts = kept;
        if (kept >= m->config->restart_limit || kept >= RESTART_HISTORY)
                return false;
        rt->restarts[rt->n_restarts++] = now;
        return true;
}

static void handle_exit(Manager *m, VmRuntime *rt, uint64_t gen) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        char reason[256], buf[32];
        ExitClass cls;
        VmError e = { 0 };

        pthread_mutex_lock(&rt->op_lock);
        pthread_mutex_lock(&rt->lock);
        bool skip = rt->handled_generation >= gen || rt->generation != gen;
        if (!skip)
                rt->handled_generation = gen;
        cls = rt->exit_class;
        strscpy(reason, sizeof reason, rt->exit_reason);
        pthread_mutex_unlock(&rt->lock);
        if (skip || store_vm_get(m->store, rt->uuid, &r) < 0)
                goto out;

        const char *was = r->state;
        json_object *d = json_object_new_object();
        json_add_string(d, "reason", reason);
        if ((cls == EXIT_SHUTDOWN || cls == EXIT_DEBUG) && !streq(was, "stopping") &&
            streq(spec_string(r, "on_poweroff", "destroy", buf, sizeof buf), "restart")) {
                /* libvirt's on_poweroff=restart: a powered-off guest comes back, within the restart limit */
                store_vm_set_state(m->store, r->uuid, was, "stopped", 0, 0, NULL, reason);
                vm_event(m, "kvmfleetd", r, NULL, "poweroff", "ok", d);
                if (restart_allowed(m, rt)) {
                        if (do_start(m, rt, "kvmfleetd", "poweroff_start", &e) < 0)
                                vm_log(LOG_WARNING, 0, r->uuid, r->name, "Restarting VM %s after its power-off failed: %s", r->name,
                                       e.message);
                } else {
                        store_vm_set_state(m->store, r->uuid, "stopped", "crashed", 0, 0, NULL, "power-off loop: restart limit reached");
                        vm_event(m, "kvmfleetd", r, NULL, "restart_limit", "failed", d);
                }
        } else if (streq(was, "stopping") || cls == EXIT_STOPPED || cls == EXIT_SHUTDOWN || cls == EXIT_DEBUG ||
                   cls == EXIT_SETUP_FAILED ||
            (cls == EXIT_RESET && streq(spec_string(r, "on_reboot", "restart", buf, sizeof buf), "destroy"))) {
                store_vm_set_state(m->store, r->uuid, was, "stopped", 0, 0, NULL, reason);
                vm_event(m, "kvmfleetd", r, NULL, streq(was, "stopping") ? "stop" : "exit", "ok", d);
                vm_log(LOG_INFO, 0, r->uuid, r->name, "VM %s ended: %s", r->name, reason);
        } else if (cls == EXIT_RESET) {
                store_vm_set_state(m->store, r->uuid, was, "stopped", 0, 0, NULL, reason);
                vm_event(m, "kvmfleetd", r, NULL, "reboot", "ok", d);
                if (restart_allowed(m, rt)) {
                        if (do_start(m, rt, "kvmfleetd", "reboot_start", &e) < 0)
                                vm_log(LOG_WARNING, 0, r->uuid, r->name, "Restarting VM %s after its reboot failed: %s", r->name, e.message);
                } else {
                        store_vm_set_state(m->store, r->uuid, "stopped", "crashed", 0, 0, NULL, "reboot loop: restart limit reached");
                        vm_event(m, "kvmfleetd", r, NULL, "restart_limit", "failed", d);
                }
        } else {
                const char *policy = spec_string(r, "on_crash", "destroy", buf, sizeof buf);
                store_vm_set_state(m->store, r->uuid, was, "crashed", 0, 0, NULL, reason);
                json_add_string(d, "on_crash", policy);
                vm_event(m, "kvmfleetd", r, NULL, "crash", "failed", d);
                vm_log(LOG_ERR, 0, r->uuid, r->name, "VM %s crashed: %s (on_crash %s)", r->name, reason, policy);
                if (!streq(policy, "preserve")) {
                        _cleanup_free_ char *ctl = NULL;
                        if (vm_control_path(m, r->uuid, &ctl) >= 0)
                                (void) unlink(ctl);
                }
                if (streq(policy, "restart")) {
                        if (!restart_allowed(m, rt)) {
                                vm_event(m, "kvmfleetd", r, NULL, "restart_limit", "failed", d);
                                vm_log(LOG_ERR, 0, r->uuid, r->name, "VM %s crashed %u times within a minute; not restarting it",
                                       r->name, m->config->restart_limit);
                        } else if (do_start(m, rt, "kvmfleetd", "crash_restart", &e) < 0)
                                vm_log(LOG_WARNING, 0, r->uuid, r->name, "Restarting crashed VM %s failed: %s", r->name, e.message);
                }
        }
        json_object_put(d);
        vm_error_done(&e);
out:
        pthread_mutex_unlock(&rt->op_lock);
}

static void handle_restart(Manager *m, VmRuntime *rt) {
        _cleanup_(vm_record_freep) VmRecord *r = NULL;
        VmError e = { 0 };
        pthread_mutex_lock(&rt->op_lock);
        if (store_vm_get(m->store, rt->uuid, &r) >= 0 && streq(r->state, "crashed") && restart_allowed(m, rt) &&
            do_start(m, rt, "kvmfleetd", "crash_restart", &e) < 0)
                vm_log(LOG_WARNING, 0, r->uuid, r->name, "Restarting crashed VM %s failed: %s", r->name, e.message);
        pthread_mutex_unlock(&rt->op_lock);
        vm_error_done(&e);
}

static void *worker_main(void *userdata) {
        VmSupervisor *s = userdata;
        pthread_mutex_lock(&s->lock);
        for (;;) {
                while (s->n_exits == 0 && !s->worker_stop)
                        pthread_cond_wait(&s->worker_cond, &s->lock);
                if (s->worker_stop)
                        break;
                ExitItem it = s->exits[0];
                memmove(s->exits, s->exits + 1, --s->n_exits * sizeof *s->exits);
                pthread_mutex_unlock(&s->lock);
                if (it.restart)
                        handle_restart(s->manager, it.rt);
                else
                        handle_exit(s->manager, it.rt, it.generation);
                runtime_unref(it.rt);
                pthread_mutex_lock(&s->lock);
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

/* ---- lifetime ---- */

int vm_supervisor_new(Manager *m, VmSupervisor **ret) {
        VmSupervisor *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->manager = m;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->worker_cond, NULL);
        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->wake_fd < 0) {
                int r = -errno;
                vm_supervisor_free(s);
                return r;
        }
        int r = pthread_create(&s->worker, NULL, worker_main, s);
        if (r != 0) {
                vm_supervisor_free(s);
                return -r;
        }
        s->worker_started = true;
        *ret = s;
        return 0;
}

int vm_supervisor_attach_event(VmSupervisor *s) {
        int r = sd_event_add_io(s->manager->event, &s->wake_src, s->wake_fd, EPOLLIN, on_wake, s);
        if (r < 0)
                return r;
        /* watches requested before the loop existed */
        uint64_t one = 1;
        (void) !write(s->wake_fd, &one, sizeof one);
        return 0;
}

VmSupervisor *vm_supervisor_free(VmSupervisor *s) {
        if (!s)
                return NULL;
        if (s->worker_started) {
                pthread_mutex_lock(&s->lock);
                s->worker_stop = true;
                pthread_cond_signal(&s->worker_cond);
                pthread_mutex_unlock(&s->lock);
                pthread_join(s->worker, NULL);
        }
        sd_event_source_disable_unref(s->wake_src);
        for (size_t i = 0; i < s->n_exits; i++)
                runtime_unref(s->exits[i].rt);
        free(s->exits);
        for (size_t i = 0; i < s->n_pending; i++)
                runtime_unref(s->pending[i]);
        free(s->pending);
        for (size_t i = 0; i < s->n_vms; i++) {
                VmRuntime *rt = s->vms[i];
                /* the VMMs keep running: only our watches go */
                if (rt->src) {
                        rt->src = sd_event_source_disable_unref(rt->src);
                        runtime_unref(rt); /* the watch's reference */
                }
                runtime_unref(rt);
        }
        free(s->vms);
        if (s->wake_fd >= 0)
                close(s->wake_fd);
        pthread_cond_destroy(&s->worker_cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

/* ---- reconciliation at start ---- */

/* Adopts the VMM recorded for r if it is the same process (pid + start time) and answers on its
 * control socket; returns its state ("running"/"paused") or NULL. */
static const char *try_adopt(Manager *m, const VmRecord *r, VmRuntime *rt, char *state, size_t state_size, char *why,
                             size_t why_size) {
        _cleanup_free_ char *ctl = NULL;
        _cleanup_json_ json_object *status = NULL;
        json_object *v;
        pid_t pid = (pid_t) r->vmm_pid;
        uint64_t st = 0;

        if (vm_control_path(m, r->uuid, &ctl) < 0) {
                snprintf(why, why_size, "out of memory");
                return NULL;
        }
        if (vmm_control_call(ctl, "status", NULL, 2000, &status, NULL, NULL) != 0) {
                if (pid > 0 && proc_start_time(pid, &st) >= 0 && st == r->vmm_start_time)
                        snprintf(why, why_size, "VMM pid %d is alive but does not answer on %s", (int) pid, ctl);
                else
                        snprintf(why, why_size, "VMM (pid %lld) is gone", (long long) r->vmm_pid);
                return NULL;
        }
        /* a VMM that started before the agent recorded its pid still names itself */
        if (json_object_object_get_ex(status, "pid", &v) && json_object_is_type(v, json_type_int) && pid <= 0)
                pid = (pid_t) json_object_get_int64(v);
        if (!json_object_object_get_ex(status, "pid", &v) || json_object_get_int64(v) != pid) {
                snprintf(why, why_size, "the VMM on %s is pid %lld, not the recorded %d", ctl,
                         v ? (long long) json_object_get_int64(v) : -1LL, (int) pid);
                return NULL;
        }
        if (proc_start_time(pid, &st) < 0 || (r->vmm_start_time && st != r->vmm_start_time)) {
                snprintf(why, why_size, "pid %d was reused (start time %llu, recorded %llu)", (int) pid,
                         (unsigned long long) st, (unsigned long long) r->vmm_start_time);
                return NULL;
        }
        int pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) {
                snprintf(why, why_size, "pidfd_open(%d): %s", (int) pid, strerror(errno));
                return NULL;
        }
        uint64_t st2 = 0;
        if (proc_start_time(pid, &st2) < 0 || st2 != st) { /* exited and reused between the checks */
                close(pidfd);
                snprintf(why, why_size, "VMM pid %d exited while being adopted", (int) pid);
                return NULL;
        }
        pthread_mutex_lock(&rt->lock);
        rt->pid = pid;
        rt->pidfd = pidfd;
        rt->child = false;
        rt->generation++;
        rt->watching = true;
        rt->exited = false;
        pthread_mutex_unlock(&rt->lock);
        if (watch(m->vms, rt) < 0) {
                snprintf(why, why_size, "out of memory");
                return NULL;
        }
        store_vm_set_state(m->store, r->uuid, NULL, r->state, pid, st, ctl, NULL);
        strscpy(state, state_size, json_object_object_get_ex(status, "state", &v) && streq(json_object_get_string(v), "paused")
                                            ? "paused" : "running");
        return state;
}

static void report_orphans(Manager *m, VmRecord **recs, size_t n) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/vms", m->config->run_dir) < 0)
                return;
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                char uuid[37];
                const char *dot = strrchr(de->d_name, '.');
                if (!dot || !streq(dot, ".sock") || (size_t) (dot - de->d_name) != 36)
                        continue;
                memcpy(uuid, de->d_name, 36);
                uuid[36] = 0;
                bool known = false;
                for (size_t i = 0; i < n && !known; i++)
                        known = streq(recs[i]->uuid, uuid) && state_is(recs[i], "running", "paused", "starting");
                if (known)
                        continue;
                _cleanup_free_ char *path = NULL;
                _cleanup_json_ json_object *status = NULL;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
                        continue;
                if (vmm_control_call(path, "status", NULL, 1000, &status, NULL, NULL) != 0)
                        continue; /* nothing answers: a stale socket file */
                json_object *pid = NULL;
                json_object_object_get_ex(status, "pid", &pid);
                json_object *dd = json_object_new_object();
                json_add_string(dd, "control_socket", path);
                json_add_int(dd, "pid", pid ? json_object_get_int64(pid) : 0);
                vm_event(m, "kvmfleetd", NULL, uuid, "orphan_vmm", "reported", dd);
                json_object_put(dd);
                vm_log(LOG_WARNING, 0, uuid, NULL,
                       "A VMM (pid %lld) answers on %s but the inventory has no running VM %s; leaving it alone",
                       pid ? (long long) json_object_get_int64(pid) : 0LL, path, uuid);
        }
        closedir(d);
}

int vms_reconcile(Manager *m) {
        VmRecord **recs = NULL;
        size_t n = 0;
        unsigned adopted = 0, lost = 0;
        int k = store_vm_records(m->store, &recs, &n);
        if (k < 0)
                return log_error_errno(k, "Failed to read the VMs from the inventory: %m");
        for (size_t i = 0; i < n; i++) {
                VmRecord *r = recs[i];
                if (!state_is(r, "starting", "running", "paused") && !streq(r->state, "stopping"))
                        continue;
                _cleanup_(runtime_unrefp) VmRuntime *rt = runtime_get(m->vms, r->uuid, true);
                char why[400] = "", state_buf[16];
                if (!rt)
                        return log_error_errno(-ENOMEM, "Out of memory");
                const char *state = try_adopt(m, r, rt, state_buf, sizeof state_buf, why, sizeof why);
                json_object *d = json_object_new_object();
                if (state) {
                        adopted++;
                        json_add_int(d, "pid", r->vmm_pid);
                        json_add_string(d, "was", r->state);
                        if (streq(r->state, "stopping")) {
                                /* finish what the previous agent started */
                                _cleanup_free_ char *ctl = NULL;
                                if (vm_control_path(m, r->uuid, &ctl) >= 0)
                                        vmm_control_call(ctl, "stop", NULL, CONTROL_TIMEOUT_MS, NULL, NULL, NULL);
                        } else {
                                store_vm_set_state(m->store, r->uuid, r->state, state, -1, 0, NULL, NULL);
                                _cleanup_free_ char *ctl = NULL;
                                if (vm_control_path(m, r->uuid, &ctl) >= 0)
                                        memslots_sync(m, r->uuid, r->name, ctl); /* what the VMM has now is the truth */
                        }
                        vm_event(m, "kvmfleetd", r, NULL, "adopt", "ok", d);
                        vm_log(LOG_INFO, 0, r->uuid, r->name, "Adopted VM %s (VMM pid %lld, %s)", r->name,
                               (long long) r->vmm_pid, state);
                } else {
                        lost++;
                        const char *to = streq(r->state, "stopping") ? "stopped" : "crashed";
                        json_add_string(d, "reason", why);
                        json_add_string(d, "was", r->state);
                        store_vm_set_state(m->store, r->uuid, r->state, to, 0, 0, NULL, why);
                        memslots_vmm_ended(m, r->uuid);
                        vm_event(m, "kvmfleetd", r, NULL, streq(to, "stopped") ? "stop" : "crash", streq(to, "stopped") ? "ok" : "failed", d);
                        vm_log(LOG_WARNING, 0, r->uuid, r->name, "VM %s was %s but %s: now %s", r->name, r->state, why, to);
                        _cleanup_free_ char *ctl = NULL;
                        if (vm_control_path(m, r->uuid, &ctl) >= 0)
                                (void) unlink(ctl);
                        char buf[32];
                        if (streq(to, "crashed") && streq(spec_string(r, "on_crash", "destroy", buf, sizeof buf), "restart"))
                                queue_work(m->vms, rt, 0, true); /* on the worker, once the loop watches exits */
                }
                json_object_put(d);
        }
        report_orphans(m, recs, n);
        vm_record_array_free(recs, n);
        if (adopted || lost)
                log_info("Reconciled the inventory: %u VM(s) adopted, %u lost", adopted, lost);
        return 0;
}
