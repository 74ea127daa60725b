/* SPDX-License-Identifier: MIT */
#include "setup.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

#include "str-util.h"
#include "sysroot.h"

typedef struct Setup {
        LoadConfig *config;
        LoadReport *report;
        struct kmod_ctx *kmod;
        const char *sysroot;
        bool failed; /* a load step failed: exit code 2 */
} Setup;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void setup_fail(Setup *s, int exit_code, const char *fmt, ...) _printf_(3, 4);
static void setup_fail(Setup *s, int exit_code, const char *fmt, ...) {
        va_list ap;
        if (!s->report->error[0]) {
                va_start(ap, fmt);
                vsnprintf(s->report->error, sizeof s->report->error, fmt, ap);
                va_end(ap);
        }
        if (exit_code == LOAD_EXIT_USAGE)
                s->report->exit_code = LOAD_EXIT_USAGE;
        else
                s->failed = true;
}

/* Records where we run at this step; false (and the run fails) when it is not the target CPU. */
static bool cpu_check(Setup *s, const char *step) {
        int cpu = sched_getcpu();
        load_report_add_trace(s->report, step, cpu);
        if (cpu != (int) s->config->target_cpu) {
                setup_fail(s, LOAD_EXIT_LOAD_FAILED, "ran on CPU %d instead of CPU %u at step '%s'", cpu,
                           s->config->target_cpu, step);
                return false;
        }
        return true;
}

static int pin_to_target(Setup *s) {
        cpu_set_t set;
        if (s->config->target_cpu >= CPU_SETSIZE) {
                setup_fail(s, LOAD_EXIT_LOAD_FAILED, "target CPU %u out of range", s->config->target_cpu);
                return -EINVAL;
        }
        CPU_ZERO(&set);
        CPU_SET(s->config->target_cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0) {
                int r = negative_errno();
                setup_fail(s, LOAD_EXIT_LOAD_FAILED, "cannot pin to CPU %u: %s", s->config->target_cpu, strerror(-r));
                return r;
        }
        return cpu_check(s, "pinned") ? 0 : -EXDEV;
}

static int validate_params(Setup *s) {
        const char *modules[] = { "kvm", "kvm_intel", "kvm_amd" };
        for (size_t i = 0; i < ELEMENTSOF(modules); i++) {
                ModuleParamList *list = NULL;
                ConfigError e = { "" };
                if (!load_config_has_params_for(s->config, modules[i]))
                        continue;
                int r = module_param_list_lookup(s->kmod, s->sysroot, modules[i], &list);
                if (r < 0) {
                        setup_fail(s, LOAD_EXIT_USAGE, "cannot find the parameter list of module %s: %s", modules[i],
                                   strerror(-r));
                        return r;
                }
                r = load_config_validate_params(s->config, list, &e);
                module_param_list_free(list);
                if (r < 0) {
                        setup_fail(s, LOAD_EXIT_USAGE, "%s", e.message);
                        return r;
                }
        }
        return 0;
}

static void detect_vendor(Setup *s) {
        CpuidRegs leaf0;
        int r = cpuid_read_dev(s->sysroot, s->config->target_cpu, 0, 0, &leaf0);
        if (r == -ENOENT && sysroot_is_real(s->sysroot))
                r = cpuid_read_pinned(s->config->target_cpu, 0, 0, &leaf0);
        if (r < 0) {
                load_report_add_note(s->report, "cannot read CPUID of CPU %u: %s", s->config->target_cpu, strerror(-r));
                s->report->vendor = CPU_VENDOR_UNKNOWN;
                return;
        }
        s->report->vendor = cpuid_vendor(&leaf0);
}

static void resolve_vendor_module(Setup *s, ModuleState kvm_state) {
        LoadReport *r = s->report;
        const char *m = NULL;

        if (!streq(s->config->vendor_module, "auto"))
                m = s->config->vendor_module;
        else if (r->vendor == CPU_VENDOR_INTEL)
                m = "kvm_intel";
        else if (r->vendor == CPU_VENDOR_AMD)
                m = "kvm_amd";

        if (streq(s->config->vendor_module, "auto") && kvm_state != MODULE_STATE_ABSENT) {
                /* KVM is already up: whichever vendor module it runs with is the one that counts. */
                ModuleState st;
                int rc;
                if (!m || (module_state_read(s->sysroot, m, &st, &rc) >= 0 && st == MODULE_STATE_ABSENT)) {
                        const char *candidates[] = { "kvm_intel", "kvm_amd", "kvm_pvm" };
                        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                                if (module_state_read(s->sysroot, candidates[i], &st, &rc) >= 0 &&
                                    st != MODULE_STATE_ABSENT) {
                                        load_report_add_note(r, "KVM runs with vendor module %s (%s), not %s", candidates[i],
                                                             module_state_to_string(st), m ? m : "(none for this vendor)");
                                        m = candidates[i];
                                        break;
                                }
                }
        }
        if (m)
                strscpy(r->vendor_module, sizeof r->vendor_module, m);
}

static int refresh_module(Setup *s, const char *name) {
        ModuleReport *m = load_report_module(s->report, name);
        if (!m)
                return -E2BIG;
        int r = module_state_read(s->sysroot, name, &m->state, &m->refcount);
        if (r < 0)
                snprintf(m->error, sizeof m->error, "cannot read /sys/module/%s: %s", name, strerror(-r));
        return r;
}

static bool module_param_drifts(Setup *s, const char *module) {
        for (size_t i = 0; i < s->config->n_params; i++) {
                const RequestedParam *p = &s->config->params[i];
                _cleanup_free_ char *value = NULL;
                if (!streq(p->module, module))
                        continue;
                if (module_param_read(s->sysroot, module, p->name, &value) < 0 ||
                    !param_value_equal(param_type_from_table(module, p->name), p->value, value))
                        return true;
        }
        return false;
}

/* Inserts one module pinned, checking the CPU before and after. */
static int insert_pinned(Setup *s, const char *name, ModuleAction action) {
        char step[64];
        _cleanup_free_ char *options = NULL;
        ModuleReport *m = load_report_module(s->report, name);
        int r;

        if (!m)
                return -E2BIG;
        if (!sysroot_is_real(s->sysroot)) {
                m->action = MODULE_ACTION_FAILED;
                snprintf(m->error, sizeof m->error, "module insertion is disabled with --sysroot");
                setup_fail(s, LOAD_EXIT_LOAD_FAILED, "cannot insert %s: module insertion is disabled with --sysroot", name);
                return -EPERM;
        }
        r = load_config_module_options(s->config, name, &options);
        if (r < 0)
                return r;
        snprintf(step, sizeof step, "before insert %s", name);
        if (!cpu_check(s, step))
                return -EXDEV;
        r = module_insert(s->kmod, name, options);
        snprintf(step, sizeof step, "after insert %s", name);
        bool on_cpu = cpu_check(s, step);
        refresh_module(s, name);
        if (r < 0) {
                m->action = MODULE_ACTION_FAILED;
                snprintf(m->error, sizeof m->error, "insert with options '%s' failed: %s", options, strerror(-r));
                setup_fail(s, LOAD_EXIT_LOAD_FAILED, "cannot insert %s: %s", name, strerror(-r));
                return r;
        }
        m->action = action;
        return on_cpu ? 0 : -EXDEV;
}

static int remove_module(Setup *s, const char *name) {
        ModuleReport *m = load_report_module(s->report, name);
        int r = module_remove(s->kmod, name);
        refresh_module(s, name);
        if (r < 0) {
                if (m) {
                        m->action = MODULE_ACTION_FAILED;
                        snprintf(m->error, sizeof m->error, "remove failed: %s", strerror(-r));
                }
                setup_fail(s, LOAD_EXIT_LOAD_FAILED, "cannot remove %s for reload: %s", name, strerror(-r));
        }
        return r;
}

static int reload_modules(Setup *s, bool kvm_too) {
        const char *vendor = s->report->vendor_module[0] ? s->report->vendor_module : NULL;
        const ModuleReport *vm = vendor ? load_report_find_module(s->report, vendor) : NULL;
        const ModuleReport *km = load_report_find_module(s->report, "kvm");
        int r;

        /* Every open /dev/kvm and every VM holds a reference on the vendor module; the vendor module
         * holds one on kvm. */
        if (vm && vm->state == MODULE_STATE_LOADED && vm->refcount > 0) {
                setup_fail(s, LOAD_EXIT_LOAD_FAILED, "cannot reload: %s is in use (refcount %d); stop VMs and close /dev/kvm first",
                           vendor, vm->refcount);
                return -EBUSY;
        }
        if (kvm_too && km && km->refcount > (vm && vm->state == MODULE_STATE_LOADED ? 1 : 0)) {
                setup_fail(s, LOAD_EXIT_LOAD_FAILED, "cannot reload: kvm is in use (refcount %d)", km->refcount);
                return -EBUSY;
        }
        if (!sysroot_is_real(s->sysroot)) {
                setup_fail(s, LOAD_EXIT_LOAD_FAILED, "reload is disabled with --sysroot");
                return -EPERM;
        }
        if (vm && vm->state == MODULE_STATE_LOADED) {
                r = remove_module(s, vendor);
                if (r < 0)
                        return r;
        }
        if (kvm_too) {
                r = remove_module(s, "kvm");
                if (r < 0)
                        return r;
                r = insert_pinned(s, "kvm", MODULE_ACTION_RELOADED);
                if (r < 0)
                        return r;
        }
        if (vendor)
                return insert_pinned(s, vendor, MODULE_ACTION_RELOADED);
        return 0;
}

static int bring_up_modules(Setup *s) {
        LoadReport *rep = s->report;
        const char *vendor = rep->vendor_module[0] ? rep->vendor_module : NULL;
        int r;

        const ModuleReport *kvm = load_report_find_module(rep, "kvm");
        if (kvm->state == MODULE_STATE_ABSENT) {
                const ModuleReport *irq = load_report_find_module(rep, "irqbypass");
                bool irq_absent = irq && irq->state == MODULE_STATE_ABSENT;
                r = insert_pinned(s, "kvm", MODULE_ACTION_INSERTED);
                if (irq_absent) {
                        refresh_module(s, "irqbypass");
                        ModuleReport *m = load_report_module(rep, "irqbypass");
                        if (m && m->state == MODULE_STATE_LOADED)
                                m->action = MODULE_ACTION_INSERTED; /* as kvm's dependency */
                }
                if (r < 0)
                        return r;
                if (vendor)
                        return insert_pinned(s, vendor, MODULE_ACTION_INSERTED);
                return 0;
        }

        const ModuleReport *vm = vendor ? load_report_find_module(rep, vendor) : NULL;
        if (vm && vm->state == MODULE_STATE_ABSENT) {
                if (kvm->state == MODULE_STATE_LOADED && module_param_drifts(s, "kvm") && s->config->reload)
                        return reload_modules(s, true);
                return insert_pinned(s, vendor, MODULE_ACTION_INSERTED);
        }

        bool kvm_drift = kvm->state == MODULE_STATE_LOADED && module_param_drifts(s, "kvm");
        bool vendor_drift = vm && vm->state == MODULE_STATE_LOADED && module_param_drifts(s, vendor);
        if ((kvm_drift || vendor_drift) && s->config->reload)
                return reload_modules(s, kvm_drift);
        return 0;
}

static void report_params(Setup *s) {
        LoadReport *rep = s->report;
        bool all = true, drift = false;

        for (size_t i = 0; i < s->config->n_params; i++) {
                const RequestedParam *p = &s->config->params[i];
                ParamReport pr = { .applicable = true };
                _cleanup_free_ char *value = NULL;
                bool relevant = streq(p->module, "kvm") || streq(p->module, rep->vendor_module);

                strscpy(pr.module, sizeof pr.module, p->module);
                strscpy(pr.name, sizeof pr.name, p->name);
                strscpy(pr.requested, sizeof pr.requested, p->value);
                if (module_param_read(s->sysroot, p->module, p->name, &value) >= 0) {
                        strscpy(pr.effective, sizeof pr.effective, value);
                        pr.has_effective = true;
                        pr.in_effect = param_value_equal(param_type_from_table(p->module, p->name), p->value, value);
                }
                const ModuleReport *m = load_report_find_module(rep, p->module);
                if (!relevant) {
                        pr.applicable = false;
                        snprintf(pr.reason, sizeof pr.reason, "%s is not the vendor module of this host (%s)", p->module,
                                 rep->vendor_module[0] ? rep->vendor_module : "none");
                } else if (pr.in_effect)
                        ;
                else if (m && m->state == MODULE_STATE_BUILTIN) {
                        pr.applicable = false;
                        snprintf(pr.reason, sizeof pr.reason, "%s is built into the kernel: set %s.%s=%s on the kernel command line",
                                 p->module, p->module, p->name, p->value);
                } else if (!pr.has_effective && m && m->state == MODULE_STATE_LOADED)
                        snprintf(pr.reason, sizeof pr.reason, "not readable in /sys/module/%s/parameters", p->module);
                else if (m && m->state == MODULE_STATE_LOADED && m->action == MODULE_ACTION_NONE) {
                        snprintf(pr.reason, sizeof pr.reason, "%s is loaded with %s=%s; run with --reload to apply",
                                 p->module, p->name, pr.has_effective ? pr.effective : "?");
                        drift = true;
                } else if (m && m->state == MODULE_STATE_LOADED) {
                        snprintf(pr.reason, sizeof pr.reason, "the module ignored it (the CPU may lack the feature)");
                        drift = true;
                } else
                        snprintf(pr.reason, sizeof pr.reason, "%s is not loaded", p->module);
                if (relevant && !pr.in_effect)
                        all = false;
                load_report_add_param(rep, &pr);
        }
        rep->params_in_effect = all;
        rep->drift = drift;
}

static int check_consistency(Setup *s) {
        LoadReport *rep = s->report;
        _cleanup_free_ CpuSnapshot *snaps = NULL;
        bool real = sysroot_is_real(s->sysroot);
        char path[4096];
        int r;

        r = online_cpus_read(s->sysroot, &rep->checked_cpus, &rep->n_checked_cpus);
        if (r < 0) {
                load_report_add_note(rep, "cannot read the online CPUs: %s", strerror(-r));
                rep->consistent = false;
                return 0;
        }
        /* The cpuid and msr character devices come from modules of their own. */
        if (real && sysroot_path(path, sizeof path, s->sysroot, "/dev/cpu/%u/cpuid", s->config->target_cpu) >= 0 &&
            access(path, F_OK) < 0 && module_insert(s->kmod, "cpuid", NULL) < 0)
                load_report_add_note(rep, "no /dev/cpu/N/cpuid and the cpuid module cannot be loaded: executing CPUID pinned to each CPU");
        if (real && rep->vendor == CPU_VENDOR_INTEL &&
            sysroot_path(path, sizeof path, s->sysroot, "/dev/cpu/%u/msr", s->config->target_cpu) >= 0 &&
            access(path, F_OK) < 0)
                (void) module_insert(s->kmod, "msr", NULL);

        snaps = calloc(rep->n_checked_cpus, sizeof *snaps);
        if (!snaps)
                return -ENOMEM;
        ssize_t target = -1;
        for (size_t i = 0; i < rep->n_checked_cpus; i++) {
                r = cpu_snapshot_read(s->sysroot, rep->checked_cpus[i], rep->vendor, real, &snaps[i]);
                if (r < 0) {
                        load_report_add_note(rep, "cannot read CPUID of CPU %u: %s", rep->checked_cpus[i], strerror(-r));
                        rep->consistent = false;
                        return 0;
                }
                cpu_snapshot_mask(&snaps[i]);
                if (rep->checked_cpus[i] == s->config->target_cpu)
                        target = (ssize_t) i;
        }
        if (target < 0) {
                load_report_add_note(rep, "target CPU %u is not online", s->config->target_cpu);
                rep->consistent = false;
                return 0;
        }
        strscpy(rep->cpuid_source, sizeof rep->cpuid_source, snaps[target].source == CPUID_SOURCE_DEV ? "dev" : "pinned");
        if (rep->vendor == CPU_VENDOR_INTEL && !snaps[target].msrs_read)
                load_report_add_note(rep, "VMX capability MSRs not compared: /dev/cpu/%u/msr: %s", s->config->target_cpu,
                                     strerror(-snaps[target].msr_error));
        for (size_t i = 0; i < rep->n_checked_cpus; i++) {
                if ((ssize_t) i == target)
                        continue;
                r = cpu_snapshot_compare(&snaps[target], &snaps[i], &rep->differences, &rep->n_differences);
                if (r < 0)
                        return r;
        }
        rep->consistency_checked = true;
        rep->consistent = rep->n_differences == 0;
        return 0;
}

int kvm_setup_run(LoadConfig *config, LoadReport *report) {
        _cleanup_kmod_ctx_ struct kmod_ctx *kmod = NULL;
        Setup s = { .config = config, .report = report, .sysroot = config->sysroot };
        double t_start = now_ms(), t;
        struct utsname u;
        int r;

        report->target_cpu = config->target_cpu;
        if (uname(&u) >= 0)
                strscpy(report->kernel_release, sizeof report->kernel_release, u.release);
        (void) load_report_stamp(report);
        load_report_add_trace(report, "start", sched_getcpu());

        r = kmod_context_new(s.sysroot, &kmod);
        if (r < 0)
                return r;
        s.kmod = kmod;

        t = now_ms();
        if (validate_params(&s) < 0)
                goto finish;
        load_report_add_duration(report, "validate", now_ms() - t);

        t = now_ms();
        r = pin_to_target(&s);
        load_report_add_duration(report, "pin", now_ms() - t);
        if (r < 0)
                goto finish;

        detect_vendor(&s);

        t = now_ms();
        ModuleState kvm_state;
        int refcount;
        r = module_state_read(s.sysroot, "kvm", &kvm_state, &refcount);
        if (r < 0) {
                setup_fail(&s, LOAD_EXIT_LOAD_FAILED, "cannot read /sys/module/kvm: %s", strerror(-r));
                goto finish;
        }
        resolve_vendor_module(&s, kvm_state);
        if (kvm_state != MODULE_STATE_BUILTIN)
                refresh_module(&s, "irqbypass");
        refresh_module(&s, "kvm");
        if (report->vendor_module[0])
                refresh_module(&s, report->vendor_module);
        else
                load_report_add_note(report, "no vendor module for CPU vendor %s", cpu_vendor_to_string(report->vendor));

        (void) bring_up_modules(&s);
        for (size_t i = 0; i < report->n_modules; i++)
                (void) refresh_module(&s, report->modules[i].name); /* refcounts change as dependents load */
        cpu_check(&s, "after modules");
        load_report_add_duration(report, "modules", now_ms() - t);
        report_params(&s);

        t = now_ms();
        r = check_consistency(&s);
        if (r < 0)
                return r;
        load_report_add_duration(report, "consistency", now_ms() - t);
        cpu_check(&s, "end");

finish:
        load_report_add_duration(report, "total", now_ms() - t_start);
        if (report->exit_code == LOAD_EXIT_USAGE)
                ;
        else if (s.failed)
                report->exit_code = LOAD_EXIT_LOAD_FAILED;
        else if (!report->consistent && !config->allow_divergence)
                report->exit_code = LOAD_EXIT_DIVERGENCE;
        else
                report->exit_code = LOAD_EXIT_OK;
        report->ok = report->exit_code == LOAD_EXIT_OK;
        return 0;
}
