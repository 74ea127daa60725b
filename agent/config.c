/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpuset.h"
#include "ini.h"
#include "log.h"
#include "str-util.h"

typedef struct ParseState {
        AgentConfig *config;
        char error[512];
        bool explicit_socket, explicit_inventory, explicit_token;
} ParseState;

static int set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int set_path(ParseState *ps, char **field, const char *key, const char *value) {
        if (value[0] != '/') {
                snprintf(ps->error, sizeof ps->error, "%s must be an absolute path, not \"%s\"", key, value);
                return -EINVAL;
        }
        if (strlen(value) >= 4096) {
                snprintf(ps->error, sizeof ps->error, "%s is too long", key);
                return -EINVAL;
        }
        return set_string(field, value);
}

static int parse_listen(ParseState *ps, const char *value) {
        const char *colon = strrchr(value, ':');
        unsigned port;
        if (!colon || colon == value || safe_atou(colon + 1, &port) < 0 || port == 0 || port > 65535) {
                snprintf(ps->error, sizeof ps->error, "listen_tcp must be ADDRESS:PORT (port 1-65535), not \"%s\"", value);
                return -EINVAL;
        }
        return set_string(&ps->config->listen_tcp, value);
}

static int config_item(const char *section, const char *key, const char *value, unsigned line, void *userdata) {
        ParseState *ps = userdata;
        AgentConfig *c = ps->config;
        uint64_t u;
        int r;

        if (streq(section, "kvm"))
                return 0; /* kvmfleet-load's section */
        if (!streq(section, "agent")) {
                snprintf(ps->error, sizeof ps->error, "unknown section [%s] (expected [agent] or [kvm])", section);
                return -EINVAL;
        }
        if (streq(key, "state_dir"))
                return set_path(ps, &c->state_dir, key, value);
        if (streq(key, "run_dir"))
                return set_path(ps, &c->run_dir, key, value);
        if (streq(key, "socket")) {
                ps->explicit_socket = true;
                return set_path(ps, &c->socket_path, key, value);
        }
        if (streq(key, "inventory")) {
                ps->explicit_inventory = true;
                return set_path(ps, &c->inventory, key, value);
        }
        if (streq(key, "token_file")) {
                ps->explicit_token = true;
                return set_path(ps, &c->token_file, key, value);
        }
        if (streq(key, "kvm_setup_report"))
                return set_path(ps, &c->kvm_setup_report, key, value);
        if (streq(key, "vmm_binary"))
                return set_path(ps, &c->vmm_binary, key, value);
        if (streq(key, "kvm_load_binary"))
                return set_path(ps, &c->kvm_load_binary, key, value);
        if (streq(key, "socket_group"))
                return set_string(&c->socket_group, value);
        if (streq(key, "socket_mode")) {
                char *end;
                unsigned long m = strtoul(value, &end, 8);
                if (!*value || *end || m > 0777) {
                        snprintf(ps->error, sizeof ps->error, "socket_mode must be an octal mode such as 0660, not \"%s\"", value);
                        return -EINVAL;
                }
                c->socket_mode = (unsigned) m;
                return 0;
        }
        if (streq(key, "listen_tcp")) {
                if (!*value) {
                        free(c->listen_tcp);
                        c->listen_tcp = NULL;
                        return 0;
                }
                return parse_listen(ps, value);
        }
        if (streq(key, "log_level")) {
                r = log_level_from_string(value);
                if (r < 0) {
                        snprintf(ps->error, sizeof ps->error,
                                 "log_level must be one of debug, info, notice, warning, err, crit, not \"%s\"", value);
                        return -EINVAL;
                }
                c->log_level = r;
                return 0;
        }
        if (streq(key, "max_body") || streq(key, "min_free_space")) {
                if (parse_size(value, &u) < 0 || (streq(key, "max_body") && (u < 1024 || u > (256ULL << 20)))) {
                        snprintf(ps->error, sizeof ps->error, "%s must be a size%s, not \"%s\"", key,
                                 streq(key, "max_body") ? " between 1KiB and 256MiB" : "", value);
                        return -EINVAL;
                }
                if (streq(key, "max_body"))
                        c->max_body = u;
                else
                        c->min_free_space = u;
                return 0;
        }
        if (streq(key, "vm_max_memory")) {
                if (parse_size(value, &u) < 0) {
                        snprintf(ps->error, sizeof ps->error, "vm_max_memory must be a size (0: the host's memory), not \"%s\"", value);
                        return -EINVAL;
                }
                c->vm_max_memory = u;
                return 0;
        }
        if (streq(key, "vm_max_vcpus") || streq(key, "stop_timeout") || streq(key, "restart_limit")) {
                unsigned t;
                unsigned max = streq(key, "vm_max_vcpus") ? 255 : streq(key, "stop_timeout") ? 3600 : 100;
                if (safe_atou(value, &t) < 0 || t > max) {
                        snprintf(ps->error, sizeof ps->error, "%s must be an integer 0-%u, not \"%s\"", key, max, value);
                        return -EINVAL;
                }
                if (streq(key, "vm_max_vcpus"))
                        c->vm_max_vcpus = t;
                else if (streq(key, "stop_timeout"))
                        c->stop_timeout = t;
                else
                        c->restart_limit = t;
                return 0;
        }
        if (streq(key, "housekeeping_cpus")) {
                cpu_set_t set;
                char *canon = NULL;
                c->housekeeping_cpus = mfree(c->housekeeping_cpus);
                if (!*value || streq(value, "auto")) {
                        c->housekeeping = HOUSEKEEPING_AUTO;
                        return 0;
                }
                if (streq(value, "none")) {
                        c->housekeeping = HOUSEKEEPING_NONE;
                        return 0;
                }
                r = cpuset_parse(value, &set);
                if (r < 0) {
                        snprintf(ps->error, sizeof ps->error,
                                 "housekeeping_cpus must be auto, none or a list of CPUs 0-%d such as 0-1,4, not \"%s\"",
                                 CPUSET_MAX, value);
                        return -EINVAL;
                }
                if (cpuset_format(&set, &canon) < 0)
                        return -ENOMEM;
                c->housekeeping = HOUSEKEEPING_LIST;
                c->housekeeping_cpus = canon;
                return 0;
        }
        if (streq(key, "threads")) {
                unsigned t;
                if (safe_atou(value, &t) < 0 || t < 1 || t > 64) {
                        snprintf(ps->error, sizeof ps->error, "threads must be an integer 1-64, not \"%s\"", value);
                        return -EINVAL;
                }
                c->threads = t;
                return 0;
        }
        snprintf(ps->error, sizeof ps->error, "unknown key \"%s\" in section [agent]", key);
        (void) line;
        return -EINVAL;
}

AgentConfig *agent_config_free(AgentConfig *c) {
        if (!c)
                return NULL;
        free(c->state_dir);
        free(c->run_dir);
        free(c->socket_path);
        free(c->socket_group);
        free(c->listen_tcp);
        free(c->token_file);
        free(c->inventory);
        free(c->kvm_setup_report);
        free(c->vmm_binary);
        free(c->kvm_load_binary);
        free(c->housekeeping_cpus);
        free(c);
        return NULL;
}

static int derive(char **field, const char *dir, const char *name) {
        char *s;
        if (asprintf(&s, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

int agent_config_load(const char *path, AgentConfig **ret, char **ret_error) {
        _cleanup_(agent_config_freep) AgentConfig *c = calloc(1, sizeof *c);
        ParseState ps = { .config = c };
        unsigned line = 0;
        int r;

        if (!c)
                return -ENOMEM;
        c->socket_mode = 0660;
        c->log_level = LOG_INFO;
        c->max_body = 1ULL << 20;
        c->threads = 4;
        c->stop_timeout = 30;
        c->restart_limit = 5;
        c->min_free_space = 256ULL << 20;
        if (set_string(&c->state_dir, "/var/lib/kvmfleet") < 0 || set_string(&c->run_dir, "/run/kvmfleet") < 0 ||
            set_string(&c->kvm_setup_report, "/run/kvmfleet/kvm-setup.json") < 0 ||
            set_string(&c->vmm_binary, "/usr/libexec/kvmfleet/kvmfleet-vmm") < 0 ||
            set_string(&c->kvm_load_binary, "/usr/sbin/kvmfleet-load") < 0)
                return -ENOMEM;

        if (path) {
                r = ini_parse_file(path, config_item, &ps, &line);
                if (r < 0) {
                        if (ret_error) {
                                if (line == 0)
                                        r = asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0 ? -ENOMEM : r;
                                else if (r == -EBADMSG)
                                        r = asprintf(ret_error, "%s:%u: syntax error: expected \"key = value\" or \"[section]\"",
                                                     path, line) < 0 ? -ENOMEM : -EINVAL;
                                else
                                        r = asprintf(ret_error, "%s:%u: %s", path, line, ps.error) < 0 ? -ENOMEM : r;
                        }
                        return r;
                }
        }
        /* Paths not given explicitly follow the directories. */
        if (!ps.explicit_socket && derive(&c->socket_path, c->run_dir, "api.sock") < 0)
                return -ENOMEM;
        if (!ps.explicit_inventory && derive(&c->inventory, c->state_dir, "inventory.db") < 0)
                return -ENOMEM;
        if (!ps.explicit_token && derive(&c->token_file, c->state_dir, "api.token") < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}
