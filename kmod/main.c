/* SPDX-License-Identifier: MIT */
/* kvmfleet-load: loads KVM pinned to one CPU with the configured module parameters, checks that every
 * CPU agrees with that CPU on the virtualization features, and writes a setup report for the agent. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "report.h"
#include "setup.h"
#include "str-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(LoadConfig *, load_config_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(LoadReport *, load_report_free);

static void help(void) {
        printf("Usage: kvmfleet-load [OPTIONS]\n"
               "Load KVM pinned to one CPU, apply module parameters, check that all CPUs agree.\n\n"
               "  -c, --config PATH        agent config with a [kvm] section (default %s)\n"
               "      --cpu N              target CPU (default 0)\n"
               "      --vendor-module M    auto, kvm_intel or kvm_amd\n"
               "      --param M.P=V        module parameter, e.g. kvm_amd.nested=1 (repeatable)\n"
               "      --report PATH        JSON report (default %s)\n"
               "      --reload             re-insert loaded modules whose parameters drifted\n"
               "      --allow-divergence   exit 0 even when CPUs disagree\n"
               "      --json               print the JSON report instead of the summary\n"
               "      --sysroot DIR        read /sys and /dev/cpu under DIR (tests)\n"
               "  -h, --help\n"
               "Exit: 0 ok, 1 CPUs diverge, 2 load failed, 3 usage or config error.\n",
               LOAD_CONFIG_DEFAULT_PATH, LOAD_REPORT_DEFAULT_PATH);
}

enum {
        ARG_CPU = 0x100,
        ARG_VENDOR_MODULE,
        ARG_PARAM,
        ARG_REPORT,
        ARG_RELOAD,
        ARG_ALLOW_DIVERGENCE,
        ARG_JSON,
        ARG_SYSROOT,
};

static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "cpu", required_argument, NULL, ARG_CPU },
        { "vendor-module", required_argument, NULL, ARG_VENDOR_MODULE },
        { "param", required_argument, NULL, ARG_PARAM },
        { "report", required_argument, NULL, ARG_REPORT },
        { "reload", no_argument, NULL, ARG_RELOAD },
        { "allow-divergence", no_argument, NULL, ARG_ALLOW_DIVERGENCE },
        { "json", no_argument, NULL, ARG_JSON },
        { "sysroot", required_argument, NULL, ARG_SYSROOT },
        { "help", no_argument, NULL, 'h' },
        {},
};

/* The config file first, then the command line over it, so options are parsed twice. */
static int parse_argv(int argc, char **argv, LoadConfig *c) {
        const char *config_path = NULL;
        ConfigError e = { "" };
        int opt, r;

        while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                if (opt == 'h') {
                        help();
                        return 0;
                }
                if (opt == 'c')
                        config_path = optarg;
                else if (opt == '?')
                        return -EINVAL;
        }
        if (optind < argc) {
                log_error("Unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        if (config_path)
                r = load_config_parse_file(c, config_path, &e);
        else if (access(LOAD_CONFIG_DEFAULT_PATH, F_OK) == 0)
                r = load_config_parse_file(c, LOAD_CONFIG_DEFAULT_PATH, &e);
        else
                r = 0;
        if (r < 0) {
                log_error("%s", e.message);
                return r;
        }

        optind = 0;
        while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                switch (opt) {
                case ARG_CPU:
                        r = load_config_set(c, "cpu", optarg, "--cpu", &e);
                        break;
                case ARG_VENDOR_MODULE:
                        r = load_config_set(c, "vendor_module", optarg, "--vendor-module", &e);
                        break;
                case ARG_PARAM:
                        r = load_config_set_param_assignment(c, optarg, "--param", &e);
                        break;
                case ARG_REPORT:
                        r = load_config_set(c, "report", optarg, "--report", &e);
                        break;
                case ARG_RELOAD:
                        c->reload = true;
                        r = 0;
                        break;
                case ARG_ALLOW_DIVERGENCE:
                        c->allow_divergence = true;
                        r = 0;
                        break;
                case ARG_JSON:
                        c->json = true;
                        r = 0;
                        break;
                case ARG_SYSROOT:
                        free(c->sysroot);
                        c->sysroot = strdup(optarg);
                        r = c->sysroot ? 0 : -ENOMEM;
                        break;
                default:
                        r = 0;
                        break;
                }
                if (r < 0) {
                        if (r == -EINVAL)
                                log_error("%s", e.message);
                        return r;
                }
        }
        return 1;
}

static int write_report(const char *path, json_object *json) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                int r = mkdir_p(dir, 0755);
                if (r < 0)
                        return r;
        }
        const char *text = json_object_to_json_string_ext(json, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        _cleanup_free_ char *with_nl = NULL;
        if (asprintf(&with_nl, "%s\n", text) < 0)
                return -ENOMEM;
        return write_file_atomic(path, with_nl, strlen(with_nl), 0644);
}

static int run(int argc, char **argv) {
        _cleanup_(load_config_freep) LoadConfig *config = NULL;
        _cleanup_(load_report_freep) LoadReport *report = NULL;
        _cleanup_json_ json_object *json = NULL;
        int r;

        log_set_ident("kvmfleet-load");
        log_set_target(LOG_TARGET_AUTO);

        r = load_config_new(&config);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the configuration: %m"), LOAD_EXIT_USAGE;
        r = parse_argv(argc, argv, config);
        if (r <= 0)
                return r < 0 ? LOAD_EXIT_USAGE : 0;

        r = load_report_new(&report);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the report: %m"), LOAD_EXIT_LOAD_FAILED;
        r = kvm_setup_run(config, report);
        if (r < 0)
                return log_error_errno(r, "Failed to run the KVM setup: %m"), LOAD_EXIT_LOAD_FAILED;
        if (report->error[0])
                log_error("%s", report->error);

        r = load_report_to_json(report, &json);
        if (r < 0)
                return log_error_errno(r, "Failed to build the report: %m"), LOAD_EXIT_LOAD_FAILED;
        /* A usage error leaves any earlier report in place: it describes the host, this run did nothing. */
        if (report->exit_code != LOAD_EXIT_USAGE) {
                r = write_report(config->report_path, json);
                if (r < 0) {
                        log_error_errno(r, "Failed to write %s: %m", config->report_path);
                        if (report->exit_code == LOAD_EXIT_OK)
                                return LOAD_EXIT_LOAD_FAILED;
                }
        }
        if (config->json)
                printf("%s\n", json_object_to_json_string_ext(json, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        else
                load_report_print(report, stdout);
        return report->exit_code;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
