/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "kmod/config.h"
#include "kmod/modules.h"
#include "kmod/params.h"
#include "test.h"

static const RequestedParam *find_param(const LoadConfig *c, const char *module, const char *name) {
        for (size_t i = 0; i < c->n_params; i++)
                if (!strcmp(c->params[i].module, module) && !strcmp(c->params[i].name, name))
                        return &c->params[i];
        return NULL;
}

static void write_tree_file(const char *root, const char *rel, const char *content) {
        char path[1024], dir[1024];
        snprintf(path, sizeof path, "%s%s", root, rel);
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = 0;
        if (mkdir_p(dir, 0755) < 0 || write_file_atomic(path, content, strlen(content), 0644) < 0)
                abort();
}

TEST(defaults) {
        LoadConfig *c = NULL;
        ASSERT_EQ_INT(load_config_new(&c), 0);
        CHECK_EQ_INT(c->target_cpu, 0);
        CHECK_STREQ(c->vendor_module, "auto");
        CHECK_STREQ(c->report_path, "/run/kvmfleet/kvm-setup.json");
        CHECK_EQ_INT(c->n_params, 0);
        load_config_free(c);
        load_config_free(NULL);
}

TEST(kvm_section_parsed_other_sections_ignored) {
        LoadConfig *c = NULL;
        ConfigError e = { "" };
        const char *text = "[api]\nlisten = /run/x.sock\nnested = 1\n\n[kvm]\ncpu = 1\nvendor_module = kvm-amd\n"
                           "report = /tmp/r.json\nkvm_amd.nested = 1\nkvm-amd.avic = 0\nkvm.allow_unsafe_mappings = N\n"
                           "[other]\nkvm_amd.nested = 7\n";
        ASSERT_EQ_INT(load_config_new(&c), 0);
        ASSERT_EQ_INT(load_config_parse_string(c, text, "k.conf", &e), 0);
        CHECK_EQ_INT(c->target_cpu, 1);
        CHECK_STREQ(c->vendor_module, "kvm_amd");
        CHECK_STREQ(c->report_path, "/tmp/r.json");
        ASSERT_EQ_INT(c->n_params, 3);
        const RequestedParam *p = find_param(c, "kvm_amd", "nested");
        ASSERT(p);
        CHECK_STREQ(p->value, "1");
        CHECK_STREQ(p->origin, "k.conf:9");
        p = find_param(c, "kvm_amd", "avic");
        ASSERT(p);
        CHECK_STREQ(p->origin, "k.conf:10");
        load_config_free(c);
}

TEST(command_line_overrides_file) {
        LoadConfig *c = NULL;
        ConfigError e = { "" };
        ASSERT_EQ_INT(load_config_new(&c), 0);
        ASSERT_EQ_INT(load_config_parse_string(c, "[kvm]\nkvm_amd.nested = 0\n", "f", &e), 0);
        ASSERT_EQ_INT(load_config_set_param_assignment(c, "kvm_amd.nested=1", "--param", &e), 0);
        ASSERT_EQ_INT(c->n_params, 1);
        CHECK_STREQ(c->params[0].value, "1");
        CHECK_STREQ(c->params[0].origin, "--param");
        CHECK_EQ_INT(load_config_set_param_assignment(c, "kvm_amd.nested", "--param", &e), -EINVAL);
        CHECK_CONTAINS(e.message, "--param: 'kvm_amd.nested' is not <module>.<parameter>=<value>");
        CHECK_EQ_INT(load_config_set_param_assignment(c, "nested=1", "--param", &e), -EINVAL);
        load_config_free(c);
}

TEST(errors_name_the_line) {
        LoadConfig *c = NULL;
        ConfigError e = { "" };
        ASSERT_EQ_INT(load_config_new(&c), 0);
        CHECK_EQ_INT(load_config_parse_string(c, "[kvm]\ncpu = 0\nfrobnicate = 1\n", "a.conf", &e), -EINVAL);
        CHECK_CONTAINS(e.message, "a.conf:3: unknown key 'frobnicate'");
        CHECK_EQ_INT(load_config_parse_string(c, "[kvm]\n\ncpu = lots\n", "a.conf", &e), -EINVAL);
        CHECK_CONTAINS(e.message, "a.conf:3: bad value 'lots' for cpu");
        CHECK_EQ_INT(load_config_parse_string(c, "[kvm]\nvendor_module = kvm_arm\n", "a.conf", &e), -EINVAL);
        CHECK_CONTAINS(e.message, "a.conf:2: bad value 'kvm_arm' for vendor_module");
        CHECK_EQ_INT(load_config_parse_string(c, "[kvm]\njust some words\n", "a.conf", &e), -EINVAL);
        CHECK_CONTAINS(e.message, "a.conf:2: syntax error");
        CHECK_EQ_INT(load_config_parse_string(c, "[kvm]\nreport = relative.json\n", "a.conf", &e), -EINVAL);
        CHECK_CONTAINS(e.message, "a.conf:2: bad value 'relative.json' for report");
        CHECK_EQ_INT(load_config_parse_string(c, "[kvm]\n\n\nsnd_hda.power_save = 1\n", "a.conf", &e), -EINVAL);
        CHECK_CONTAINS(e.message, "a.conf:4: module 'snd_hda' is not a KVM module");
        CHECK_EQ_INT(load_config_parse_string(c, "[kvm]\nkvm_amd.nested = \"1 2\"\n", "a.conf", &e), -EINVAL);
        CHECK_CONTAINS(e.message, "a.conf:2: bad value");
        load_config_free(c);
}

TEST(unknown_parameter_refused_by_name) {
        LoadConfig *c = NULL;
        ModuleParamList *l = NULL;
        ConfigError e = { "" };
        ASSERT_EQ_INT(load_config_new(&c), 0);
        ASSERT_EQ_INT(load_config_parse_string(c, "[kvm]\nkvm_amd.nested = 1\nkvm_amd.nestd = 1\n", "k.conf", &e), 0);
        ASSERT_EQ_INT(module_param_list_new("kvm-amd", PARAM_SOURCE_MODINFO, &l), 0);
        ASSERT_EQ_INT(module_param_list_add(l, "nested", PARAM_TYPE_INT), 0);
        ASSERT_EQ_INT(module_param_list_add(l, "avic", PARAM_TYPE_BOOL), 0);
        CHECK_EQ_INT(load_config_validate_params(c, l, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "k.conf:3: unknown parameter 'nestd' of module kvm_amd");
        CHECK_CONTAINS(e.message, "modinfo");
        module_param_list_free(l);
        load_config_free(c);
}

TEST(bad_value_refused_with_type) {
        LoadConfig *c = NULL;
        ModuleParamList *l = NULL;
        ConfigError e = { "" };
        ASSERT_EQ_INT(load_config_new(&c), 0);
        ASSERT_EQ_INT(load_config_parse_string(c, "[kvm]\nkvm_intel.nested = maybe\n", "k.conf", &e), 0);
        ASSERT_EQ_INT(module_param_list_new("kvm_intel", PARAM_SOURCE_TABLE, &l), 0);
        ASSERT_EQ_INT(module_param_list_from_table(l), 0);
        CHECK_EQ_INT(load_config_validate_params(c, l, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "k.conf:2: bad value 'maybe' for kvm_intel.nested (type bool)");
        module_param_list_free(l);
        load_config_free(c);
}

TEST(values_canonicalized) {
        LoadConfig *c = NULL;
        ModuleParamList *l = NULL;
        ConfigError e = { "" };
        char *opts = NULL;
        ASSERT_EQ_INT(load_config_new(&c), 0);
        ASSERT_EQ_INT(load_config_parse_string(c, "[kvm]\nkvm_intel.nested = 1\nkvm_intel.enable_apicv = off\n"
                                                  "kvm_intel.ple_gap = 0x80\nkvm_amd.nested=1\n", "k", &e), 0);
        ASSERT_EQ_INT(module_param_list_new("kvm_intel", PARAM_SOURCE_TABLE, &l), 0);
        ASSERT_EQ_INT(module_param_list_from_table(l), 0);
        ASSERT_EQ_INT(load_config_validate_params(c, l, &e), 0);
        const RequestedParam *nested = find_param(c, "kvm_intel", "nested");
        const RequestedParam *apicv = find_param(c, "kvm_intel", "enable_apicv");
        const RequestedParam *gap = find_param(c, "kvm_intel", "ple_gap");
        ASSERT(nested && apicv && gap);
        CHECK_STREQ(nested->value, "Y");
        CHECK_STREQ(apicv->value, "N");
        CHECK_STREQ(gap->value, "128");
        ASSERT_EQ_INT(load_config_module_options(c, "kvm_intel", &opts), 0);
        CHECK_STREQ(opts, "nested=Y enable_apicv=N ple_gap=128");
        free(opts);
        ASSERT_EQ_INT(load_config_module_options(c, "kvm", &opts), 0);
        CHECK_STREQ(opts, "");
        free(opts);
        CHECK(load_config_has_params_for(c, "kvm_amd"));
        CHECK(!load_config_has_params_for(c, "kvm"));
        module_param_list_free(l);
        load_config_free(c);
}

TEST(param_values_compare_like_the_kernel) {
        CHECK(param_value_equal(PARAM_TYPE_BOOL, "1", "Y"));
        CHECK(param_value_equal(PARAM_TYPE_BOOL, "off", "N"));
        CHECK(!param_value_equal(PARAM_TYPE_BOOL, "1", "N"));
        CHECK(param_value_equal(PARAM_TYPE_INT, "0x1", "1"));
        CHECK(!param_value_equal(PARAM_TYPE_INT, "1", "0"));
        CHECK(param_value_equal(PARAM_TYPE_UNKNOWN, "y", "Y"));
        CHECK(param_value_equal(PARAM_TYPE_UNKNOWN, "auto", "auto"));
        CHECK(!param_value_equal(PARAM_TYPE_UNKNOWN, "auto", "off"));
        CHECK(!param_value_equal(PARAM_TYPE_BOOL, "1", NULL));
        CHECK_EQ_INT(param_type_from_string("charp"), PARAM_TYPE_STRING);
        CHECK_EQ_INT(param_type_from_table("kvm-amd", "nested"), PARAM_TYPE_INT);
        CHECK_EQ_INT(param_type_from_table("kvm_intel", "nested"), PARAM_TYPE_BOOL);
}

TEST(module_state_from_fake_sysfs) {
        char root[512];
        ModuleState st;
        int refcount;
        snprintf(root, sizeof root, "%s/state", test_tmpdir());
        write_tree_file(root, "/sys/module/kvm/parameters/nx_huge_pages", "auto\n");
        write_tree_file(root, "/sys/module/kvm_amd/initstate", "live\n");
        write_tree_file(root, "/sys/module/kvm_amd/refcnt", "2\n");
        write_tree_file(root, "/sys/module/kvm_amd/parameters/nested", "1\n");
        write_tree_file(root, "/sys/module/kvm_amd/parameters/avic", "N\n");
        ASSERT_EQ_INT(module_state_read(root, "kvm", &st, &refcount), 0);
        CHECK_EQ_INT(st, MODULE_STATE_BUILTIN);
        CHECK_EQ_INT(refcount, -1);
        ASSERT_EQ_INT(module_state_read(root, "kvm_amd", &st, &refcount), 0);
        CHECK_EQ_INT(st, MODULE_STATE_LOADED);
        CHECK_EQ_INT(refcount, 2);
        ASSERT_EQ_INT(module_state_read(root, "kvm_intel", &st, &refcount), 0);
        CHECK_EQ_INT(st, MODULE_STATE_ABSENT);

        char *v = NULL;
        ASSERT_EQ_INT(module_param_read(root, "kvm_amd", "avic", &v), 0);
        CHECK_STREQ(v, "N");
        free(v);
        CHECK_EQ_INT(module_param_read(root, "kvm_amd", "nope", &v), -ENOENT);

        /* Without a module file the list comes from sysfs, merged with the table for hidden ones. */
        ModuleParamList *l = NULL;
        ASSERT_EQ_INT(module_param_list_lookup(NULL, root, "kvm_amd", &l), 0);
        CHECK_EQ_INT(l->source, PARAM_SOURCE_SYSFS);
        CHECK(module_param_list_find(l, "nested"));
        CHECK(module_param_list_find(l, "npt"));
        CHECK(!module_param_list_find(l, "nestd"));
        module_param_list_free(l);
        ASSERT_EQ_INT(module_param_list_lookup(NULL, root, "kvm_intel", &l), 0);
        CHECK_EQ_INT(l->source, PARAM_SOURCE_TABLE);
        CHECK(module_param_list_find(l, "enable_apicv"));
        module_param_list_free(l);
}
