/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "params.h"

#define LOAD_CONFIG_DEFAULT_PATH "/etc/kvmfleet/kvmfleetd.conf"
#define LOAD_REPORT_DEFAULT_PATH "/run/kvmfleet/kvm-setup.json"

/* One requested module parameter, and where it was asked for ("kvmfleetd.conf:12", "--param"). */
typedef struct RequestedParam {
        char module[64]; /* '_' form */
        char name[64];
        char value[128];
        char origin[288];
} RequestedParam;

typedef struct LoadConfig {
        unsigned target_cpu;
        char vendor_module[32]; /* "auto", "kvm_intel" or "kvm_amd" */
        char *report_path;
        RequestedParam *params;
        size_t n_params;
        bool reload;
        bool allow_divergence;
        bool json;
        char *sysroot; /* tests only: prefix for /sys and /dev */
} LoadConfig;

/* Why a configuration was refused, naming the line or option. */
typedef struct ConfigError {
        char message[512];
} ConfigError;

int load_config_new(LoadConfig **ret);
void load_config_free(LoadConfig *c);

/* One setting, from the [kvm] section or the command line: cpu, vendor_module, report, or
 * "<module>.<param>". origin names where it came from; errors name it. -EINVAL with e set. */
int load_config_set(LoadConfig *c, const char *key, const char *value, const char *origin, ConfigError *e);
/* "--param module.name=value" */
int load_config_set_param_assignment(LoadConfig *c, const char *assignment, const char *origin, ConfigError *e);

/* The [kvm] section of an agent config; other sections are ignored. name is used in origins. */
int load_config_parse_string(LoadConfig *c, const char *text, const char *name, ConfigError *e);
int load_config_parse_file(LoadConfig *c, const char *path, ConfigError *e);

/* Checks every requested parameter of module against its parameter list: unknown names are refused
 * by name, values must fit the type. The canonical value replaces the requested one. */
int load_config_validate_params(LoadConfig *c, const ModuleParamList *list, ConfigError *e);

/* Kernel option string for one module ("nested=1 avic=Y"); "" when none. Caller frees. */
int load_config_module_options(const LoadConfig *c, const char *module, char **ret);
bool load_config_has_params_for(const LoadConfig *c, const char *module);
