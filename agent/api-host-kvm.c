/* SPDX-License-Identifier: MIT */
/* Host KVM policy: the nested and APIC virtualization parameters (desired vs effective), the desired
 * parameter set (PUT /v1/host/kvm/params) and applying it (POST /v1/host/kvm/reload). */
#include <cpuid.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "fd-util.h"
#include "host-kvm.h"
#include "json-util.h"
#include "spawn.h"
#include "str-util.h"
#include "time-util.h"

extern char **environ;

#define RELOAD_TIMEOUT_USEC (120 * 1000000ULL)
#define RELOAD_OUTPUT_MAX (64 * 1024)
#define PARAMS_MAX 64

static const char *const kvm_modules[] = { "kvm", "kvm_intel", "kvm_amd", NULL };

/* The value of /sys/module/M/parameters/P, or NULL when the parameter does not exist here. */
static char *sysfs_param(const char *module, const char *name) {
        char path[256];
        char *v = NULL;
        snprintf(path, sizeof path, "/sys/module/%s/parameters/%s", module, name);
        if (read_one_line_file(path, &v) < 0)
                return NULL;
        strstrip(v);
        return v;
}

static bool module_present(const char *module) {
        char path[128];
        snprintf(path, sizeof path, "/sys/module/%s", module);
        return access(path, F_OK) == 0;
}

bool kvm_param_truthy(const char *v) {
        return v && (streq(v, "1") || streq(v, "Y") || streq(v, "y") || streq(v, "on") || streq(v, "true"));
}

static const char *desired_value(json_object *desired, const char *module, const char *name) {
        for (size_t i = 0; desired && i < json_object_array_length(desired); i++) {
                json_object *d = json_object_array_get_idx(desired, i), *m, *n, *v;
                if (json_object_object_get_ex(d, "module", &m) && json_object_object_get_ex(d, "name", &n) &&
                    json_object_object_get_ex(d, "value", &v) && streq(json_object_get_string(m), module) &&
                    streq(json_object_get_string(n), name))
                        return json_object_get_string(v);
        }
        return NULL;
}

/* {"module","name","present","effective","desired","in_effect"} for one parameter. */
static json_object *param_view(json_object *desired, const char *module, const char *name) {
        _cleanup_free_ char *effective = sysfs_param(module, name);
        const char *want = desired_value(desired, module, name);
        json_object *o = json_object_new_object();
        json_add_string(o, "module", module);
        json_add_string(o, "name", name);
        json_add_bool(o, "present", effective != NULL);
        json_add_string(o, "effective", effective);
        json_add_string(o, "desired", want);
        if (want && effective)
                json_add_bool(o, "in_effect", streq(want, effective) || (kvm_param_truthy(want) == kvm_param_truthy(effective) &&
                                                                      (isalpha((unsigned char) effective[0]) || isalpha((unsigned char) want[0]))));
        else
                json_add(o, "in_effect", NULL);
        return o;
}

static const char *vendor_module(void) {
        if (module_present("kvm_intel"))
                return "kvm_intel";
        if (module_present("kvm_amd"))
                return "kvm_amd";
        return NULL;
}

/* CPUID 0x8000000A EDX bit 13 (AMD AVIC); the VMX secondary processor-based controls MSR (0x48b)
 * allowed-1 bits 8 (APIC-register virtualization) and 9 (virtual-interrupt delivery) for Intel
 * APICv, read through /dev/cpu/0/msr (the msr module) when it is there. */
static json_object *apicv_cpu_feature(void) {
        unsigned a, b, c, d;
        char vendor[13] = "";
        json_object *o = json_object_new_object();
        if (__get_cpuid(0, &a, &b, &c, &d)) {
                memcpy(vendor, &b, 4);
                memcpy(vendor + 4, &d, 4);
                memcpy(vendor + 8, &c, 4);
        }
        if (streq(vendor, "AuthenticAMD") || streq(vendor, "HygonGenuine")) {
                json_add_string(o, "feature", "avic");
                if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x8000000a && __get_cpuid(0x8000000a, &a, &b, &c, &d)) {
                        json_add_bool(o, "supported", (d >> 13) & 1);
                        json_add_string(o, "source", "CPUID 0x8000000A EDX[13]");
                } else {
                        json_add(o, "supported", NULL);
                        json_add_string(o, "source", "CPUID 0x8000000A not available (no SVM exposed to this host)");
                }
        } else if (streq(vendor, "GenuineIntel")) {
                uint64_t msr = 0;
                _cleanup_close_ int fd = open("/dev/cpu/0/msr", O_RDONLY | O_CLOEXEC);
                json_add_string(o, "feature", "apicv");
                if (fd >= 0 && pread(fd, &msr, sizeof msr, 0x48b) == sizeof msr) {
                        json_add_bool(o, "supported", ((msr >> 32) & 0x300) == 0x300);
                        json_add_string(o, "source", "MSR IA32_VMX_PROCBASED_CTLS2 (0x48b) allowed-1 bits 8 and 9");
                } else {
                        json_add(o, "supported", NULL);
                        json_add_string(o, "source", "MSR 0x48b unreadable (no VMX, or the msr module is not loaded)");
                }
        } else {
                json_add_string(o, "feature", NULL);
                json_add(o, "supported", NULL);
                json_add_string(o, "source", "unknown CPU vendor");
        }
        return o;
}

int host_kvm_policy(Manager *m, json_object *o) {
        _cleanup_json_ json_object *desired = NULL;
        int r = store_kvm_params_get(m->store, &desired);
        if (r < 0)
                return r;
        const char *vendor = vendor_module();

        json_object *nested = json_object_new_object();
        json_add_string(nested, "vendor_module", vendor);
        if (vendor)
                json_add(nested, "parameter", param_view(desired, vendor, "nested"));
        else
                json_add(nested, "parameter", NULL);
        json_add_string(nested, "detail", vendor ? NULL : "neither kvm_intel nor kvm_amd is loaded: no nested parameter here");
        json_add(o, "nested", nested);

        json_object *unsafe = param_view(desired, "kvm", "allow_unsafe_mappings");
        json_object *present = NULL;
        json_object_object_get_ex(unsafe, "present", &present);
        if (!json_object_get_boolean(present))
                json_add_string(unsafe, "detail", "this kernel's kvm module has no allow_unsafe_mappings parameter");
        json_add(o, "allow_unsafe_mappings", unsafe);

        json_object *apicv = json_object_new_object(), *params = json_object_new_array();
        json_add(apicv, "cpu", apicv_cpu_feature());
        if (!vendor || streq(vendor, "kvm_intel")) {
                json_object_array_add(params, param_view(desired, "kvm_intel", "enable_apicv"));
                json_object_array_add(params, param_view(desired, "kvm_intel", "enable_ipiv"));
        }
        if (!vendor || streq(vendor, "kvm_amd"))
                json_object_array_add(params, param_view(desired, "kvm_amd", "avic"));
        json_add(apicv, "parameters", params);
        json_add(o, "apicv", apicv);

        json_add(o, "desired_params", TAKE_PTR(desired));
        return 0;
}

bool host_kvm_unsafe_mappings_on(void) {
        _cleanup_free_ char *v = sysfs_param("kvm", "allow_unsafe_mappings");
        return kvm_param_truthy(v);
}

/* PUT /v1/host/kvm/params {"params": {"kvm_amd.nested": 1, ...}, "acknowledge_unsafe": bool} */
int api_host_kvm_params_put(Manager *m, HttpRequest *req, HttpResponse *resp) {
        static const char *const keys[] = { "params", "acknowledge_unsafe", NULL };
        _cleanup_json_ json_object *body = NULL, *list = json_object_new_array(), *detail = NULL;
        json_object *params;
        JsonError je = { .path = "" };
        bool ack = false;

        if (!list)
                return -ENOMEM;
        if (http_body_json(req, resp, &body) < 0)
                return 0;
        if (json_check_keys(body, "$", keys, &je) < 0 || json_get_object(body, "$", "params", true, &params, &je) < 0 ||
            json_get_bool(body, "$", "acknowledge_unsafe", false, &ack, &je) < 0)
                return http_reply_json_error(resp, 422, &je);
        if (json_object_object_length(params) > PARAMS_MAX) {
                json_error_set(&je, "$.params", "at most %d parameters", PARAMS_MAX);
                return http_reply_json_error(resp, 422, &je);
        }
        json_object_object_foreach(params, key, value) {
                char path[256], module[32], value_text[72];
                const char *dot = strchr(key, '.');
                json_path_key(path, sizeof path, "$.params", key);
                size_t ml = dot ? (size_t) (dot - key) : 0;
                bool known = false;
                if (dot && ml < sizeof module) {
                        memcpy(module, key, ml);
                        module[ml] = 0;
                        for (size_t i = 0; kvm_modules[i] && !known; i++)
                                known = streq(module, kvm_modules[i]);
                }
                if (!known) {
                        json_error_set(&je, path, "must be MODULE.PARAMETER with MODULE one of kvm, kvm_intel, kvm_amd");
                        return http_reply_json_error(resp, 422, &je);
                }
                const char *name = dot + 1;
                size_t nl = strlen(name);
                bool name_ok = nl > 0 && nl <= 64;
                for (size_t i = 0; i < nl && name_ok; i++)
                        name_ok = islower((unsigned char) name[i]) || isdigit((unsigned char) name[i]) || name[i] == '_';
                if (!name_ok) {
                        json_error_set(&je, path, "parameter name must be 1-64 characters of a-z, 0-9 and _");
                        return http_reply_json_error(resp, 422, &je);
                }
                if (json_object_is_type(value, json_type_boolean))
                        strscpy(value_text, sizeof value_text, json_object_get_boolean(value) ? "1" : "0");
                else if (json_object_is_type(value, json_type_int))
                        snprintf(value_text, sizeof value_text, "%lld", (long long) json_object_get_int64(value));
                else if (json_object_is_type(value, json_type_string) && json_object_get_string_len(value) > 0 &&
                         json_object_get_string_len(value) <= 64) {
                        const char *v = json_object_get_string(value);
                        bool ok = true;
                        for (const char *p = v; *p && ok; p++)
                                ok = isalnum((unsigned char) *p) || *p == '_' || *p == '-' || *p == ',';
                        if (!ok) {
                                json_error_set(&je, path, "value may only contain letters, digits, '_', '-' and ','");
                                return http_reply_json_error(resp, 422, &je);
                        }
                        strscpy(value_text, sizeof value_text, v);
                } else {
                        json_error_set(&je, path, "must be a boolean, an integer or a string of 1-64 characters");
                        return http_reply_json_error(resp, 422, &je);
                }
                /* a loaded module tells which parameters it has */
                char dir[128];
                snprintf(dir, sizeof dir, "/sys/module/%s/parameters/%s", module, name);
                if (module_present(module) && access(dir, F_OK) < 0) {
                        json_error_set(&je, path, "module %s has no parameter \"%s\" on this kernel", module, name);
                        return http_reply_json_error(resp, 422, &je);
                }
                if (streq(module, "kvm") && streq(name, "allow_unsafe_mappings") && kvm_param_truthy(value_text) && !ack) {
                        json_object *d = json_object_new_object();
                        json_add_string(d, "path", "$.acknowledge_unsafe");
                        json_add_string(d, "parameter", "kvm.allow_unsafe_mappings");
                        return http_reply_error(resp, 422, "unsafe_not_acknowledged", d,
                                                "kvm.allow_unsafe_mappings=1 lets nested page mappings reach unpinned, "
                                                "non-refcounted memory; set \"acknowledge_unsafe\": true to ask for it anyway");
                }
                json_object *p = json_object_new_object();
                json_add_string(p, "module", module);
                json_add_string(p, "name", name);
                json_add_string(p, "value", value_text);
                json_object_array_add(list, p);
        }
        int r = store_kvm_params_replace(m->store, list, req->actor);
        if (r < 0)
                return r;
        detail = json_object_new_object();
        json_add(detail, "params", json_object_get(list));
        json_add_bool(detail, "acknowledge_unsafe", ack);
        manager_event(m, req->actor, "host", "kvm_params_set", "ok", detail);
        return api_host_kvm_get(m, req, resp);
}

/* Runs argv with stdout+stderr into *ret_output; the exit status, or -errno. */
static int run_capture(char *const argv[], char **ret_output) {
        int pipefd[2];
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        pid_t pid;
        char *out = NULL;
        size_t n = 0;
        int r;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
        spawn_attr_init_clean(&attr, 0);
        r = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        close(pipefd[1]);
        if (r != 0) {
                close(pipefd[0]);
                return -r;
        }
        out = malloc(RELOAD_OUTPUT_MAX + 1);
        uint64_t deadline = now_monotonic_usec() + RELOAD_TIMEOUT_USEC;
        for (;;) {
                struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
                uint64_t now = now_monotonic_usec();
                if (now >= deadline) {
                        kill(pid, SIGKILL);
                        break;
                }
                if (poll(&p, 1, (int) ((deadline - now) / 1000)) <= 0)
                        continue;
                char buf[4096];
                ssize_t k = read(pipefd[0], buf, sizeof buf);
                if (k <= 0)
                        break;
                if (out && n < RELOAD_OUTPUT_MAX) {
                        size_t take = (size_t) k < RELOAD_OUTPUT_MAX - n ? (size_t) k : RELOAD_OUTPUT_MAX - n;
                        memcpy(out + n, buf, take);
                        n += take;
                }
        }
        close(pipefd[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (out)
                out[n] = 0;
        *ret_output = out;
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
}

int api_host_kvm_reload(Manager *m, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_object *desired = NULL;
        _cleanup_free_ char *output = NULL;
        static const char *const active[] = { "starting", "running", "paused", "stopping" };
        unsigned busy = 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(active); i++) {
                unsigned n = 0;
                if ((r = store_vm_count(m->store, active[i], NULL, &n)) < 0)
                        return r;
                busy += n;
        }
        if (busy > 0 || __atomic_exchange_n(&m->kvm_reloading, true, __ATOMIC_SEQ_CST)) {
                if (busy == 0)
                        return http_reply_error(resp, 409, "conflict", NULL, "a KVM reload is already running");
                json_object *d = json_object_new_object();
                json_add_uint(d, "active_vms", busy);
                return http_reply_error(resp, 409, "conflict", d,
                                        "%u VM(s) are running or changing state; stop them before reloading KVM", busy);
        }
        /* VM starts are refused while the flag is set; re-check now that no start can begin */
        unsigned again = 0;
        for (size_t i = 0; i < ELEMENTSOF(active); i++) {
                unsigned n = 0;
                store_vm_count(m->store, active[i], NULL, &n);
                again += n;
        }
        if (again > 0) {
                __atomic_store_n(&m->kvm_reloading, false, __ATOMIC_SEQ_CST);
                return http_reply_error(resp, 409, "conflict", NULL, "a VM started meanwhile; stop it before reloading KVM");
        }

        r = store_kvm_params_get(m->store, &desired);
        if (r < 0) {
                __atomic_store_n(&m->kvm_reloading, false, __ATOMIC_SEQ_CST);
                return r;
        }
        size_t nd = json_object_array_length(desired);
        char **argv = calloc(8 + 2 * nd, sizeof *argv);
        char **owned = calloc(nd + 1, sizeof *owned);
        size_t a = 0;
        if (!argv || !owned) {
                free(argv);
                free(owned);
                __atomic_store_n(&m->kvm_reloading, false, __ATOMIC_SEQ_CST);
                return -ENOMEM;
        }
        argv[a++] = m->config->kvm_load_binary;
        if (m->config_path) {
                argv[a++] = (char *) "-c";
                argv[a++] = m->config_path;
        }
        argv[a++] = (char *) "--reload";
        argv[a++] = (char *) "--report";
        argv[a++] = m->config->kvm_setup_report;
        for (size_t i = 0; i < nd; i++) {
                json_object *d = json_object_array_get_idx(desired, i), *mod, *name, *value;
                json_object_object_get_ex(d, "module", &mod);
                json_object_object_get_ex(d, "name", &name);
                json_object_object_get_ex(d, "value", &value);
                if (asprintf(&owned[i], "%s.%s=%s", json_object_get_string(mod), json_object_get_string(name),
                             json_object_get_string(value)) < 0)
                        owned[i] = NULL;
                argv[a++] = (char *) "--param";
                argv[a++] = owned[i] ? owned[i] : (char *) "";
        }
        int status = run_capture(argv, &output);
        for (size_t i = 0; i < nd; i++)
                free(owned[i]);
        free(owned);
        free(argv);
        if (status >= 0)
                manager_ingest_kvm_setup(m);
        __atomic_store_n(&m->kvm_reloading, false, __ATOMIC_SEQ_CST);

        json_object *d = json_object_new_object();
        json_add_int(d, "exit_status", status);
        manager_event(m, req->actor, "host", "kvm_reload", status == 0 ? "ok" : "failed", d);
        json_object_put(d);
        if (status < 0)
                return http_reply_error(resp, 500, "internal", NULL, "cannot run %s: %s", m->config->kvm_load_binary, strerror(-status));

        json_object *o = json_object_new_object(), *setup = NULL;
        json_add_int(o, "exit_status", status);
        json_add_string(o, "output", output ? output : "");
        if (store_kvm_setup_latest(m->store, &setup) < 0)
                setup = NULL;
        json_add(o, "setup", setup);
        /* 0: loaded as asked; 1: loaded, but CPUs diverge (the report says how); else it failed */
        if (status > 1) {
                json_object *details = json_object_new_object();
                json_add_int(details, "exit_status", status);
                json_add_string(details, "output", output ? output : "");
                json_object_put(o);
                return http_reply_error(resp, 500, "reload_failed", details, "kvmfleet-load --reload exited with status %d", status);
        }
        return http_reply_json(resp, 200, o);
}

void host_kvm_apicv_state(HostApicv *ret) {
        HostApicv h = { .parameter_on = -1, .cpu_supported = -1 };
        _cleanup_json_ json_object *cpu = apicv_cpu_feature();
        json_object *v;

        if (json_object_object_get_ex(cpu, "feature", &v) && json_object_get_string(v))
                h.cpu_vendor = streq(json_object_get_string(v), "avic") ? "amd" : "intel";
        if (json_object_object_get_ex(cpu, "supported", &v) && json_object_is_type(v, json_type_boolean))
                h.cpu_supported = json_object_get_boolean(v);
        h.vendor_module = vendor_module();
        if (h.vendor_module) {
                bool intel = streq(h.vendor_module, "kvm_intel");
                _cleanup_free_ char *value = sysfs_param(h.vendor_module, intel ? "enable_apicv" : "avic");
                h.parameter = intel ? "kvm_intel.enable_apicv" : "kvm_amd.avic";
                if (value)
                        h.parameter_on = kvm_param_truthy(value);
                if (!intel) {
                        _cleanup_free_ char *force = sysfs_param(h.vendor_module, "force_avic");
                        h.forced = force && kvm_param_truthy(force);
                }
        }
        /* KVM turns the parameter off itself at load when the CPU lacks the feature, unless
         * kvm_amd.force_avic makes it drive AVIC anyway (then it sets no DISABLED inhibit). */
        h.effective = h.parameter_on == 1 && (h.cpu_supported != 0 || h.forced);
        *ret = h;
}
