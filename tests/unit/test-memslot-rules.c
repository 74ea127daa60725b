/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "json-util.h"
#include "memslot-rules.h"
#include "test.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static const MemslotLimits limits = {
        .nr_memslots = 32764,
        .address_spaces = 1,
        .phys_bits = 48,
        .readonly_mem = true,
        .user_memory2 = true,
        .guest_memfd = true,
        .memory_attributes = 0,
        .manual_dirty_log_protect = true,
        .host_memory = 64 * GiB,
        .hugetlb_pool = true,
        .hugetlb_free_pages = 4,
};

/* RAM [0, 16 MiB) as slot 0, a user slot [1 GiB, 1 GiB + 2 MiB) as slot 5 with dirty logging. */
static const MemslotInfo table[] = {
        { .slot = 0, .gpa = 0, .size = 16 * MiB, .backing = MEMSLOT_BACKING_MEMFD, .role = MEMSLOT_ROLE_RAM },
        { .slot = 5, .gpa = GiB, .size = 2 * MiB, .dirty_log = true, .backing = MEMSLOT_BACKING_MEMFD,
          .role = MEMSLOT_ROLE_USER },
        { .slot = 6, .gpa = 2 * GiB, .size = 2 * MiB, .backing = MEMSLOT_BACKING_GUEST_MEMFD,
          .role = MEMSLOT_ROLE_USER },
};
#define N ELEMENTSOF(table)

static MemslotInfo user(uint32_t slot, uint64_t gpa, uint64_t size) {
        return (MemslotInfo){ .slot = slot, .gpa = gpa, .size = size, .backing = MEMSLOT_BACKING_MEMFD,
                              .role = MEMSLOT_ROLE_USER };
}

static void expect_create(MemslotLimits l, MemslotInfo s, int err, const char *code, const char *field) {
        MemslotError e;
        memslot_error_init(&e);
        int r = memslot_check_create(&l, table, N, &s, &e);
        if (r != err)
                test_fail(__FILE__, __LINE__, "slot %u gpa 0x%llx size 0x%llx: %d, expected %d (%s)", s.slot,
                          (unsigned long long) s.gpa, (unsigned long long) s.size, r, err, e.message);
        if (code) {
                CHECK_STREQ(e.code, code);
                CHECK_STREQ(e.field, field);
                CHECK(e.http_status >= 400 && e.http_status < 500);
                CHECK(e.message[0]);
        }
}

TEST(create_accepts_valid_slots) {
        expect_create(limits, user(7, 3 * GiB, 4096), 0, NULL, NULL);
        expect_create(limits, user(32763, 16 * MiB, 2 * MiB), 0, NULL, NULL);
        MemslotInfo h = user(8, 4 * GiB, 4 * MiB);
        h.backing = MEMSLOT_BACKING_HUGETLB;
        expect_create(limits, h, 0, NULL, NULL);
        MemslotInfo g = user(9, 5 * GiB, 4096);
        g.backing = MEMSLOT_BACKING_GUEST_MEMFD;
        g.guest_memfd_offset = 8192;
        expect_create(limits, g, 0, NULL, NULL);
        /* Ends exactly at the top of the guest's physical address space. */
        expect_create(limits, user(10, (1ULL << 48) - 4096, 4096), 0, NULL, NULL);
}

TEST(create_refuses_size_and_alignment) {
        expect_create(limits, user(7, 3 * GiB, 0), -EINVAL, "memslot_size_invalid", "size");
        expect_create(limits, user(7, 3 * GiB, 4095), -EINVAL, "memslot_size_invalid", "size");
        expect_create(limits, user(7, 3 * GiB + 512, 4096), -EINVAL, "memslot_unaligned", "gpa");
        MemslotInfo h = user(8, 4 * GiB, 4096);
        h.backing = MEMSLOT_BACKING_HUGETLB;
        expect_create(limits, h, -EINVAL, "memslot_size_invalid", "size");
        h.size = 2 * MiB;
        h.gpa = 4 * GiB + 4096;
        expect_create(limits, h, -EINVAL, "memslot_unaligned", "gpa");
}

TEST(create_refuses_range) {
        expect_create(limits, user(7, UINT64_MAX - 4095, 8192), -EINVAL, "memslot_out_of_range", "gpa");
        expect_create(limits, user(7, (1ULL << 48) - 4096, 8192), -EINVAL, "memslot_out_of_range", "gpa");
        /* 8 TiB is 2^31 pages: one more than KVM_MEM_MAX_NR_PAGES. */
        expect_create(limits, user(7, 0x100000000000ULL, 8ULL << 40), -EINVAL, "memslot_too_many_pages", "size");
}

TEST(create_refuses_ids_and_overlap) {
        MemslotError e;
        expect_create(limits, user(32764, 3 * GiB, 4096), -EINVAL, "memslot_id_out_of_range", "slot");
        MemslotInfo a = user(7, 3 * GiB, 4096);
        a.as_id = 1;
        expect_create(limits, a, -EINVAL, "memslot_id_out_of_range", "as_id");
        expect_create(limits, user(5, 3 * GiB, 4096), -EEXIST, "memslot_exists", "slot");
        expect_create(limits, user(7, GiB + MiB, 2 * MiB), -EEXIST, "memslot_overlap", "gpa");
        memslot_error_init(&e);
        MemslotInfo o = user(7, GiB - 4096, 8192);
        CHECK_EQ_INT(memslot_check_create(&limits, table, N, &o, &e), -EEXIST);
        CHECK_EQ_INT(e.other_slot, 5);
        CHECK_CONTAINS(e.message, "slot 5");
        CHECK_EQ_INT(e.http_status, 409);
        /* Another address space does not overlap (where there is one). */
        MemslotLimits two = limits;
        two.address_spaces = 2;
        MemslotInfo smm = user(7, GiB, 2 * MiB);
        smm.as_id = 1;
        expect_create(two, smm, 0, NULL, NULL);
}

TEST(create_refuses_missing_capabilities) {
        MemslotLimits l = limits;
        MemslotError e;
        l.readonly_mem = false;
        MemslotInfo ro = user(7, 3 * GiB, 4096);
        ro.readonly = true;
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_create(&l, table, N, &ro, &e), -EOPNOTSUPP);
        CHECK_STREQ(e.code, "unsupported");
        CHECK_STREQ(e.capability, "KVM_CAP_READONLY_MEM");
        CHECK_EQ_INT(e.http_status, 422);

        MemslotInfo g = user(7, 3 * GiB, 4096);
        g.backing = MEMSLOT_BACKING_GUEST_MEMFD;
        l = limits;
        l.guest_memfd = false;
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_create(&l, table, N, &g, &e), -EOPNOTSUPP);
        CHECK_STREQ(e.capability, "KVM_CAP_GUEST_MEMFD");
        l = limits;
        l.user_memory2 = false;
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_create(&l, table, N, &g, &e), -EOPNOTSUPP);
        CHECK_STREQ(e.capability, "KVM_CAP_USER_MEMORY2");
        g.dirty_log = true;
        expect_create(limits, g, -EINVAL, "memslot_flags_invalid", "flags");
        g.dirty_log = false;
        g.guest_memfd_offset = 100;
        expect_create(limits, g, -EINVAL, "memslot_unaligned", "guest_memfd_offset");
        MemslotInfo m = user(7, 3 * GiB, 4096);
        m.guest_memfd_offset = 4096;
        expect_create(limits, m, -EINVAL, "invalid_argument", "guest_memfd_offset");
}

TEST(create_refuses_unavailable_backing) {
        MemslotInfo h = user(8, 4 * GiB, 10 * MiB); /* 5 huge pages, 4 free */
        h.backing = MEMSLOT_BACKING_HUGETLB;
        expect_create(limits, h, -ENOMEM, "memslot_backing_unavailable", "backing");
        MemslotLimits none = limits;
        none.hugetlb_pool = false;
        h.size = 2 * MiB;
        expect_create(none, h, -ENOMEM, "memslot_backing_unavailable", "backing");
        expect_create(limits, user(7, 4 * GiB, 128 * GiB), -ENOMEM, "memslot_backing_unavailable", "size");
}

TEST(pick_id_takes_lowest_free) {
        uint32_t id = 99;
        CHECK_EQ_INT(memslot_pick_id(&limits, table, N, 0, &id), 0);
        CHECK_EQ_INT(id, 1);
        MemslotLimits tiny = limits;
        tiny.nr_memslots = 1;
        id = 99;
        CHECK_EQ_INT(memslot_pick_id(&tiny, table, N, 0, &id), -ENOSPC);
        CHECK_EQ_INT(id, 99);
}

TEST(delete_rules) {
        MemslotError e;
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_delete(&limits, table, N, 5, 0, true, false, &e), 0);
        CHECK_EQ_INT(memslot_check_delete(&limits, table, N, 4, 0, true, false, &e), -ENOENT);
        CHECK_STREQ(e.code, "not_found");
        CHECK_EQ_INT(e.http_status, 404);
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_delete(&limits, table, N, 0, 0, true, false, &e), -EBUSY);
        CHECK_STREQ(e.code, "memslot_force_required");
        CHECK_CONTAINS(e.guest_impact, "MMIO");
        CHECK_EQ_INT(memslot_check_delete(&limits, table, N, 0, 0, true, true, &e), 0);
        CHECK_EQ_INT(memslot_check_delete(&limits, table, N, 0, 0, false, false, &e), 0);
}

TEST(move_rules) {
        MemslotError e;
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_move(&limits, table, N, 5, 0, 3 * GiB, true, false, &e), -EBUSY);
        CHECK_STREQ(e.code, "memslot_move_dirty_log");
        CHECK_EQ_INT(e.http_status, 409);
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_move(&limits, table, N, 6, 0, 3 * GiB, true, false, &e), -EINVAL);
        CHECK_STREQ(e.code, "memslot_immutable");
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_move(&limits, table, N, 0, 0, 3 * GiB, true, false, &e), -EBUSY);
        CHECK_STREQ(e.code, "memslot_force_required");
        CHECK_CONTAINS(e.guest_impact, "same contents");
        CHECK_EQ_INT(memslot_check_move(&limits, table, N, 0, 0, 3 * GiB, true, true, &e), 0);
        memslot_error_init(&e);
        /* Moving over itself is no overlap; over another slot is. */
        CHECK_EQ_INT(memslot_check_move(&limits, table, N, 0, 0, 8 * MiB, false, false, &e), 0);
        CHECK_EQ_INT(memslot_check_move(&limits, table, N, 0, 0, GiB - 4096, false, false, &e), -EEXIST);
        CHECK_EQ_INT(e.other_slot, 5);
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_move(&limits, table, N, 0, 0, 4097, false, false, &e), -EINVAL);
        CHECK_STREQ(e.code, "memslot_unaligned");
}

TEST(set_flags_rules) {
        MemslotError e;
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_set_flags(&limits, table, N, 5, 0, false, -1, &e), 0);
        CHECK_EQ_INT(memslot_check_set_flags(&limits, table, N, 5, 0, false, 0, &e), 0);
        CHECK_EQ_INT(memslot_check_set_flags(&limits, table, N, 5, 0, true, 1, &e), -EINVAL);
        CHECK_STREQ(e.code, "memslot_immutable");
        CHECK_STREQ(e.field, "flags.readonly");
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_set_flags(&limits, table, N, 6, 0, true, -1, &e), -EINVAL);
        CHECK_STREQ(e.code, "memslot_immutable");
}

TEST(dirty_log_and_private_rules) {
        MemslotError e;
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_dirty_log(&limits, table, N, 5, 0, true, &e), 0);
        CHECK_EQ_INT(memslot_check_dirty_log(&limits, table, N, 0, 0, false, &e), -ENOENT);
        CHECK_STREQ(e.code, "memslot_dirty_log_disabled");
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_private(&limits, table, N, 2 * GiB, 4096, &e), -EOPNOTSUPP);
        CHECK_STREQ(e.code, "unsupported");
        CHECK_STREQ(e.capability, "KVM_CAP_MEMORY_ATTRIBUTES");
        MemslotLimits l = limits;
        l.memory_attributes = 1ULL << 3;
        memslot_error_init(&e);
        CHECK_EQ_INT(memslot_check_private(&l, table, N, 2 * GiB, 2 * MiB, &e), 0);
        CHECK_EQ_INT(memslot_check_private(&l, table, N, GiB, 4096, &e), -EINVAL);
        CHECK_STREQ(e.code, "invalid_argument");
}

TEST(error_json_names_details) {
        MemslotError e;
        _cleanup_json_ json_object *o = NULL;
        memslot_error_init(&e);
        MemslotInfo s = user(7, GiB, 4096);
        CHECK_EQ_INT(memslot_check_create(&limits, table, N, &s, &e), -EEXIST);
        ASSERT_EQ_INT(memslot_error_to_json(&e, &o), 0);
        const char *text = json_to_string(o);
        CHECK_CONTAINS(text, "\"code\":\"memslot_overlap\"");
        CHECK_CONTAINS(text, "\"other_slot\":5");
        CHECK_CONTAINS(text, "\"http_status\":409");
        CHECK_EQ_INT(memslot_error_http_status("memslot_move_dirty_log"), 409);
        CHECK_EQ_INT(memslot_error_http_status("unsupported"), 422);
        CHECK_EQ_INT(memslot_error_http_status("not_found"), 404);
}

TEST(backing_names_round_trip) {
        for (unsigned b = 0; b < _MEMSLOT_BACKING_MAX; b++) {
                MemslotBacking out;
                CHECK_EQ_INT(memslot_backing_from_string(memslot_backing_to_string((MemslotBacking) b), &out), 0);
                CHECK_EQ_INT(out, b);
        }
        MemslotBacking out = MEMSLOT_BACKING_MEMFD;
        CHECK_EQ_INT(memslot_backing_from_string("hugetlb-1G", &out), -EINVAL);
}
