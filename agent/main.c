/* SPDX-License-Identifier: MIT */
/* kvmfleetd: the per-host agent. run() -> manager_new() -> startup -> READY -> event loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "manager.h"

static void help(void) {
        printf("kvmfleetd [OPTIONS]\n\n"
               "The kvmfleet host agent: REST API, inventory and VM supervisor.\n\n"
               "  -c, --config PATH     configuration file (default %s if it exists)\n"
               "      --log-level LVL   debug, info, notice, warning, err (overrides the config)\n"
               "  -h, --help            this help\n"
               "      --version         print the version\n",
               AGENT_CONFIG_DEFAULT_PATH);
}

static int run(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "log-level", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        const char *config_path = NULL, *log_level = NULL;
        _cleanup_(agent_config_freep) AgentConfig *config = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *error = NULL;
        int c, r;

        log_set_ident("kvmfleetd");
        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0)
                switch (c) {
                case 'c': config_path = optarg; break;
                case 'l': log_level = optarg; break;
                case 'h': help(); return 0;
                case 'V': printf("kvmfleetd %s\n", KVMFLEET_VERSION); return 0;
                default: return -EINVAL;
                }
        if (optind < argc) {
                log_error("Unexpected argument \"%s\"", argv[optind]);
                return -EINVAL;
        }
        if (!config_path && access(AGENT_CONFIG_DEFAULT_PATH, F_OK) == 0)
                config_path = AGENT_CONFIG_DEFAULT_PATH;
        r = agent_config_load(config_path, &config, &error);
        if (r < 0) {
                log_error("Invalid configuration: %s", error ? error : strerror(-r));
                return r;
        }
        if (log_level) {
                r = log_level_from_string(log_level);
                if (r < 0)
                        return log_error_errno(r, "Unknown log level \"%s\"", log_level);
                config->log_level = r;
        }
        log_set_max_level(config->log_level);

        /* Before any thread exists (libmicrohttpd starts its own): the signals are read from the
         * event loop, so no thread may take them with the default, fatal action. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        /* one pidfd per supervised VMM: a thousand VMs need more than the default 1024 fds */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }

        /* Also before any thread exists: every thread of the agent inherits the housekeeping CPUs. */
        CpuPlacement placement = {};
        if (config->housekeeping == HOUSEKEEPING_LIST) {
                _cleanup_free_ char *why = NULL;
                r = cpu_placement_apply(config->housekeeping_cpus, &placement, &why);
                if (r < 0) {
                        log_error("Invalid configuration: %s", why ? why : strerror(-r));
                        return r;
                }
        } else if (config->housekeeping == HOUSEKEEPING_AUTO) {
                r = cpu_placement_auto(&placement);
                if (r < 0)
                        return log_error_errno(r, "Cannot place the agent on one of its CPUs: %m");
        }

        r = manager_new(config_path, config, &m);
        if (r < 0) {
                cpu_placement_done(&placement);
                return log_error_errno(r, "Failed to allocate manager: %m");
        }
        TAKE_PTR(config);
        m->placement = placement;
        r = manager_startup(m);
        if (r < 0)
                return r;
        return manager_run(m);
}

int main(int argc, char **argv) {
        int r = run(argc, argv);
        return r < 0 ? 1 : 0;
}
