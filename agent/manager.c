/* SPDX-License-Identifier: MIT */
#include "manager.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "apicv-trace.h"
#include "fd-util.h"
#include "http-server.h"
#include "json-util.h"
#include "log.h"
#include "str-util.h"
#include "time-util.h"

int manager_new(const char *config_path, AgentConfig *config, Manager **ret) {
        Manager *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->config = config;
        m->unix_fd = -1;
        if (config_path && !(m->config_path = strdup(config_path))) {
                free(m);
                return -ENOMEM;
        }
        m->start_realtime_usec = now_realtime_usec();
        m->start_monotonic_usec = now_monotonic_usec();
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        if (m->http_unix)
                MHD_stop_daemon(m->http_unix);
        if (m->http_tcp)
                MHD_stop_daemon(m->http_tcp);
        /* after the HTTP threads, which use it; the VMMs keep running */
        vm_supervisor_free(m->vms);
        apicv_trace_free(m->apicv_trace);
        if (m->unix_fd >= 0) {
                close(m->unix_fd);
                unlink(m->config->socket_path);
        }
        sd_event_unref(m->event);
        store_free(m->store);
        agent_config_free(m->config);
        cpu_placement_done(&m->placement);
        free(m->config_path);
        if (m->token)
                explicit_bzero(m->token, strlen(m->token));
        free(m->token);
        free(m);
        return NULL;
}

/* The journal fields of an event: VM_UUID and VM_NAME for "vm/UUID" objects, MEMSLOT and VCPU when
 * the detail names them, so that `journalctl VM_UUID=...` or `MEMSLOT=3` finds every action. */
static void event_log(const char *actor, const char *object, const char *action, const char *result,
                      json_object *detail) {
        char f_uuid[64] = "", f_name[160] = "", f_slot[48] = "", f_vcpu[32] = "", f_actor[160];
        const char *fields[6];
        size_t n = 0;
        json_object *v, *slot;

        const char *uuid = startswith(object, "vm/");
        if (uuid) {
                snprintf(f_uuid, sizeof f_uuid, "VM_UUID=%s", uuid);
                fields[n++] = f_uuid;
        }
        if (detail && json_object_object_get_ex(detail, "name", &v) && json_object_is_type(v, json_type_string)) {
                snprintf(f_name, sizeof f_name, "VM_NAME=%s", json_object_get_string(v));
                fields[n++] = f_name;
        }
        /* the slot is in detail.memslot.slot (memslot changes) or detail.slot */
        if (detail && !json_object_object_get_ex(detail, "memslot", &slot))
                slot = detail;
        if (detail && json_object_object_get_ex(slot, "slot", &v) && json_object_is_type(v, json_type_int)) {
                snprintf(f_slot, sizeof f_slot, "MEMSLOT=%lld", (long long) json_object_get_int64(v));
                fields[n++] = f_slot;
        }
        if (detail && json_object_object_get_ex(detail, "vcpu", &v) && json_object_is_type(v, json_type_int)) {
                snprintf(f_vcpu, sizeof f_vcpu, "VCPU=%lld", (long long) json_object_get_int64(v));
                fields[n++] = f_vcpu;
        }
        if (!result)
                result = "";
        snprintf(f_actor, sizeof f_actor, "ACTOR=%s", actor ? actor : "");
        fields[n++] = f_actor;
        fields[n] = NULL;
        log_struct(streq(result, "failed") ? LOG_WARNING : LOG_INFO, 0, fields, "%s %s: %s (by %s)", object, action,
                   result, actor);
}

void manager_event(Manager *m, const char *actor, const char *object, const char *action, const char *result,
                   json_object *detail) {
        int r = store_event_append(m->store, actor, object, action, result, detail, NULL);
        if (r < 0)
                log_error_errno(r, "Failed to record event %s %s by %s: %m", action, object, actor);
        event_log(actor, object, action, result, detail);
}

/* The TCP token: read it, or create it (random, 0600) on first start. */
static int load_token(Manager *m) {
        _cleanup_free_ char *token = NULL;
        int r = read_one_line_file(m->config->token_file, &token);
        if (r == -ENOENT) {
                unsigned char raw[32];
                char hex[65];
                if (getrandom(raw, sizeof raw, 0) != sizeof raw)
                        return -errno;
                for (size_t i = 0; i < sizeof raw; i++)
                        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
                explicit_bzero(raw, sizeof raw);
                hex[64] = '\n';
                r = write_file_atomic(m->config->token_file, hex, 65, 0600);
                hex[64] = 0;
                if (r < 0)
                        return log_error_errno(r, "Failed to create token file %s: %m", m->config->token_file);
                log_info("Created API token file %s", m->config->token_file);
                token = strdup(hex);
                explicit_bzero(hex, sizeof hex);
                if (!token)
                        return -ENOMEM;
        } else if (r < 0)
                return log_error_errno(r, "Failed to read token file %s: %m", m->config->token_file);
        struct stat st;
        if (stat(m->config->token_file, &st) == 0 && (st.st_mode & 077))
                log_warning("Token file %s is accessible by group or others (mode %04o); it should be 0600",
                            m->config->token_file, st.st_mode & 07777);
        if (strlen(strstrip(token)) < 16)
                return log_error_errno(-EINVAL, "Token in %s is shorter than 16 characters", m->config->token_file);
        m->token = TAKE_PTR(token);
        return 0;
}

int manager_ingest_kvm_setup(Manager *m) {
        _cleanup_free_ char *text = NULL;
        int64_t id;
        int r = read_full_file(m->config->kvm_setup_report, 4 << 20, &text, NULL);
        if (r == -ENOENT) {
                log_info("No KVM setup report at %s (kvmfleet-load has not run)", m->config->kvm_setup_report);
                return 0;
        }
        if (r < 0)
                return log_warning_errno(r, "Failed to read KVM setup report %s: %m", m->config->kvm_setup_report);
        r = store_kvm_setup_ingest(m->store, text, &id);
        if (r < 0) {
                json_object *d = json_object_new_object();
                json_add_string(d, "path", m->config->kvm_setup_report);
                json_add_string(d, "error", strerror(-r));
                manager_event(m, "kvmfleetd", "host", "kvm_setup_ingest", "failed", d);
                json_object_put(d);
                return log_warning_errno(r, "Failed to ingest KVM setup report %s: %m", m->config->kvm_setup_report);
        }
        log_info("Ingested KVM setup report %s as #%lld", m->config->kvm_setup_report, (long long) id);
        return 1;
}

/* After reconciliation, so that the adopted VMMs are known: their threads join the trace's pid filter. */
static int manager_start_apicv_trace(Manager *m) {
        _cleanup_free_ char *state_file = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        VmRecord **records = NULL;
        size_t n = 0, n_pids = 0;
        int r = store_vm_records(m->store, &records, &n);
        if (r < 0)
                return r;
        pids = calloc(n + 1, sizeof *pids);
        if (!pids) {
                vm_record_array_free(records, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (records[i]->vmm_pid > 0)
                        pids[n_pids++] = (pid_t) records[i]->vmm_pid;
        vm_record_array_free(records, n);
        if (asprintf(&state_file, "%s/apicv-live.json", m->config->state_dir) < 0)
                return -ENOMEM;
        r = apicv_trace_start(state_file, pids, n_pids, &m->apicv_trace);
        if (r < 0)
                return r;
        const char *unavailable = apicv_trace_unavailable(m->apicv_trace);
        if (unavailable)
                log_info("APICv live inhibit tracking is unavailable: %s", unavailable);
        else
                log_debug("APICv live inhibit tracking runs in tracefs instance " APICV_TRACE_INSTANCE);
        return 0;
}

int manager_startup(Manager *m) {
        const AgentConfig *c = m->config;
        struct utsname u;
        unsigned version;
        int r;

        r = mkdir_p(c->state_dir, 0750);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m", c->state_dir);
        r = mkdir_p(c->run_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create run directory %s: %m", c->run_dir);

        r = store_open(c->inventory, &m->store);
        if (r == -EPROTONOSUPPORT) {
                if (store_file_version(c->inventory, &version) >= 0)
                        return log_error_errno(r, "Inventory %s has schema version %u, newer than this kvmfleetd (%s) "
                                                  "supports (%u): refusing to open it; upgrade kvmfleetd",
                                               c->inventory, version, KVMFLEET_VERSION, store_latest_version());
                return log_error_errno(r, "Inventory %s is from a newer kvmfleetd", c->inventory);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to open inventory %s: %m", c->inventory);
        uname(&u);
        _cleanup_free_ char *machine_id = NULL;
        read_one_line_file("/etc/machine-id", &machine_id);
        r = store_host_touch(m->store, u.nodename, machine_id, KVMFLEET_VERSION);
        if (r < 0)
                return log_error_errno(r, "Failed to write host row to the inventory: %m");

        manager_ingest_kvm_setup(m);

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create event loop: %m");
        r = vm_supervisor_new(m, &m->vms);
        if (r < 0)
                return log_error_errno(r, "Failed to start the VM supervisor: %m");
        r = vm_supervisor_attach_event(m->vms);
        if (r < 0)
                return log_error_errno(r, "Failed to watch VMMs: %m");
        /* before the API opens: requests see a reconciled inventory */
        r = vms_reconcile(m);
        if (r < 0)
                return r;
        r = manager_start_apicv_trace(m);
        if (r < 0)
                return log_error_errno(r, "Failed to start APICv inhibit tracking: %m");

        if (c->listen_tcp) {
                r = load_token(m);
                if (r < 0)
                        return r;
        }
        r = http_server_start_unix(m, &m->unix_fd, &m->http_unix);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", c->socket_path);
        if (c->listen_tcp) {
                r = http_server_start_tcp(m, &m->http_tcp);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on TCP %s: %m", c->listen_tcp);
        }
        json_object *d = json_object_new_object();
        json_add_string(d, "version", KVMFLEET_VERSION);
        json_add_int(d, "pid", getpid());
        json_add_string(d, "socket", c->socket_path);
        json_add_string(d, "listen_tcp", c->listen_tcp);
        manager_event(m, "kvmfleetd", "agent", "start", "ok", d);
        json_object_put(d);
        return 0;
}

int manager_reload(Manager *m) {
        _cleanup_(agent_config_freep) AgentConfig *fresh = NULL;
        _cleanup_free_ char *error = NULL;
        if (m->config_path) {
                int r = agent_config_load(m->config_path, &fresh, &error);
                if (r < 0)
                        log_error("Reload: %s; keeping the running configuration", error ? error : strerror(-r));
                else if (fresh->log_level != m->config->log_level) {
                        m->config->log_level = fresh->log_level;
                        log_set_max_level(fresh->log_level);
                        log_info("Log level is now %s", log_level_to_string(fresh->log_level));
                }
        }
        manager_ingest_kvm_setup(m);
        manager_event(m, "kvmfleetd", "agent", "reload", "ok", NULL);
        return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        log_info("Received %s, stopping", strsignal((int) si->ssi_signo));
        sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
        return sd_event_exit(m->event, 0);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        log_info("Received SIGHUP, reloading");
        sd_notify(0, "RELOADING=1");
        manager_reload(m);
        sd_notify(0, "READY=1\nSTATUS=Serving");
        return 0;
}

int manager_run(Manager *m) {
        int r;

        /* SIGTERM, SIGINT and SIGHUP are blocked by the caller before any thread starts. */
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m)) < 0)
                return log_error_errno(r, "Failed to watch signals: %m");
        /* Pings WATCHDOG=1 at half of WATCHDOG_USEC from the loop itself, so a stuck loop is noticed. */
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                return log_error_errno(r, "Failed to enable the watchdog: %m");
        m->watchdog = r > 0;

        sd_notifyf(0, "READY=1\nSTATUS=Serving on %s%s%s\nMAINPID=%d", m->config->socket_path,
                   m->config->listen_tcp ? " and TCP " : "", m->config->listen_tcp ? m->config->listen_tcp : "", getpid());
        log_info("kvmfleetd %s ready: API on unix:%s%s%s", KVMFLEET_VERSION, m->config->socket_path,
                 m->config->listen_tcp ? " and tcp:" : "", m->config->listen_tcp ? m->config->listen_tcp : "");

        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        manager_event(m, "kvmfleetd", "agent", "stop", "ok", NULL);
        return 0;
}
