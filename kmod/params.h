/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Module parameters: their kernel types, how a requested value is checked and compared with what
 * /sys/module/M/parameters/P reads back ("Y"/"N" for bools, decimal for integers). */
typedef enum ParamType {
        PARAM_TYPE_UNKNOWN,
        PARAM_TYPE_BOOL,
        PARAM_TYPE_INVBOOL,
        PARAM_TYPE_INT,
        PARAM_TYPE_UINT,
        PARAM_TYPE_STRING,
} ParamType;

/* Where a module's parameter list came from, best first. */
typedef enum ParamSource {
        PARAM_SOURCE_NONE,
        PARAM_SOURCE_MODINFO, /* libkmod: the module's own "parmtype"/"parm" info */
        PARAM_SOURCE_SYSFS,   /* /sys/module/M/parameters (only parameters readable there) */
        PARAM_SOURCE_TABLE,   /* this tool's table of KVM parameters, when the module is nowhere to be read */
} ParamSource;

typedef struct ModuleParamDef {
        char name[64];
        ParamType type;
} ModuleParamDef;

typedef struct ModuleParamList {
        char module[64];
        ParamSource source;
        ModuleParamDef *defs;
        size_t n_defs;
} ModuleParamList;

ParamType param_type_from_string(const char *s); /* kernel parmtype names: "bool", "int", "charp", ... */
const char *param_type_to_string(ParamType t);
const char *param_source_to_string(ParamSource s);

/* Module names are compared with '-' and '_' alike, as the kernel does; writes the '_' form. */
int module_name_normalize(const char *name, char *buf, size_t n);

int module_param_list_new(const char *module, ParamSource source, ModuleParamList **ret);
void module_param_list_free(ModuleParamList *l);
int module_param_list_add(ModuleParamList *l, const char *name, ParamType type); /* updates an existing type */
const ModuleParamDef *module_param_list_find(const ModuleParamList *l, const char *name);
/* Fills l from the built-in table of KVM module parameters; -ENOENT when the module is not in it. */
int module_param_list_from_table(ModuleParamList *l);
/* The type the table knows for module.name, PARAM_TYPE_UNKNOWN otherwise. */
ParamType param_type_from_table(const char *module, const char *name);

/* Checks value against type and writes the canonical form ("Y"/"N", decimal); -EINVAL if invalid. */
int param_value_normalize(ParamType type, const char *value, char *buf, size_t n);
/* Whether a requested value and the value read back from sysfs mean the same. */
bool param_value_equal(ParamType type, const char *requested, const char *effective);
