/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>

#include "agent/config.h"
#include "log.h"
#include "test.h"

static int load_text(const char *text, AgentConfig **ret, char **error) {
        char path[512];
        snprintf(path, sizeof path, "%s/kvmfleetd.conf", test_tmpdir());
        FILE *f = fopen(path, "w");
        fputs(text, f);
        fclose(f);
        return agent_config_load(path, ret, error);
}

TEST(defaults) {
        AgentConfig *c = NULL;
        ASSERT_EQ_INT(agent_config_load(NULL, &c, NULL), 0);
        CHECK_STREQ(c->socket_path, "/run/kvmfleet/api.sock");
        CHECK_STREQ(c->inventory, "/var/lib/kvmfleet/inventory.db");
        CHECK(c->listen_tcp == NULL);
        CHECK_EQ_INT(c->socket_mode, 0660);
        CHECK_EQ_INT(c->housekeeping, HOUSEKEEPING_AUTO);
        CHECK(c->housekeeping_cpus == NULL);
        agent_config_free(c);
}

TEST(housekeeping_cpus_auto_none_or_a_list) {
        static const struct {
                const char *text;
                HousekeepingMode mode;
                const char *list;
        } cases[] = {
                { "[agent]\nhousekeeping_cpus = none\n", HOUSEKEEPING_NONE, NULL },
                { "[agent]\nhousekeeping_cpus = auto\n", HOUSEKEEPING_AUTO, NULL },
                { "[agent]\nhousekeeping_cpus =\n", HOUSEKEEPING_AUTO, NULL },
                { "[agent]\nhousekeeping_cpus = 2,1\nhousekeeping_cpus = none\n", HOUSEKEEPING_NONE, NULL },
                { "[agent]\nhousekeeping_cpus = none\nhousekeeping_cpus = 1-2\n", HOUSEKEEPING_LIST, "1-2" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AgentConfig *c = NULL;
                char *err = NULL;
                ASSERT_EQ_INT(load_text(cases[i].text, &c, &err), 0);
                CHECK_EQ_INT(c->housekeeping, cases[i].mode);
                if (cases[i].list)
                        CHECK_STREQ(c->housekeeping_cpus, cases[i].list);
                else
                        CHECK(c->housekeeping_cpus == NULL);
                agent_config_free(c);
                free(err);
        }
}

TEST(values_and_derived_paths) {
        AgentConfig *c = NULL;
        char *err = NULL;
        ASSERT_EQ_INT(load_text("# comment\n[agent]\nstate_dir = /srv/kf\nrun_dir=/run/kf\nlisten_tcp = [::1]:8443\n"
                                "log_level = debug\nmax_body = 2MiB\nthreads = 8\nsocket_mode = 0600\n"
                                "housekeeping_cpus = 3,0-1,^1\n[kvm]\nkvm_amd.nested = 1\n",
                                &c, &err),
                      0);
        CHECK_STREQ(c->inventory, "/srv/kf/inventory.db");
        CHECK_STREQ(c->socket_path, "/run/kf/api.sock");
        CHECK_STREQ(c->token_file, "/srv/kf/api.token");
        CHECK_STREQ(c->listen_tcp, "[::1]:8443");
        CHECK_EQ_INT(c->log_level, LOG_DEBUG);
        CHECK_EQ_INT(c->max_body, 2 << 20);
        CHECK_EQ_INT(c->threads, 8);
        CHECK_EQ_INT(c->socket_mode, 0600);
        CHECK_EQ_INT(c->housekeeping, HOUSEKEEPING_LIST);
        CHECK_STREQ(c->housekeeping_cpus, "0,3");
        agent_config_free(c);
        free(err);
}

static void expect_error(const char *text, const char *message) {
        AgentConfig *c = NULL;
        char *err = NULL;
        int r = load_text(text, &c, &err);
        if (r >= 0)
                test_fail(__FILE__, __LINE__, "accepted: %s", text);
        if (!err || !strstr(err, message))
                test_fail(__FILE__, __LINE__, "error \"%s\" does not contain \"%s\"", err ? err : "(null)", message);
        CHECK(c == NULL);
        free(err);
}

TEST(errors_name_the_line) {
        expect_error("[agent]\nstate_dir = /x\nbogus = 1\n", "kvmfleetd.conf:3: unknown key \"bogus\" in section [agent]");
        expect_error("[agent]\nstate_dir = relative\n", ":2: state_dir must be an absolute path");
        expect_error("[agent]\n\nlisten_tcp = localhost\n", ":3: listen_tcp must be ADDRESS:PORT");
        expect_error("[agent]\nlisten_tcp = 1.2.3.4:99999\n", ":2: listen_tcp");
        expect_error("[agent]\nlog_level = loud\n", ":2: log_level must be one of");
        expect_error("[agent]\nmax_body = 1GiB\n", ":2: max_body must be a size between 1KiB and 256MiB");
        expect_error("[agent]\nthreads = 0\n", ":2: threads must be an integer 1-64");
        expect_error("[agent]\nsocket_mode = 999\n", ":2: socket_mode must be an octal mode");
        expect_error("[agent]\nhousekeeping_cpus = 2-1\n", ":2: housekeeping_cpus must be auto, none or a list of CPUs 0-1023 such as 0-1,4, not \"2-1\"");
        expect_error("[agnet]\nx = 1\n", ":2: unknown section [agnet]");
        expect_error("[agent]\njust some words\n", ":2: syntax error");
}

TEST(missing_file) {
        AgentConfig *c = NULL;
        char *err = NULL;
        CHECK_EQ_INT(agent_config_load("/nonexistent/kvmfleetd.conf", &c, &err), -ENOENT);
        CHECK_CONTAINS(err, "/nonexistent/kvmfleetd.conf: No such file");
        free(err);
}
