/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "agent/apicv-trace.h"
#include "test.h"

TEST(trace_line_parses) {
        ApicvTraceEvent ev;
        ASSERT_EQ_INT(apicv_trace_parse_line("    kvmfleet-vmm-30693   [000] .....  4251.204857: kvm_apicv_inhibit_changed: "
                                             "set reason=0, inhibits=0x1 DISABLED",
                                             &ev),
                      0);
        CHECK_EQ_INT(ev.tid, 30693);
        CHECK_EQ_U64(ev.timestamp_usec, 4251204857ULL);
        CHECK(ev.set);
        CHECK_EQ_INT(ev.reason, 0);
        CHECK_EQ_U64(ev.inhibits, 1);
        /* 6.1 prints no names; a task name with spaces and dashes; a cleared reason. */
        ASSERT_EQ_INT(apicv_trace_parse_line(" my vmm-x-12-7 [001] d..1. 12.000001: kvm_apicv_inhibit_changed: "
                                             "cleared reason=2, inhibits=0x201",
                                             &ev),
                      0);
        CHECK_EQ_INT(ev.tid, 7);
        CHECK(!ev.set);
        CHECK_EQ_INT(ev.reason, 2);
        CHECK_EQ_U64(ev.inhibits, 0x201);
        CHECK_EQ_INT(apicv_trace_parse_line("CPU:1 [LOST 12 EVENTS]", &ev), -ENOMSG);
        CHECK_EQ_INT(apicv_trace_parse_line("x-1 [000] 1.0: kvm_apicv_inhibit_changed: flipped reason=1, inhibits=0x0", &ev),
                     -EINVAL);
        CHECK_EQ_INT(apicv_trace_parse_line("nopid [000] 1.000000: kvm_apicv_inhibit_changed: set reason=1, inhibits=0x2", &ev),
                     -EINVAL);
}

TEST(reason_tables_follow_the_kernel) {
        ApicvReasonTable t;
        apicv_reason_table_for("6.1.0-18-cloud-amd64", NULL, &t);
        CHECK_STREQ(apicv_reason_name(&t, 0), "DISABLED");
        CHECK_STREQ(apicv_reason_name(&t, 2), "ABSENT");
        /* Debian's 6.1.192 (its BTF): no PHYSICAL_ID_ALIASED, PIT_REINJ is bit 8, SEV the last. */
        CHECK_STREQ(apicv_reason_name(&t, 4), "APIC_ID_MODIFIED");
        CHECK_STREQ(apicv_reason_name(&t, 8), "PIT_REINJ");
        CHECK_STREQ(apicv_reason_name(&t, 9), "SEV");
        CHECK(!apicv_reason_name(&t, 10));
        CHECK(!apicv_reason_name(&t, 40));
        apicv_reason_table_for("6.5.0", NULL, &t);
        CHECK_STREQ(apicv_reason_name(&t, 4), "PHYSICAL_ID_ALIASED");
        CHECK_STREQ(apicv_reason_name(&t, 9), "PIT_REINJ");
        CHECK_STREQ(apicv_reason_name(&t, 11), "X2APIC");
        apicv_reason_table_for("6.12.0", NULL, &t);
        CHECK_STREQ(apicv_reason_name(&t, 11), "LOGICAL_ID_ALIASED");
        /* The format file's names win, in their order. */
        apicv_reason_table_for("6.18.1",
                               "print fmt: \"%s\", __print_flags(REC->inhibits, \"|\", { ((1UL) << (APICV_INHIBIT_REASON_DISABLE)), "
                               "\"DISABLE\" }, { ((1UL) << (APICV_INHIBIT_REASON_FOO)), \"FOO\" })",
                               &t);
        CHECK_EQ_INT(t.n, 2);
        CHECK_STREQ(apicv_reason_name(&t, 0), "DISABLED");
        CHECK_STREQ(apicv_reason_name(&t, 1), "FOO");
        CHECK_CONTAINS(t.source, "tracepoint format");
        json_object *names = apicv_reason_names_json(&t, 0x5);
        CHECK_STREQ(json_object_to_json_string_ext(names, JSON_C_TO_STRING_PLAIN), "[\"DISABLED\",\"BIT2\"]");
        json_object_put(names);
}
