/* SPDX-License-Identifier: MIT */
#include "params.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "str-util.h"

typedef struct KnownParam {
        const char *module;
        const char *name;
        ParamType type;
} KnownParam;

/* The parameters of Linux 6.1..6.12 KVM modules that an operator may plausibly set. Used only when
 * neither the module file nor sysfs can be read, so that typos are still caught. */
static const KnownParam known_params[] = {
        { "kvm", "allow_unsafe_mappings", PARAM_TYPE_BOOL },
        { "kvm", "enable_virt_at_load", PARAM_TYPE_BOOL },
        { "kvm", "halt_poll_ns", PARAM_TYPE_UINT },
        { "kvm", "halt_poll_ns_grow", PARAM_TYPE_UINT },
        { "kvm", "halt_poll_ns_grow_start", PARAM_TYPE_UINT },
        { "kvm", "halt_poll_ns_shrink", PARAM_TYPE_UINT },
        { "kvm", "ignore_msrs", PARAM_TYPE_BOOL },
        { "kvm", "report_ignored_msrs", PARAM_TYPE_BOOL },
        { "kvm", "min_timer_period_us", PARAM_TYPE_UINT },
        { "kvm", "kvmclock_periodic_sync", PARAM_TYPE_BOOL },
        { "kvm", "tsc_tolerance_ppm", PARAM_TYPE_UINT },
        { "kvm", "lapic_timer_advance_ns", PARAM_TYPE_INT },
        { "kvm", "vector_hashing", PARAM_TYPE_BOOL },
        { "kvm", "enable_vmware_backdoor", PARAM_TYPE_BOOL },
        { "kvm", "force_emulation_prefix", PARAM_TYPE_INT },
        { "kvm", "enable_pmu", PARAM_TYPE_BOOL },
        { "kvm", "eager_page_split", PARAM_TYPE_BOOL },
        { "kvm", "mitigate_smt_rsb", PARAM_TYPE_BOOL },
        { "kvm", "tdp_mmu", PARAM_TYPE_BOOL },
        { "kvm", "nx_huge_pages", PARAM_TYPE_STRING },
        { "kvm", "nx_huge_pages_recovery_ratio", PARAM_TYPE_UINT },
        { "kvm", "nx_huge_pages_recovery_period_ms", PARAM_TYPE_UINT },
        { "kvm", "flush_on_reuse", PARAM_TYPE_BOOL },
        { "kvm", "mmio_caching", PARAM_TYPE_BOOL },
        { "kvm", "pi_inject_timer", PARAM_TYPE_INT },
        { "kvm_intel", "nested", PARAM_TYPE_BOOL },
        { "kvm_intel", "enable_apicv", PARAM_TYPE_BOOL },
        { "kvm_intel", "enable_ipiv", PARAM_TYPE_BOOL },
        { "kvm_intel", "ept", PARAM_TYPE_BOOL },
        { "kvm_intel", "vpid", PARAM_TYPE_BOOL },
        { "kvm_intel", "unrestricted_guest", PARAM_TYPE_BOOL },
        { "kvm_intel", "flexpriority", PARAM_TYPE_BOOL },
        { "kvm_intel", "enable_shadow_vmcs", PARAM_TYPE_BOOL },
        { "kvm_intel", "eptad", PARAM_TYPE_BOOL },
        { "kvm_intel", "pml", PARAM_TYPE_BOOL },
        { "kvm_intel", "preemption_timer", PARAM_TYPE_BOOL },
        { "kvm_intel", "emulate_invalid_guest_state", PARAM_TYPE_BOOL },
        { "kvm_intel", "fasteoi", PARAM_TYPE_BOOL },
        { "kvm_intel", "enable_vnmi", PARAM_TYPE_BOOL },
        { "kvm_intel", "ple_gap", PARAM_TYPE_UINT },
        { "kvm_intel", "ple_window", PARAM_TYPE_UINT },
        { "kvm_intel", "ple_window_grow", PARAM_TYPE_UINT },
        { "kvm_intel", "ple_window_shrink", PARAM_TYPE_UINT },
        { "kvm_intel", "ple_window_max", PARAM_TYPE_UINT },
        { "kvm_intel", "pt_mode", PARAM_TYPE_INT },
        { "kvm_intel", "allow_smaller_maxphyaddr", PARAM_TYPE_BOOL },
        { "kvm_intel", "dump_invalid_vmcs", PARAM_TYPE_BOOL },
        { "kvm_intel", "error_on_inconsistent_vmcs_config", PARAM_TYPE_BOOL },
        { "kvm_intel", "sgx", PARAM_TYPE_BOOL },
        { "kvm_intel", "nested_early_check", PARAM_TYPE_BOOL },
        { "kvm_amd", "nested", PARAM_TYPE_INT },
        { "kvm_amd", "avic", PARAM_TYPE_BOOL },
        { "kvm_amd", "force_avic", PARAM_TYPE_BOOL },
        { "kvm_amd", "npt", PARAM_TYPE_BOOL },
        { "kvm_amd", "nrips", PARAM_TYPE_INT },
        { "kvm_amd", "vls", PARAM_TYPE_INT },
        { "kvm_amd", "vgif", PARAM_TYPE_INT },
        { "kvm_amd", "lbrv", PARAM_TYPE_INT },
        { "kvm_amd", "vnmi", PARAM_TYPE_BOOL },
        { "kvm_amd", "tsc_scaling", PARAM_TYPE_INT },
        { "kvm_amd", "intercept_smi", PARAM_TYPE_BOOL },
        { "kvm_amd", "dump_invalid_vmcb", PARAM_TYPE_BOOL },
        { "kvm_amd", "pause_filter_count", PARAM_TYPE_UINT },
        { "kvm_amd", "pause_filter_thresh", PARAM_TYPE_UINT },
        { "kvm_amd", "pause_filter_count_grow", PARAM_TYPE_UINT },
        { "kvm_amd", "pause_filter_count_shrink", PARAM_TYPE_UINT },
        { "kvm_amd", "pause_filter_count_max", PARAM_TYPE_UINT },
        { "kvm_amd", "sev", PARAM_TYPE_BOOL },
        { "kvm_amd", "sev_es", PARAM_TYPE_BOOL },
        { "kvm_amd", "sev_snp", PARAM_TYPE_BOOL },
};

static const struct {
        const char *name;
        ParamType type;
} type_names[] = {
        { "bool", PARAM_TYPE_BOOL },     { "invbool", PARAM_TYPE_INVBOOL }, { "bint", PARAM_TYPE_BOOL },
        { "int", PARAM_TYPE_INT },       { "long", PARAM_TYPE_INT },        { "short", PARAM_TYPE_INT },
        { "uint", PARAM_TYPE_UINT },     { "ulong", PARAM_TYPE_UINT },      { "ushort", PARAM_TYPE_UINT },
        { "ullong", PARAM_TYPE_UINT },   { "byte", PARAM_TYPE_UINT },       { "hexint", PARAM_TYPE_UINT },
        { "charp", PARAM_TYPE_STRING },  { "string", PARAM_TYPE_STRING },
};

ParamType param_type_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(type_names); i++)
                if (streq(s, type_names[i].name))
                        return type_names[i].type;
        return PARAM_TYPE_UNKNOWN;
}

const char *param_type_to_string(ParamType t) {
        switch (t) {
        case PARAM_TYPE_BOOL: return "bool";
        case PARAM_TYPE_INVBOOL: return "invbool";
        case PARAM_TYPE_INT: return "int";
        case PARAM_TYPE_UINT: return "uint";
        case PARAM_TYPE_STRING: return "string";
        case PARAM_TYPE_UNKNOWN: break;
        }
        return "unknown";
}

const char *param_source_to_string(ParamSource s) {
        switch (s) {
        case PARAM_SOURCE_MODINFO: return "modinfo";
        case PARAM_SOURCE_SYSFS: return "sysfs";
        case PARAM_SOURCE_TABLE: return "table";
        case PARAM_SOURCE_NONE: break;
        }
        return "none";
}

int module_name_normalize(const char *name, char *buf, size_t n) {
        size_t l = strlen(name);
        if (l == 0 || l >= n)
                return -EINVAL;
        for (size_t i = 0; i < l; i++) {
                char c = name[i];
                if (c == '-')
                        c = '_';
                else if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                        return -EINVAL;
                buf[i] = c;
        }
        buf[l] = 0;
        return 0;
}

int module_param_list_new(const char *module, ParamSource source, ModuleParamList **ret) {
        ModuleParamList *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        int r = module_name_normalize(module, l->module, sizeof l->module);
        if (r < 0) {
                free(l);
                return r;
        }
        l->source = source;
        *ret = l;
        return 0;
}

void module_param_list_free(ModuleParamList *l) {
        if (!l)
                return;
        free(l->defs);
        free(l);
}

const ModuleParamDef *module_param_list_find(const ModuleParamList *l, const char *name) {
        for (size_t i = 0; i < l->n_defs; i++)
                if (streq(l->defs[i].name, name))
                        return &l->defs[i];
        return NULL;
}

int module_param_list_add(ModuleParamList *l, const char *name, ParamType type) {
        ModuleParamDef *d = (ModuleParamDef *) module_param_list_find(l, name);
        if (d) {
                if (type != PARAM_TYPE_UNKNOWN)
                        d->type = type;
                return 0;
        }
        if (strlen(name) == 0 || strlen(name) >= sizeof d->name)
                return -EINVAL;
        ModuleParamDef *defs = realloc(l->defs, (l->n_defs + 1) * sizeof *defs);
        if (!defs)
                return -ENOMEM;
        l->defs = defs;
        d = &defs[l->n_defs++];
        memset(d, 0, sizeof *d);
        strscpy(d->name, sizeof d->name, name);
        d->type = type;
        return 0;
}

int module_param_list_from_table(ModuleParamList *l) {
        bool found = false;
        for (size_t i = 0; i < ELEMENTSOF(known_params); i++) {
                if (!streq(known_params[i].module, l->module))
                        continue;
                int r = module_param_list_add(l, known_params[i].name, known_params[i].type);
                if (r < 0)
                        return r;
                found = true;
        }
        return found ? 0 : -ENOENT;
}

ParamType param_type_from_table(const char *module, const char *name) {
        char m[64];
        if (module_name_normalize(module, m, sizeof m) < 0)
                return PARAM_TYPE_UNKNOWN;
        for (size_t i = 0; i < ELEMENTSOF(known_params); i++)
                if (streq(known_params[i].module, m) && streq(known_params[i].name, name))
                        return known_params[i].type;
        return PARAM_TYPE_UNKNOWN;
}

/* The kernel's kstrtobool(): the first character decides, plus "on"/"off". */
static int parse_kernel_bool(const char *s) {
        if (streq(s, "on") || streq(s, "ON") || streq(s, "On"))
                return 1;
        if (streq(s, "off") || streq(s, "OFF") || streq(s, "Off"))
                return 0;
        if (strlen(s) == 1 || streq(s, "yes") || streq(s, "no") || streq(s, "true") || streq(s, "false")) {
                switch (s[0]) {
                case 'y': case 'Y': case 't': case 'T': case '1':
                        return 1;
                case 'n': case 'N': case 'f': case 'F': case '0':
                        return 0;
                default:
                        break;
                }
        }
        return -EINVAL;
}

int param_value_normalize(ParamType type, const char *value, char *buf, size_t n) {
        int64_t i;
        uint64_t u;
        int b;

        switch (type) {
        case PARAM_TYPE_BOOL:
        case PARAM_TYPE_INVBOOL:
                b = parse_kernel_bool(value);
                if (b < 0)
                        return b;
                return strscpy(buf, n, b ? "Y" : "N");
        case PARAM_TYPE_INT:
                if (safe_atoi64(value, &i) < 0) {
                        /* The kernel's kstrtoint() takes "0x10" too. */
                        if (safe_atou64(value, &u) < 0 || u > INT64_MAX)
                                return -EINVAL;
                        i = (int64_t) u;
                }
                snprintf(buf, n, "%" PRIi64, i);
                return 0;
        case PARAM_TYPE_UINT:
                if (safe_atou64(value, &u) < 0)
                        return -EINVAL;
                snprintf(buf, n, "%" PRIu64, u);
                return 0;
        case PARAM_TYPE_STRING:
        case PARAM_TYPE_UNKNOWN:
                if (strpbrk(value, " \t\n\"") && type == PARAM_TYPE_UNKNOWN)
                        return -EINVAL;
                return strscpy(buf, n, value) < 0 ? -EINVAL : 0;
        }
        return -EINVAL;
}

bool param_value_equal(ParamType type, const char *requested, const char *effective) {
        char a[256], b[256];

        if (!requested || !effective)
                return false;
        if (type == PARAM_TYPE_UNKNOWN) {
                /* Without a type, "1" and "Y" still mean the same to a bool, and 1 and 0x1 to an int. */
                if (streq(requested, effective))
                        return true;
                int x = parse_kernel_bool(requested), y = parse_kernel_bool(effective);
                if (x >= 0 && y >= 0)
                        return x == y;
                int64_t i, j;
                return safe_atoi64(requested, &i) >= 0 && safe_atoi64(effective, &j) >= 0 && i == j;
        }
        if (param_value_normalize(type, requested, a, sizeof a) < 0 ||
            param_value_normalize(type, effective, b, sizeof b) < 0)
                return false;
        return streq(a, b);
}
