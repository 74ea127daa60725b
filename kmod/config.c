/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd-util.h"
#include "ini.h"
#include "macro.h"
#include "str-util.h"

static int config_error(ConfigError *e, const char *fmt, ...) _printf_(2, 3);
static int config_error(ConfigError *e, const char *fmt, ...) {
        if (e) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof e->message, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

int load_config_new(LoadConfig **ret) {
        LoadConfig *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        strscpy(c->vendor_module, sizeof c->vendor_module, "auto");
        c->report_path = strdup(LOAD_REPORT_DEFAULT_PATH);
        if (!c->report_path) {
                free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void load_config_free(LoadConfig *c) {
        if (!c)
                return;
        free(c->report_path);
        free(c->params);
        free(c->sysroot);
        free(c);
}

static int config_set_param(LoadConfig *c, const char *key, const char *value, const char *origin, ConfigError *e) {
        const char *dot = strchr(key, '.');
        char module[64], name[64];

        if (!dot || dot == key || !dot[1] || strchr(dot + 1, '.'))
                return config_error(e, "%s: unknown key '%s' (expected cpu, vendor_module, report or <module>.<parameter>)",
                                    origin, key);
        if ((size_t) (dot - key) >= sizeof module)
                return config_error(e, "%s: module name in '%s' is too long", origin, key);
        memcpy(module, key, dot - key);
        module[dot - key] = 0;
        if (module_name_normalize(module, module, sizeof module) < 0)
                return config_error(e, "%s: invalid module name '%s'", origin, module);
        if (!streq(module, "kvm") && !streq(module, "kvm_intel") && !streq(module, "kvm_amd"))
                return config_error(e, "%s: module '%s' is not a KVM module (kvm, kvm_intel, kvm_amd)", origin, module);
        if (strscpy(name, sizeof name, dot + 1) < 0)
                return config_error(e, "%s: parameter name in '%s' is too long", origin, key);
        for (const char *p = name; *p; p++)
                if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
                        return config_error(e, "%s: invalid parameter name '%s'", origin, name);
        if (!*value)
                return config_error(e, "%s: empty value for %s.%s", origin, module, name);
        if (strlen(value) >= sizeof c->params[0].value)
                return config_error(e, "%s: value of %s.%s is too long", origin, module, name);
        if (strpbrk(value, " \t\"'"))
                return config_error(e, "%s: bad value '%s' for %s.%s: spaces and quotes are not allowed", origin,
                                    value, module, name);

        /* A later setting of the same parameter (the command line after the file) wins. */
        RequestedParam *p = NULL;
        for (size_t i = 0; i < c->n_params; i++)
                if (streq(c->params[i].module, module) && streq(c->params[i].name, name))
                        p = &c->params[i];
        if (!p) {
                RequestedParam *n = realloc(c->params, (c->n_params + 1) * sizeof *n);
                if (!n)
                        return -ENOMEM;
                c->params = n;
                p = &n[c->n_params++];
                memset(p, 0, sizeof *p);
                strscpy(p->module, sizeof p->module, module);
                strscpy(p->name, sizeof p->name, name);
        }
        strscpy(p->value, sizeof p->value, value);
        snprintf(p->origin, sizeof p->origin, "%s", origin);
        return 0;
}

int load_config_set(LoadConfig *c, const char *key, const char *value, const char *origin, ConfigError *e) {
        if (streq(key, "cpu")) {
                unsigned cpu;
                if (safe_atou(value, &cpu) < 0 || cpu >= 8192)
                        return config_error(e, "%s: bad value '%s' for cpu: expected a CPU number", origin, value);
                c->target_cpu = cpu;
                return 0;
        }
        if (streq(key, "vendor_module")) {
                char m[32];
                if (module_name_normalize(value, m, sizeof m) < 0 ||
                    !(streq(m, "auto") || streq(m, "kvm_intel") || streq(m, "kvm_amd")))
                        return config_error(e, "%s: bad value '%s' for vendor_module: expected auto, kvm_intel or kvm_amd",
                                            origin, value);
                strscpy(c->vendor_module, sizeof c->vendor_module, m);
                return 0;
        }
        if (streq(key, "report")) {
                if (value[0] != '/')
                        return config_error(e, "%s: bad value '%s' for report: expected an absolute path", origin, value);
                char *s = strdup(value);
                if (!s)
                        return -ENOMEM;
                free(c->report_path);
                c->report_path = s;
                return 0;
        }
        return config_set_param(c, key, value, origin, e);
}

int load_config_set_param_assignment(LoadConfig *c, const char *assignment, const char *origin, ConfigError *e) {
        const char *eq = strchr(assignment, '=');
        char key[160];

        if (!eq || eq == assignment)
                return config_error(e, "%s: '%s' is not <module>.<parameter>=<value>", origin, assignment);
        if ((size_t) (eq - assignment) >= sizeof key)
                return config_error(e, "%s: parameter name too long", origin);
        memcpy(key, assignment, eq - assignment);
        key[eq - assignment] = 0;
        if (!strchr(key, '.'))
                return config_error(e, "%s: '%s' is not <module>.<parameter>=<value>", origin, assignment);
        return config_set_param(c, key, eq + 1, origin, e);
}

typedef struct ParseState {
        LoadConfig *config;
        const char *name;
        ConfigError *error;
} ParseState;

static int config_item(const char *section, const char *key, const char *value, unsigned line, void *userdata) {
        ParseState *s = userdata;
        char origin[288];

        if (!streq(section, "kvm"))
                return 0;
        snprintf(origin, sizeof origin, "%s:%u", s->name, line);
        return load_config_set(s->config, key, value, origin, s->error);
}

int load_config_parse_string(LoadConfig *c, const char *text, const char *name, ConfigError *e) {
        ParseState s = { .config = c, .name = name, .error = e };
        unsigned line = 0;
        int r = ini_parse_string(text, config_item, &s, &line);
        if (r == -EBADMSG)
                return config_error(e, "%s:%u: syntax error (expected [section] or key = value)", name, line);
        return r;
}

int load_config_parse_file(LoadConfig *c, const char *path, ConfigError *e) {
        _cleanup_free_ char *text = NULL;
        int r = read_full_file(path, 1024 * 1024, &text, NULL);
        if (r < 0) {
                config_error(e, "%s: cannot read: %s", path, strerror(-r));
                return r;
        }
        return load_config_parse_string(c, text, path, e);
}

int load_config_validate_params(LoadConfig *c, const ModuleParamList *list, ConfigError *e) {
        for (size_t i = 0; i < c->n_params; i++) {
                RequestedParam *p = &c->params[i];
                char canonical[sizeof p->value];

                if (!streq(p->module, list->module))
                        continue;
                const ModuleParamDef *d = module_param_list_find(list, p->name);
                if (!d)
                        return config_error(e, "%s: unknown parameter '%s' of module %s (not in its %s parameter list)",
                                            p->origin, p->name, p->module, param_source_to_string(list->source));
                if (param_value_normalize(d->type, p->value, canonical, sizeof canonical) < 0)
                        return config_error(e, "%s: bad value '%s' for %s.%s (type %s)", p->origin, p->value, p->module,
                                            p->name, param_type_to_string(d->type));
                strscpy(p->value, sizeof p->value, canonical);
        }
        return 0;
}

bool load_config_has_params_for(const LoadConfig *c, const char *module) {
        for (size_t i = 0; i < c->n_params; i++)
                if (streq(c->params[i].module, module))
                        return true;
        return false;
}

int load_config_module_options(const LoadConfig *c, const char *module, char **ret) {
        size_t size = 1;
        for (size_t i = 0; i < c->n_params; i++)
                if (streq(c->params[i].module, module))
                        size += strlen(c->params[i].name) + strlen(c->params[i].value) + 2;
        char *s = calloc(1, size);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_params; i++) {
                if (!streq(c->params[i].module, module))
                        continue;
                if (*s)
                        strcat(s, " ");
                strcat(s, c->params[i].name);
                strcat(s, "=");
                strcat(s, c->params[i].value);
        }
        *ret = s;
        return 0;
}
