/* SPDX-License-Identifier: MIT */
/* The whole kvmfleet-load run against fake /sys and /dev/cpu trees: module states, parameters, the
 * cross-CPU comparison, and the report built from them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fd-util.h"
#include "json-util.h"
#include "kmod/config.h"
#include "kmod/report.h"
#include "kmod/setup.h"
#include "fake-cpu.h"
#include "test.h"

static void put(const char *root, const char *rel, const char *content) {
        char path[1024], dir[1024];
        snprintf(path, sizeof path, "%s%s", root, rel);
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = 0;
        if (mkdir_p(dir, 0755) < 0 || write_file_atomic(path, content, strlen(content), 0644) < 0)
                abort();
}

static void fake_amd_cpu(const char *root, unsigned cpu, uint32_t svm_edx) {
        fake_cpuid(root, cpu, 0x0, 0, (CpuidRegs){ 0xd, 0x68747541, 0x444d4163, 0x69746e65 });
        fake_cpuid(root, cpu, 0x1, 0, (CpuidRegs){ 0x00a00f11, 0x00020800 | (cpu << 24), 0xfef83203, 0x078bfbff });
        fake_cpuid(root, cpu, 0x7, 0, (CpuidRegs){ 0, 0x219c07ab, 0x0040069c, 0 });
        fake_cpuid(root, cpu, 0xD, 1, (CpuidRegs){ 0xf, 0x340, 0, 0 });
        fake_cpuid(root, cpu, 0x80000000, 0, (CpuidRegs){ 0x8000000a, 0x68747541, 0x444d4163, 0x69746e65 });
        fake_cpuid(root, cpu, 0x80000001, 0, (CpuidRegs){ 0x00a00f11, 0, 0x00000177, 0x2fd3fbff });
        fake_cpuid(root, cpu, 0x80000008, 0, (CpuidRegs){ 0x3030, 0, 1, 0 });
        fake_cpuid(root, cpu, 0x8000000A, 0, (CpuidRegs){ 1, 0x10, 0, svm_edx });
}

/* Two AMD CPUs; kvm and kvm_amd as modules that are loaded, kvm_amd with nested=<nested>. */
static void fake_host(const char *root, uint32_t cpu1_svm_edx, const char *nested, const char *refcnt) {
        put(root, "/sys/devices/system/cpu/online", "0-1\n");
        fake_amd_cpu(root, 0, 0x1000f);
        fake_amd_cpu(root, 1, cpu1_svm_edx);
        put(root, "/sys/module/irqbypass/initstate", "live\n");
        put(root, "/sys/module/irqbypass/refcnt", "1\n");
        put(root, "/sys/module/kvm/initstate", "live\n");
        put(root, "/sys/module/kvm/refcnt", "1\n");
        put(root, "/sys/module/kvm/parameters/allow_unsafe_mappings", "N\n");
        put(root, "/sys/module/kvm/parameters/enable_virt_at_load", "Y\n");
        put(root, "/sys/module/kvm_amd/initstate", "live\n");
        put(root, "/sys/module/kvm_amd/refcnt", refcnt);
        put(root, "/sys/module/kvm_amd/parameters/nested", nested);
        put(root, "/sys/module/kvm_amd/parameters/avic", "N\n");
}

static LoadConfig *config_for(const char *root, const char *const *params) {
        LoadConfig *c = NULL;
        ConfigError e = { "" };
        if (load_config_new(&c) < 0)
                abort();
        c->sysroot = strdup(root);
        for (const char *const *p = params; p && *p; p++)
                if (load_config_set_param_assignment(c, *p, "--param", &e) < 0)
                        abort();
        return c;
}

static char *summary(const LoadReport *r) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                abort();
        load_report_print(r, f);
        fclose(f);
        return buf;
}

TEST(loaded_without_drift) {
        char root[512];
        snprintf(root, sizeof root, "%s/nodrift", test_tmpdir());
        fake_host(root, 0x1000f, "1\n", "0\n");
        const char *params[] = { "kvm-amd.nested=1", "kvm.allow_unsafe_mappings=0", NULL };
        LoadConfig *c = config_for(root, params);
        LoadReport *r = NULL;
        ASSERT_EQ_INT(load_report_new(&r), 0);
        ASSERT_EQ_INT(kvm_setup_run(c, r), 0);
        CHECK_EQ_INT(r->exit_code, 0);
        CHECK(r->ok);
        CHECK(r->params_in_effect);
        CHECK(!r->drift);
        CHECK_EQ_INT(r->vendor, CPU_VENDOR_AMD);
        CHECK_STREQ(r->vendor_module, "kvm_amd");
        CHECK(r->consistency_checked);
        CHECK(r->consistent);
        CHECK_EQ_INT(r->n_checked_cpus, 2);
        /* The run pins itself: every trace entry after the start is CPU 0. */
        ASSERT(r->n_trace >= 3);
        for (size_t i = 1; i < r->n_trace; i++)
                CHECK_EQ_INT(r->trace[i].cpu, 0);
        char *text = summary(r);
        CHECK_CONTAINS(text, "module kvm_amd: loaded (refcount 0), no drift");
        CHECK_CONTAINS(text, "param kvm_amd.nested: requested 1, effective 1, in effect");
        CHECK_CONTAINS(text, "param kvm.allow_unsafe_mappings: requested N, effective N, in effect");
        CHECK_CONTAINS(text, "consistent");
        free(text);

        json_object *j = NULL;
        ASSERT_EQ_INT(load_report_to_json(r, &j), 0);
        const char *keys[] = { "version", "kernel_release", "generated_at", "target_cpu", "cpu_trace", "vendor",
                               "vendor_module", "modules", "params", "params_in_effect", "consistency",
                               "durations_ms", "ok", "exit_code" };
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                CHECK(json_object_object_get_ex(j, keys[i], NULL));
        json_object *mods = json_object_object_get(j, "modules");
        ASSERT(mods && json_object_array_length(mods) == 3);
        json_object *m = json_object_array_get_idx(mods, 2);
        CHECK_STREQ(json_object_get_string(json_object_object_get(m, "name")), "kvm_amd");
        CHECK_STREQ(json_object_get_string(json_object_object_get(m, "state")), "loaded");
        CHECK_STREQ(json_object_get_string(json_object_object_get(m, "action")), "none");
        CHECK_EQ_INT(json_object_get_int(json_object_object_get(m, "refcount")), 0);
        CHECK_CONTAINS(json_object_get_string(json_object_object_get(j, "generated_at")), "Z");
        json_object_put(j);
        load_report_free(r);
        load_config_free(c);
}

TEST(drift_reported_without_reload) {
        char root[512];
        snprintf(root, sizeof root, "%s/drift", test_tmpdir());
        fake_host(root, 0x1000f, "0\n", "0\n");
        const char *params[] = { "kvm_amd.nested=1", NULL };
        LoadConfig *c = config_for(root, params);
        LoadReport *r = NULL;
        ASSERT_EQ_INT(load_report_new(&r), 0);
        ASSERT_EQ_INT(kvm_setup_run(c, r), 0);
        CHECK_EQ_INT(r->exit_code, 0);
        CHECK(!r->params_in_effect);
        CHECK(r->drift);
        ASSERT_EQ_INT(r->n_params, 1);
        CHECK(r->params[0].applicable);
        CHECK(!r->params[0].in_effect);
        CHECK_STREQ(r->params[0].effective, "0");
        CHECK_CONTAINS(r->params[0].reason, "--reload");
        char *text = summary(r);
        CHECK_CONTAINS(text, "module kvm_amd: loaded (refcount 0), drift");
        free(text);
        load_report_free(r);
        load_config_free(c);
}

TEST(reload_refused_while_in_use) {
        char root[512];
        snprintf(root, sizeof root, "%s/busy", test_tmpdir());
        fake_host(root, 0x1000f, "0\n", "2\n");
        const char *params[] = { "kvm_amd.nested=1", NULL };
        LoadConfig *c = config_for(root, params);
        c->reload = true;
        LoadReport *r = NULL;
        ASSERT_EQ_INT(load_report_new(&r), 0);
        ASSERT_EQ_INT(kvm_setup_run(c, r), 0);
        CHECK_EQ_INT(r->exit_code, LOAD_EXIT_LOAD_FAILED);
        CHECK_CONTAINS(r->error, "kvm_amd is in use (refcount 2)");
        load_report_free(r);
        load_config_free(c);
}

TEST(divergent_cpus_named_and_exit_1) {
        char root[512];
        snprintf(root, sizeof root, "%s/diverge", test_tmpdir());
        fake_host(root, 0x0000e, "1\n", "0\n"); /* CPU 1 lacks npt and vgif */
        LoadConfig *c = config_for(root, NULL);
        LoadReport *r = NULL;
        ASSERT_EQ_INT(load_report_new(&r), 0);
        ASSERT_EQ_INT(kvm_setup_run(c, r), 0);
        CHECK_EQ_INT(r->exit_code, LOAD_EXIT_DIVERGENCE);
        CHECK(!r->ok);
        CHECK(!r->consistent);
        ASSERT_EQ_INT(r->n_differences, 2);
        CHECK_STREQ(r->differences[0].feature, "npt");
        CHECK_EQ_INT(r->differences[0].cpu, 1);

        json_object *j = NULL;
        ASSERT_EQ_INT(load_report_to_json(r, &j), 0);
        json_object *cons = json_object_object_get(j, "consistency");
        json_object *diffs = json_object_object_get(cons, "differences");
        ASSERT(diffs && json_object_array_length(diffs) == 2);
        json_object *d = json_object_array_get_idx(diffs, 1);
        CHECK_STREQ(json_object_get_string(json_object_object_get(d, "feature")), "vgif");
        CHECK_STREQ(json_object_get_string(json_object_object_get(d, "leaf")), "0x8000000a");
        CHECK_STREQ(json_object_get_string(json_object_object_get(d, "register")), "edx");
        CHECK_EQ_INT(json_object_get_int(json_object_object_get(d, "bit")), 16);
        CHECK_EQ_INT(json_object_get_int(json_object_object_get(d, "cpu")), 1);
        CHECK_EQ_INT(json_object_get_int(json_object_object_get(d, "target_value")), 1);
        CHECK_EQ_INT(json_object_get_int(json_object_object_get(d, "value")), 0);
        CHECK(!json_object_get_boolean(json_object_object_get(cons, "consistent")));
        CHECK_EQ_INT(json_object_get_int(json_object_object_get(j, "exit_code")), 1);
        json_object_put(j);
        char *text = summary(r);
        CHECK_CONTAINS(text, "npt: CPU 0 has 1, CPU 1 has 0");
        free(text);
        load_report_free(r);

        c->allow_divergence = true;
        ASSERT_EQ_INT(load_report_new(&r), 0);
        ASSERT_EQ_INT(kvm_setup_run(c, r), 0);
        CHECK_EQ_INT(r->exit_code, 0);
        CHECK(!r->consistent);
        load_report_free(r);
        load_config_free(c);
}

TEST(builtin_kvm_reported_with_unapplicable_params) {
        char root[512];
        snprintf(root, sizeof root, "%s/builtin", test_tmpdir());
        put(root, "/sys/devices/system/cpu/online", "0\n");
        fake_amd_cpu(root, 0, 0x1000f);
        put(root, "/sys/module/kvm/parameters/allow_unsafe_mappings", "N\n");
        put(root, "/sys/module/kvm_amd/parameters/nested", "0\n");
        const char *params[] = { "kvm_amd.nested=1", "kvm_intel.nested=1", NULL };
        LoadConfig *c = config_for(root, params);
        LoadReport *r = NULL;
        ASSERT_EQ_INT(load_report_new(&r), 0);
        ASSERT_EQ_INT(kvm_setup_run(c, r), 0);
        CHECK_EQ_INT(r->exit_code, 0);
        ASSERT_EQ_INT(r->n_modules, 2);
        CHECK_STREQ(r->modules[0].name, "kvm");
        CHECK_EQ_INT(r->modules[0].state, MODULE_STATE_BUILTIN);
        CHECK_EQ_INT(r->modules[1].state, MODULE_STATE_BUILTIN);
        CHECK(!r->params_in_effect);
        ASSERT_EQ_INT(r->n_params, 2);
        CHECK(!r->params[0].applicable);
        CHECK_CONTAINS(r->params[0].reason, "built into the kernel");
        CHECK(!r->params[1].applicable);
        CHECK_CONTAINS(r->params[1].reason, "not the vendor module");
        load_report_free(r);
        load_config_free(c);
}

TEST(unknown_param_is_usage_error) {
        char root[512];
        snprintf(root, sizeof root, "%s/unknown", test_tmpdir());
        fake_host(root, 0x1000f, "1\n", "0\n");
        const char *params[] = { "kvm_amd.nestd=1", NULL };
        LoadConfig *c = config_for(root, params);
        LoadReport *r = NULL;
        ASSERT_EQ_INT(load_report_new(&r), 0);
        ASSERT_EQ_INT(kvm_setup_run(c, r), 0);
        CHECK_EQ_INT(r->exit_code, LOAD_EXIT_USAGE);
        CHECK_CONTAINS(r->error, "--param: unknown parameter 'nestd' of module kvm_amd");
        load_report_free(r);
        load_config_free(c);
}

TEST(absent_modules_cannot_load_in_fake_tree) {
        char root[512];
        snprintf(root, sizeof root, "%s/absent", test_tmpdir());
        put(root, "/sys/devices/system/cpu/online", "0\n");
        fake_amd_cpu(root, 0, 0x1000f);
        put(root, "/sys/module/.keep", "");
        LoadConfig *c = config_for(root, NULL);
        LoadReport *r = NULL;
        ASSERT_EQ_INT(load_report_new(&r), 0);
        ASSERT_EQ_INT(kvm_setup_run(c, r), 0);
        CHECK_EQ_INT(r->exit_code, LOAD_EXIT_LOAD_FAILED);
        const ModuleReport *m = load_report_find_module(r, "kvm");
        ASSERT(m);
        CHECK_EQ_INT(m->action, MODULE_ACTION_FAILED);
        CHECK_CONTAINS(m->error, "disabled with --sysroot");
        load_report_free(r);
        load_config_free(c);
}
