/* SPDX-License-Identifier: MIT */
#include "apicv-trace.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "json-util.h"
#include "str-util.h"
#include "time-util.h"

#define TRACEFS "/sys/kernel/tracing"
#define INSTANCE TRACEFS "/instances/" APICV_TRACE_INSTANCE
#define EVENT_DIR "events/kvm/kvm_apicv_inhibit_changed"
#define VMMS_MAX 256

/* Linux 6.0 to 6.2 (arch/x86/include/asm/kvm_host.h, enum kvm_apicv_inhibit); bit 0 is spelled
 * APICV_INHIBIT_REASON_DISABLE there. Checked against the BTF of Debian's 6.1.192 kernel: the 6.1.y
 * stable updates did not add the later reasons. */
static const char *const reasons_6_1[] = {
        "DISABLED",  "HYPERV", "ABSENT", "BLOCKIRQ", "APIC_ID_MODIFIED", "APIC_BASE_MODIFIED", "NESTED", "IRQWIN",
        "PIT_REINJ", "SEV",
};
/* Linux 6.3 to 6.8: PHYSICAL_ID_ALIASED went in after BLOCKIRQ, X2APIC and LOGICAL_ID_ALIASED at the end. */
static const char *const reasons_6_3[] = {
        "DISABLED",           "HYPERV", "ABSENT", "BLOCKIRQ",  "PHYSICAL_ID_ALIASED", "APIC_ID_MODIFIED",
        "APIC_BASE_MODIFIED", "NESTED", "IRQWIN", "PIT_REINJ", "SEV",                 "X2APIC",
        "LOGICAL_ID_ALIASED",
};
/* Linux 6.9 and later generate the enum and the tracepoint's names from one list. */
static const char *const reasons_6_9[] = {
        "DISABLED",           "HYPERV", "ABSENT", "BLOCKIRQ",  "PHYSICAL_ID_ALIASED", "APIC_ID_MODIFIED",
        "APIC_BASE_MODIFIED", "NESTED", "IRQWIN", "PIT_REINJ", "SEV",                 "LOGICAL_ID_ALIASED",
        "PHYSICAL_ID_TOO_BIG",
};

static void table_fill(ApicvReasonTable *t, const char *const *names, size_t n, const char *source) {
        memset(t, 0, sizeof *t);
        for (size_t i = 0; i < n && i < APICV_REASONS_MAX; i++)
                strscpy(t->names[i], sizeof t->names[i], names[i]);
        t->n = (unsigned) MIN(n, (size_t) APICV_REASONS_MAX);
        strscpy(t->source, sizeof t->source, source);
}

void apicv_reason_table_for(const char *release, const char *format_text, ApicvReasonTable *ret) {
        unsigned major = 0, minor = 0;
        char source[96];

        if (format_text) {
                ApicvReasonTable t = {};
                const char *p = strstr(format_text, "__print_flags");
                while (p && (p = strstr(p, "APICV_INHIBIT_REASON_")) && t.n < APICV_REASONS_MAX) {
                        p += strlen("APICV_INHIBIT_REASON_");
                        size_t l = 0;
                        while (isalnum((unsigned char) p[l]) || p[l] == '_')
                                l++;
                        if (l == 0 || l >= sizeof t.names[0])
                                break;
                        memcpy(t.names[t.n], p, l);
                        /* DISABLE (older spelling) and DISABLED are the same bit 0. */
                        if (t.n == 0 && streq(t.names[0], "DISABLE"))
                                strscpy(t.names[0], sizeof t.names[0], "DISABLED");
                        t.n++;
                        p += l;
                }
                if (t.n > 0) {
                        snprintf(t.source, sizeof t.source, "tracepoint format of linux %.40s", release);
                        *ret = t;
                        return;
                }
        }
        (void) sscanf(release, "%u.%u", &major, &minor);
        if (major > 6 || (major == 6 && minor >= 9)) {
                snprintf(source, sizeof source, "built-in table for linux 6.9+ (running %.40s)", release);
                table_fill(ret, reasons_6_9, ELEMENTSOF(reasons_6_9), source);
        } else if (major == 6 && minor >= 3) {
                snprintf(source, sizeof source, "built-in table for linux 6.3 to 6.8 (running %.40s)", release);
                table_fill(ret, reasons_6_3, ELEMENTSOF(reasons_6_3), source);
        } else {
                snprintf(source, sizeof source, "built-in table for linux 6.1 (running %.40s)", release);
                table_fill(ret, reasons_6_1, ELEMENTSOF(reasons_6_1), source);
        }
}

const char *apicv_reason_name(const ApicvReasonTable *t, unsigned bit) {
        return bit < t->n && t->names[bit][0] ? t->names[bit] : NULL;
}

json_object *apicv_reason_names_json(const ApicvReasonTable *t, uint64_t inhibits) {
        json_object *arr = json_object_new_array();
        if (!arr)
                return NULL;
        for (unsigned b = 0; b < 64; b++) {
                if (!(inhibits & (1ULL << b)))
                        continue;
                char unknown[16];
                const char *name = apicv_reason_name(t, b);
                if (!name) {
                        snprintf(unknown, sizeof unknown, "BIT%u", b);
                        name = unknown;
                }
                json_object_array_add(arr, json_object_new_string(name));
        }
        return arr;
}

/* "  kvmfleet-vmm-30693   [000] .....  4251.204857: kvm_apicv_inhibit_changed: set reason=0, inhibits=0x1 DISABLED"
 * The task name may hold spaces and dashes: the pid is the number before the first " [NNN]". */
int apicv_trace_parse_line(const char *line, ApicvTraceEvent *ret) {
        ApicvTraceEvent ev = {};
        const char *marker = strstr(line, ": kvm_apicv_inhibit_changed: ");
        if (!marker)
                return -ENOMSG;

        const char *cpu = NULL;
        for (const char *p = line; p < marker; p++)
                if (p[0] == '[' && p > line && p[-1] == ' ' && isdigit((unsigned char) p[1])) {
                        cpu = p;
                        break;
                }
        if (!cpu)
                return -EINVAL;
        const char *end = cpu;
        while (end > line && end[-1] == ' ')
                end--;
        const char *start = end;
        while (start > line && isdigit((unsigned char) start[-1]))
                start--;
        if (start == end || start == line || start[-1] != '-')
                return -EINVAL;
        ev.tid = (pid_t) strtol(start, NULL, 10);

        /* The timestamp "SECONDS.MICROS" ends right at the marker. */
        const char *ts = marker;
        while (ts > line && (isdigit((unsigned char) ts[-1]) || ts[-1] == '.'))
                ts--;
        unsigned long long sec, usec;
        if (sscanf(ts, "%llu.%6llu", &sec, &usec) != 2)
                return -EINVAL;
        ev.timestamp_usec = sec * 1000000ULL + usec;

        const char *body = marker + strlen(": kvm_apicv_inhibit_changed: ");
        char what[16];
        unsigned reason;
        unsigned long long inhibits;
        if (sscanf(body, "%15s reason=%u, inhibits=0x%llx", what, &reason, &inhibits) != 3)
                return -EINVAL;
        if (streq(what, "set"))
                ev.set = true;
        else if (!streq(what, "cleared"))
                return -EINVAL;
        ev.reason = reason;
        ev.inhibits = inhibits;
        *ret = ev;
        return 0;
}

/* ---- the tracker ---- */

typedef struct HistoryEntry {
        uint64_t time_usec; /* realtime */
        bool set;
        unsigned reason;
        uint64_t inhibits;
} HistoryEntry;

typedef struct VmmState {
        pid_t pid;
        uint64_t start_time;
        uint64_t inhibits;
        uint64_t last_change_usec;
        uint64_t events;
        HistoryEntry history[APICV_HISTORY_MAX]; /* ring, oldest first from history_start */
        unsigned history_start, history_len;
} VmmState;

struct ApicvTrace {
        char *state_file;
        char unavailable[256]; /* why live data is unavailable; "" when available */
        ApicvReasonTable reasons;
        bool boot_clock;
        int pipe_fd;
        int stop_fd;
        pthread_t thread;
        bool thread_started;

        pthread_mutex_t lock;
        VmmState *vmms;
        size_t n_vmms;
        uint64_t lost_events;
};

static int proc_start_time(pid_t pid, uint64_t *ret) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return -EIO;
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        /* Fields after the command: 3 (state) ... 22 (starttime). */
        unsigned long long v = 0;
        int field = 2;
        for (p++; *p && field < 22; p++)
                if (*p == ' ')
                        field++;
        if (sscanf(p, "%llu", &v) != 1)
                return -EIO;
        *ret = v;
        return 0;
}

static pid_t tgid_of(pid_t tid) {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/status", (int) tid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return tid;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return tid;
        buf[n] = '\0';
        const char *p = strstr(buf, "\nTgid:");
        int tgid;
        if (!p || sscanf(p + 6, "%d", &tgid) != 1 || tgid <= 0)
                return tid;
        return (pid_t) tgid;
}

static int write_file(const char *path, const char *text, bool append) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC));
        if (fd < 0)
                return -errno;
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t) len)
                return -errno ?: -EIO;
        return 0;
}

static int read_small_file(const char *path, char **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t cap = 16384, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, cap - 1 - len);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len + 1 >= cap) {
                        char *nb = realloc(buf, cap * 2);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap *= 2;
                }
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

/* All threads of pid as "tid tid ...", appended to buf. */
static void append_tasks(char *buf, size_t n, pid_t pid) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", (int) pid);
        DIR *d = opendir(path);
        if (!d) {
                snprintf(buf + strlen(buf), n - strlen(buf), "%d ", (int) pid);
                return;
        }
        for (struct dirent *de; (de = readdir(d));)
                if (isdigit((unsigned char) de->d_name[0]) && strlen(buf) + strlen(de->d_name) + 2 < n)
                        snprintf(buf + strlen(buf), n - strlen(buf), "%s ", de->d_name);
        closedir(d);
}

static uint64_t clock_usec(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

/* A trace timestamp as wall-clock time: the instance uses the "boot" clock (CLOCK_BOOTTIME), so the
 * conversion holds across agent restarts. */
static uint64_t trace_to_realtime(const ApicvTrace *t, uint64_t ts) {
        uint64_t now_real = clock_usec(CLOCK_REALTIME), now_trace = clock_usec(t->boot_clock ? CLOCK_BOOTTIME : CLOCK_MONOTONIC);
        return ts > now_trace ? now_real : now_real - (now_trace - ts);
}

static VmmState *vmm_find_locked(ApicvTrace *t, pid_t pid, uint64_t start_time) {
        for (size_t i = 0; i < t->n_vmms; i++)
                if (t->vmms[i].pid == pid && t->vmms[i].start_time == start_time)
                        return &t->vmms[i];
        return NULL;
}

static void vmms_prune_dead_locked(ApicvTrace *t) {
        size_t w = 0;
        for (size_t i = 0; i < t->n_vmms; i++) {
                uint64_t st;
                if (proc_start_time(t->vmms[i].pid, &st) >= 0 && st == t->vmms[i].start_time)
                        t->vmms[w++] = t->vmms[i];
        }
        t->n_vmms = w;
}

static VmmState *vmm_get_locked(ApicvTrace *t, pid_t pid, uint64_t start_time) {
        VmmState *v = vmm_find_locked(t, pid, start_time);
        if (v)
                return v;
        if (t->n_vmms >= VMMS_MAX)
                vmms_prune_dead_locked(t);
        if (t->n_vmms >= VMMS_MAX)
                return NULL;
        v = &t->vmms[t->n_vmms++];
        *v = (VmmState){ .pid = pid, .start_time = start_time };
        return v;
}

static void history_push(VmmState *v, const HistoryEntry *h) {
        if (v->history_len < APICV_HISTORY_MAX)
                v->history[(v->history_start + v->history_len++) % APICV_HISTORY_MAX] = *h;
        else {
                v->history[v->history_start] = *h;
                v->history_start = (v->history_start + 1) % APICV_HISTORY_MAX;
        }
}

static void event_apply(ApicvTrace *t, const ApicvTraceEvent *ev) {
        pid_t pid = tgid_of(ev->tid);
        uint64_t start_time = 0;
        if (proc_start_time(pid, &start_time) < 0)
                return; /* the process is gone: nobody can ask about it any more */
        HistoryEntry h = { .time_usec = trace_to_realtime(t, ev->timestamp_usec), .set = ev->set, .reason = ev->reason,
                           .inhibits = ev->inhibits };
        pthread_mutex_lock(&t->lock);
        VmmState *v = vmm_get_locked(t, pid, start_time);
        if (v) {
                v->inhibits = ev->inhibits;
                v->last_change_usec = h.time_usec;
                v->events++;
                history_push(v, &h);
        }
        pthread_mutex_unlock(&t->lock);
}

static int state_save(ApicvTrace *t) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *arr = json_object_new_array();
        if (!o || !arr) {
                json_object_put(arr);
                return -ENOMEM;
        }
        json_add(o, "vmms", arr);
        pthread_mutex_lock(&t->lock);
        json_add_uint(o, "lost_events", t->lost_events);
        for (size_t i = 0; i < t->n_vmms; i++) {
                const VmmState *v = &t->vmms[i];
                json_object *e = json_object_new_object(), *hist = json_object_new_array();
                json_add_int(e, "pid", v->pid);
                json_add_uint(e, "start_time", v->start_time);
                json_add_uint(e, "inhibits", v->inhibits);
                json_add_uint(e, "last_change_usec", v->last_change_usec);
                json_add_uint(e, "events", v->events);
                for (unsigned k = 0; k < v->history_len; k++) {
                        const HistoryEntry *h = &v->history[(v->history_start + k) % APICV_HISTORY_MAX];
                        json_object *he = json_object_new_object();
                        json_add_uint(he, "time_usec", h->time_usec);
                        json_add_bool(he, "set", h->set);
                        json_add_uint(he, "reason", h->reason);
                        json_add_uint(he, "inhibits", h->inhibits);
                        json_object_array_add(hist, he);
                }
                json_add(e, "history", hist);
                json_object_array_add(arr, e);
        }
        pthread_mutex_unlock(&t->lock);

        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", t->state_file) < 0)
                return -ENOMEM;
        const char *text = json_to_string(o);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, text, strlen(text)) != (ssize_t) strlen(text) || fsync(fd) < 0) {
                unlink(tmp);
                return -EIO;
        }
        if (rename(tmp, t->state_file) < 0)
                return -errno;
        return 0;
}

static uint64_t u64_field(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? (uint64_t) json_object_get_int64(v) : 0;
}

static void state_load(ApicvTrace *t) {
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_object *o = NULL;
        json_object *arr;
        JsonError e;
        if (read_small_file(t->state_file, &text) < 0 || json_parse(text, strlen(text), 8, &o, &e) < 0 ||
            !json_object_object_get_ex(o, "vmms", &arr) || !json_object_is_type(arr, json_type_array))
                return;
        t->lost_events = u64_field(o, "lost_events");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *e2 = json_object_array_get_idx(arr, i), *hist;
                pid_t pid = (pid_t) u64_field(e2, "pid");
                uint64_t st = u64_field(e2, "start_time"), now_st;
                if (pid <= 0 || proc_start_time(pid, &now_st) < 0 || now_st != st)
                        continue; /* that VMM is gone */
                VmmState *v = vmm_get_locked(t, pid, st);
                if (!v)
                        break;
                v->inhibits = u64_field(e2, "inhibits");
                v->last_change_usec = u64_field(e2, "last_change_usec");
                v->events = u64_field(e2, "events");
                if (json_object_object_get_ex(e2, "history", &hist) && json_object_is_type(hist, json_type_array))
                        for (size_t k = 0; k < json_object_array_length(hist); k++) {
                                json_object *he = json_object_array_get_idx(hist, k), *b;
                                HistoryEntry h = { .time_usec = u64_field(he, "time_usec"),
                                                   .reason = (unsigned) u64_field(he, "reason"),
                                                   .inhibits = u64_field(he, "inhibits") };
                                h.set = json_object_object_get_ex(he, "set", &b) && json_object_get_boolean(b);
                                history_push(v, &h);
                        }
        }
}

/* Handles every complete line in buf[0..*len), keeps a partial last line; true when state changed. */
static bool lines_process(ApicvTrace *t, char *buf, size_t *len) {
        bool changed = false;
        size_t start = 0;
        for (size_t i = 0; i < *len; i++) {
                if (buf[i] != '\n')
                        continue;
                buf[i] = '\0';
                const char *line = buf + start;
                ApicvTraceEvent ev;
                unsigned long long lost;
                const char *l = strstr(line, "[LOST ");
                if (l && sscanf(l, "[LOST %llu EVENTS]", &lost) == 1) {
                        pthread_mutex_lock(&t->lock);
                        t->lost_events += lost;
                        pthread_mutex_unlock(&t->lock);
                        changed = true;
                } else if (apicv_trace_parse_line(line, &ev) >= 0) {
                        event_apply(t, &ev);
                        changed = true;
                }
                start = i + 1;
        }
        memmove(buf, buf + start, *len - start);
        *len -= start;
        return changed;
}

static void *reader_main(void *userdata) {
        ApicvTrace *t = userdata;
        char buf[16384];
        size_t len = 0;
        for (;;) {
                struct pollfd p[2] = { { .fd = t->pipe_fd, .events = POLLIN }, { .fd = t->stop_fd, .events = POLLIN } };
                /* trace_pipe's wakeups are deferred: read on a timeout too. */
                int k = poll(p, 2, 250);
                if (k < 0 && errno != EINTR)
                        break;
                if (p[1].revents)
                        break;
                bool changed = false;
                for (;;) {
                        if (len >= sizeof buf - 1)
                                len = 0; /* a line longer than the buffer: drop it */
                        ssize_t n = read(t->pipe_fd, buf + len, sizeof buf - 1 - len);
                        if (n <= 0)
                                break;
                        len += (size_t) n;
                        changed |= lines_process(t, buf, &len);
                }
                if (changed)
                        (void) state_save(t);
        }
        return NULL;
}

static int instance_setup(ApicvTrace *t, const pid_t *vmm_pids, size_t n_vmm_pids) {
        struct stat st;
        int r;

        if (stat(TRACEFS "/instances", &st) < 0) {
                if (stat(TRACEFS, &st) < 0) {
                        snprintf(t->unavailable, sizeof t->unavailable, "%s does not exist: this kernel has no tracefs", TRACEFS);
                        return -ENOENT;
                }
                if (mount("nodev", TRACEFS, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
                        snprintf(t->unavailable, sizeof t->unavailable,
                                 "tracefs is not mounted at %s and mounting it failed: %s%s", TRACEFS, strerror(errno),
                                 errno == EPERM ? " (needs root)" : "");
                        return -errno;
                }
        }
        if (mkdir(INSTANCE, 0700) < 0 && errno != EEXIST) {
                snprintf(t->unavailable, sizeof t->unavailable, "cannot create the tracefs instance %s: %s%s", INSTANCE,
                         strerror(errno), errno == EACCES || errno == EPERM ? " (needs root)" : "");
                return -errno;
        }

        _cleanup_free_ char *format = NULL;
        if (read_small_file(INSTANCE "/" EVENT_DIR "/format", &format) < 0) {
                snprintf(t->unavailable, sizeof t->unavailable,
                         "this kernel has no kvm:kvm_apicv_inhibit_changed tracepoint (is kvm loaded?)");
                return -ENOENT;
        }
        struct utsname u;
        uname(&u);
        apicv_reason_table_for(u.release, format, &t->reasons);

        /* Setting the clock clears the buffer: only when it is not boot already (a new instance), so
         * that events from while no agent ran survive. */
        _cleanup_free_ char *clock = NULL;
        if (read_small_file(INSTANCE "/trace_clock", &clock) >= 0 && strstr(clock, "[boot]"))
                t->boot_clock = true;
        else
                t->boot_clock = write_file(INSTANCE "/trace_clock", "boot", false) >= 0;

        /* Only this event, only our processes: the agent's threads (event-fork adds every child and
         * thread they create) and the VMMs already running. */
        char pids[16384] = "";
        append_tasks(pids, sizeof pids, getpid());
        for (size_t i = 0; i < n_vmm_pids; i++)
                append_tasks(pids, sizeof pids, vmm_pids[i]);
        if ((r = write_file(INSTANCE "/options/event-fork", "1", false)) < 0 ||
            (r = write_file(INSTANCE "/set_event_pid", pids, false)) < 0 ||
            (r = write_file(INSTANCE "/set_event", "kvm:kvm_apicv_inhibit_changed", false)) < 0 ||
            (r = write_file(INSTANCE "/tracing_on", "1", false)) < 0) {
                snprintf(t->unavailable, sizeof t->unavailable, "cannot configure the tracefs instance %s: %s", INSTANCE,
                         strerror(-r));
                return r;
        }
        t->pipe_fd = open(INSTANCE "/trace_pipe", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (t->pipe_fd < 0) {
                snprintf(t->unavailable, sizeof t->unavailable, "cannot open %s/trace_pipe: %s", INSTANCE, strerror(errno));
                return -errno;
        }
        return 0;
}

int apicv_trace_start(const char *state_file, const pid_t *vmm_pids, size_t n_vmm_pids, ApicvTrace **ret) {
        ApicvTrace *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->pipe_fd = t->stop_fd = -1;
        pthread_mutex_init(&t->lock, NULL);
        t->vmms = calloc(VMMS_MAX, sizeof *t->vmms);
        t->state_file = strdup(state_file);
        if (!t->vmms || !t->state_file) {
                apicv_trace_free(t);
                return -ENOMEM;
        }
        struct utsname u;
        uname(&u);
        apicv_reason_table_for(u.release, NULL, &t->reasons);

        if (instance_setup(t, vmm_pids, n_vmm_pids) >= 0) {
                state_load(t);
                t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (t->stop_fd < 0 || pthread_create(&t->thread, NULL, reader_main, t) != 0)
                        snprintf(t->unavailable, sizeof t->unavailable, "cannot start the trace reader thread");
                else
                        t->thread_started = true;
        }
        *ret = t;
        return 0;
}

ApicvTrace *apicv_trace_free(ApicvTrace *t) {
        if (!t)
                return NULL;
        if (t->thread_started) {
                uint64_t one = 1;
                (void) !write(t->stop_fd, &one, sizeof one);
                pthread_join(t->thread, NULL);
                (void) state_save(t);
        }
        safe_close(t->pipe_fd);
        safe_close(t->stop_fd);
        pthread_mutex_destroy(&t->lock);
        free(t->vmms);
        free(t->state_file);
        free(t);
        return NULL;
}

void apicv_trace_watch_pid(ApicvTrace *t, pid_t pid) {
        char pids[4096] = "";
        if (!t || t->unavailable[0] || pid <= 0)
                return;
        append_tasks(pids, sizeof pids, pid);
        (void) write_file(INSTANCE "/set_event_pid", pids, true);
}

const ApicvReasonTable *apicv_trace_reasons(ApicvTrace *t) {
        return &t->reasons;
}

int apicv_trace_live_json(ApicvTrace *t, pid_t pid, uint64_t start_time, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        char when[64];
        if (!o)
                return -ENOMEM;
        json_add_string(o, "source", "tracefs instance " APICV_TRACE_INSTANCE ", event kvm:kvm_apicv_inhibit_changed");
        json_add_string(o, "view", "vm-wide");
        json_add_string(o, "reason_table", t ? t->reasons.source : NULL);
        if (!t || t->unavailable[0]) {
                json_add_bool(o, "available", false);
                json_add_string(o, "reason", t ? t->unavailable : "live tracking is not running");
                *ret = TAKE_PTR(o);
                return 0;
        }
        if (pid <= 0) {
                json_add_bool(o, "available", false);
                json_add_string(o, "reason", "no VMM process runs for this VM");
                *ret = TAKE_PTR(o);
                return 0;
        }
        json_add_bool(o, "available", true);
        pthread_mutex_lock(&t->lock);
        json_add_uint(o, "lost_events", t->lost_events);
        const VmmState *v = vmm_find_locked(t, pid, start_time);
        if (!v) {
                json_add(o, "inhibits", NULL);
                json_add(o, "names", json_object_new_array());
                json_add(o, "last_change", NULL);
                json_add_uint(o, "events", 0);
                json_add(o, "history", json_object_new_array());
                json_add_string(o, "detail", "no inhibit change seen for this VMM process yet");
        } else {
                json_add_uint(o, "inhibits", v->inhibits);
                json_add(o, "names", apicv_reason_names_json(&t->reasons, v->inhibits));
                json_add_string(o, "last_change", format_rfc3339(when, sizeof when, v->last_change_usec));
                json_add_uint(o, "events", v->events);
                json_object *hist = json_object_new_array();
                for (unsigned k = 0; k < v->history_len; k++) {
                        const HistoryEntry *h = &v->history[(v->history_start + k) % APICV_HISTORY_MAX];
                        json_object *he = json_object_new_object();
                        const char *name = apicv_reason_name(&t->reasons, h->reason);
                        json_add_string(he, "time", format_rfc3339(when, sizeof when, h->time_usec));
                        json_add_string(he, "change", h->set ? "set" : "cleared");
                        json_add_uint(he, "reason", h->reason);
                        json_add_string(he, "reason_name", name);
                        json_add_uint(he, "inhibits", h->inhibits);
                        json_object_array_add(hist, he);
                }
                json_add(o, "history", hist);
        }
        pthread_mutex_unlock(&t->lock);
        *ret = TAKE_PTR(o);
        return 0;
}

const char *apicv_trace_unavailable(ApicvTrace *t) {
        return t->unavailable[0] ? t->unavailable : NULL;
}
