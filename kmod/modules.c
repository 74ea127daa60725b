/* SPDX-License-Identifier: MIT */
#include "modules.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "fd-util.h"
#include "str-util.h"
#include "sysroot.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_list *, kmod_module_info_free_list);
DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

const char *module_state_to_string(ModuleState s) {
        switch (s) {
        case MODULE_STATE_LOADED: return "loaded";
        case MODULE_STATE_COMING: return "coming";
        case MODULE_STATE_BUILTIN: return "builtin";
        case MODULE_STATE_ABSENT: break;
        }
        return "absent";
}

int module_state_read(const char *sysroot, const char *name, ModuleState *ret_state, int *ret_refcount) {
        char path[4096];
        _cleanup_free_ char *initstate = NULL, *refcnt = NULL;
        struct stat st;
        int r;

        r = sysroot_path(path, sizeof path, sysroot, "/sys/module/%s", name);
        if (r < 0)
                return r;
        if (stat(path, &st) < 0) {
                if (errno != ENOENT)
                        return negative_errno();
                *ret_state = MODULE_STATE_ABSENT;
                *ret_refcount = -1;
                return 0;
        }
        r = sysroot_path(path, sizeof path, sysroot, "/sys/module/%s/initstate", name);
        if (r < 0)
                return r;
        r = read_one_line_file(path, &initstate);
        if (r < 0 && r != -ENOENT)
                return r;
        r = sysroot_path(path, sizeof path, sysroot, "/sys/module/%s/refcnt", name);
        if (r < 0)
                return r;
        r = read_one_line_file(path, &refcnt);
        if (r < 0 && r != -ENOENT)
                return r;

        if (!initstate && !refcnt) {
                /* Built-in code with parameters gets a /sys/module entry but no module object. */
                *ret_state = MODULE_STATE_BUILTIN;
                *ret_refcount = -1;
                return 0;
        }
        int count = -1;
        if (refcnt) {
                unsigned u;
                if (safe_atou(strstrip(refcnt), &u) >= 0)
                        count = (int) u;
        }
        *ret_state = !initstate || streq(strstrip(initstate), "live") ? MODULE_STATE_LOADED : MODULE_STATE_COMING;
        *ret_refcount = count;
        return 0;
}

int module_param_read(const char *sysroot, const char *module, const char *name, char **ret) {
        char path[4096];
        char *line = NULL;
        int r = sysroot_path(path, sizeof path, sysroot, "/sys/module/%s/parameters/%s", module, name);
        if (r < 0)
                return r;
        r = read_one_line_file(path, &line);
        if (r < 0)
                return r;
        char *s = strstrip(line);
        if (s != line)
                memmove(line, s, strlen(s) + 1);
        *ret = line;
        return 0;
}

int module_param_list_from_sysfs(const char *sysroot, ModuleParamList *l) {
        char path[4096];
        int r = sysroot_path(path, sizeof path, sysroot, "/sys/module/%s/parameters", l->module);
        if (r < 0)
                return r;
        _cleanup_(closedirp) DIR *d = opendir(path);
        if (!d)
                return negative_errno();
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                r = module_param_list_add(l, de->d_name, param_type_from_table(l->module, de->d_name));
                if (r < 0)
                        return r;
        }
        return 0;
}

int kmod_context_new(const char *sysroot, struct kmod_ctx **ret) {
        struct kmod_ctx *ctx;

        if (sysroot_is_real(sysroot))
                ctx = kmod_new(NULL, NULL);
        else {
                struct utsname u;
                char dir[4096], conf[4096];
                if (uname(&u) < 0)
                        return negative_errno();
                int r = sysroot_path(dir, sizeof dir, sysroot, "/lib/modules/%s", u.release);
                if (r < 0)
                        return r;
                r = sysroot_path(conf, sizeof conf, sysroot, "/etc/modprobe.d");
                if (r < 0)
                        return r;
                const char *configs[] = { conf, NULL };
                ctx = kmod_new(dir, configs);
        }
        if (!ctx)
                return -ENOMEM;
        *ret = ctx;
        return 0;
}

int module_param_list_from_modinfo(struct kmod_ctx *ctx, ModuleParamList *l) {
        _cleanup_kmod_module_ struct kmod_module *mod = NULL;
        _cleanup_(kmod_module_info_free_listp) struct kmod_list *info = NULL;
        struct kmod_list *it;
        int r;

        r = kmod_module_new_from_name(ctx, l->module, &mod);
        if (r < 0)
                return r;
        r = kmod_module_get_info(mod, &info);
        if (r < 0)
                return r == -ENOENT || r == -EINVAL ? -ENOENT : r;
        bool any_info = false;
        kmod_list_foreach(it, info) {
                const char *key = kmod_module_info_get_key(it), *value = kmod_module_info_get_value(it);
                if (!key || !value)
                        continue;
                any_info = true;
                bool typed = streq(key, "parmtype");
                if (!typed && !streq(key, "parm"))
                        continue;
                const char *colon = strchr(value, ':');
                char name[64];
                if (!colon || (size_t) (colon - value) >= sizeof name)
                        continue;
                memcpy(name, value, colon - value);
                name[colon - value] = 0;
                ParamType type = PARAM_TYPE_UNKNOWN;
                if (typed) {
                        char t[32];
                        if (strscpy(t, sizeof t, colon + 1) >= 0)
                                type = param_type_from_string(strstrip(t));
                }
                r = module_param_list_add(l, name, type);
                if (r < 0)
                        return r;
        }
        return any_info ? 0 : -ENOENT;
}

int module_param_list_lookup(struct kmod_ctx *ctx, const char *sysroot, const char *module, ModuleParamList **ret) {
        ModuleParamList *l = NULL;
        int r;

        r = module_param_list_new(module, PARAM_SOURCE_MODINFO, &l);
        if (r < 0)
                return r;
        if (ctx && module_param_list_from_modinfo(ctx, l) >= 0) {
                /* Types missing from old modinfo ("parm" only) come from the table. */
                for (size_t i = 0; i < l->n_defs; i++)
                        if (l->defs[i].type == PARAM_TYPE_UNKNOWN)
                                l->defs[i].type = param_type_from_table(module, l->defs[i].name);
                *ret = l;
                return 0;
        }
        free(l->defs);
        l->defs = NULL;
        l->n_defs = 0;
        l->source = PARAM_SOURCE_SYSFS;
        if (module_param_list_from_sysfs(sysroot, l) >= 0) {
                /* sysfs hides parameters registered with permission 0; the table knows some of those. */
                (void) module_param_list_from_table(l);
                *ret = l;
                return 0;
        }
        l->source = PARAM_SOURCE_TABLE;
        r = module_param_list_from_table(l);
        if (r < 0) {
                module_param_list_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

int module_insert(struct kmod_ctx *ctx, const char *name, const char *options) {
        _cleanup_kmod_module_ struct kmod_module *mod = NULL;
        int r = kmod_module_new_from_name(ctx, name, &mod);
        if (r < 0)
                return r;
        r = kmod_module_probe_insert_module(mod, KMOD_PROBE_IGNORE_COMMAND | KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY,
                                            options && *options ? options : NULL, NULL, NULL, NULL);
        if (r > 0)
                return -EPERM; /* blacklisted */
        return r;
}

int module_remove(struct kmod_ctx *ctx, const char *name) {
        _cleanup_kmod_module_ struct kmod_module *mod = NULL;
        int r = kmod_module_new_from_name(ctx, name, &mod);
        if (r < 0)
                return r;
        return kmod_module_remove_module(mod, 0);
}
