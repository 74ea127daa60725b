/* SPDX-License-Identifier: MIT */
#pragma once

#include <libkmod.h>
#include <stdbool.h>

#include "macro.h"
#include "params.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_ctx *, kmod_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_module *, kmod_module_unref);
#define _cleanup_kmod_ctx_ _cleanup_(kmod_unrefp)
#define _cleanup_kmod_module_ _cleanup_(kmod_module_unrefp)

typedef enum ModuleState {
        MODULE_STATE_ABSENT,
        MODULE_STATE_LOADED,  /* initstate "live" */
        MODULE_STATE_COMING,  /* initstate "coming" or "going": in transition */
        MODULE_STATE_BUILTIN, /* /sys/module/M without initstate or refcnt */
} ModuleState;

const char *module_state_to_string(ModuleState s);

/* Reads /sys/module/<name> under sysroot. ret_refcount gets -1 when there is none (built-in, absent). */
int module_state_read(const char *sysroot, const char *name, ModuleState *ret_state, int *ret_refcount);
/* The value of /sys/module/<module>/parameters/<name>, without its newline. */
int module_param_read(const char *sysroot, const char *module, const char *name, char **ret);
/* The parameter names visible in /sys/module/<module>/parameters (types unknown). */
int module_param_list_from_sysfs(const char *sysroot, ModuleParamList *l);

/* A libkmod context for the running kernel, honouring modprobe.d; with a test sysroot, its
 * lib/modules/<release> and etc/modprobe.d. */
int kmod_context_new(const char *sysroot, struct kmod_ctx **ret);
/* The module's parameters from its own modinfo ("parmtype", else "parm"); -ENOENT when libkmod
 * cannot find the module file (or built-in modinfo). */
int module_param_list_from_modinfo(struct kmod_ctx *ctx, ModuleParamList *l);
/* The best list available: modinfo, else sysfs merged with the table, else the table. */
int module_param_list_lookup(struct kmod_ctx *ctx, const char *sysroot, const char *module, ModuleParamList **ret);

/* Inserts one module and its dependencies with options added after those of modprobe.d, as modprobe
 * would, without running install commands. Already-loaded dependencies are left alone. */
int module_insert(struct kmod_ctx *ctx, const char *name, const char *options);
int module_remove(struct kmod_ctx *ctx, const char *name);
