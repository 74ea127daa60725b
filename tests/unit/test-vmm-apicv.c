/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "apicv.h"
#include "test.h"

static void set_reg(struct kvm_lapic_state *s, unsigned offset, uint32_t v) {
        memcpy(s->regs + offset, &v, sizeof v);
}

static json_object *field(json_object *o, const char *path) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", path);
        for (char *save = NULL, *key = strtok_r(buf, ".", &save); key && o; key = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(o, key, &o))
                        return NULL;
        return o;
}

static long long int_at(json_object *o, const char *path) {
        json_object *v = field(o, path);
        return v ? json_object_get_int64(v) : -1;
}

static const char *str_at(json_object *o, const char *path) {
        json_object *v = field(o, path);
        return v ? json_object_get_string(v) : "(absent)";
}

static int bool_at(json_object *o, const char *path) {
        json_object *v = field(o, path);
        return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

/* What the lapic test guest programs, as KVM_GET_LAPIC returns it. */
static void guest_like_page(struct kvm_lapic_state *s) {
        memset(s, 0, sizeof *s);
        set_reg(s, 0x20, 3u << 24);          /* APIC ID 3 in bits 31:24 */
        set_reg(s, 0x30, 0x00050014);       /* version 0x14, max LVT entry 5 */
        set_reg(s, 0x80, 0x20);             /* TPR */
        set_reg(s, 0xa0, 0x20);             /* PPR */
        set_reg(s, 0xd0, 0x01000000);       /* LDR */
        set_reg(s, 0xe0, 0xffffffff);       /* DFR flat */
        set_reg(s, 0xf0, 0x1ff);            /* SVR: enabled, spurious 0xff */
        set_reg(s, 0x100 + 16 * 1, 1u << 1); /* ISR vector 33 */
        set_reg(s, 0x180 + 16 * 7, 1u << 31); /* TMR vector 255 */
        set_reg(s, 0x200, 1u << 0x10);      /* IRR vector 16 */
        set_reg(s, 0x200 + 16 * 2, 1u << 0); /* IRR vector 64 */
        set_reg(s, 0x280, 0x40);            /* ESR: received illegal vector */
        set_reg(s, 0x300, 0x000c4500 | 0x30); /* ICR: INIT... all-excluding-self, assert, vector 0x30 */
        set_reg(s, 0x310, 0x02000000);      /* ICR destination 2 */
        set_reg(s, 0x320, (1u << 17) | 0x40); /* timer: periodic, vector 0x40, unmasked */
        set_reg(s, 0x2f0, 1u << 16);
        set_reg(s, 0x330, 1u << 16);
        set_reg(s, 0x340, (4u << 8) | (1u << 16)); /* perf: NMI, masked */
        set_reg(s, 0x350, 7u << 8);         /* LINT0: ExtINT */
        set_reg(s, 0x360, (4u << 8) | (1u << 15) | (1u << 13)); /* LINT1: NMI, level, active low */
        set_reg(s, 0x370, (1u << 16) | 0xfe);
        set_reg(s, 0x380, 0x100000);        /* initial count */
        set_reg(s, 0x390, 0x0fff00);        /* current count */
        set_reg(s, 0x3e0, 0x3);             /* divide by 16 */
}

TEST(lapic_decodes_every_register) {
        struct kvm_lapic_state s;
        json_object *o = NULL;
        guest_like_page(&s);
        ASSERT_EQ_INT(lapic_decode(&s, 0xfee00000ULL | (1 << 11) | (1 << 8), false, &o), 0);
        CHECK_STREQ(str_at(o, "mode"), "xapic");
        CHECK_EQ_INT(bool_at(o, "x2apic"), 0);
        CHECK_EQ_INT(int_at(o, "apic_base.address"), 0xfee00000);
        CHECK_EQ_INT(bool_at(o, "apic_base.bsp"), 1);
        CHECK_EQ_INT(bool_at(o, "apic_base.enabled"), 1);
        CHECK_EQ_INT(int_at(o, "id"), 3);
        CHECK_EQ_INT(int_at(o, "version"), 0x14);
        CHECK_EQ_INT(int_at(o, "max_lvt"), 6);
        CHECK_EQ_INT(int_at(o, "tpr"), 0x20);
        CHECK_EQ_INT(int_at(o, "ppr"), 0x20);
        CHECK_EQ_INT(int_at(o, "ldr"), 0x01000000);
        CHECK_EQ_INT(int_at(o, "dfr"), 0xffffffffLL);
        CHECK_STREQ(str_at(o, "dfr_model"), "flat");
        CHECK_EQ_INT(bool_at(o, "svr.software_enabled"), 1);
        CHECK_EQ_INT(int_at(o, "svr.spurious_vector"), 0xff);
        CHECK_STREQ(json_to_string(field(o, "isr")), "[33]");
        CHECK_STREQ(json_to_string(field(o, "tmr")), "[255]");
        CHECK_STREQ(json_to_string(field(o, "irr")), "[16,64]");
        CHECK_EQ_INT(int_at(o, "esr"), 0x40);
        CHECK_EQ_INT(int_at(o, "icr.vector"), 0x30);
        CHECK_STREQ(str_at(o, "icr.delivery_mode"), "init");
        CHECK_STREQ(str_at(o, "icr.destination_mode"), "physical");
        CHECK_STREQ(str_at(o, "icr.level"), "assert");
        CHECK_STREQ(str_at(o, "icr.trigger_mode"), "edge");
        CHECK_STREQ(str_at(o, "icr.shorthand"), "all-excluding-self");
        CHECK_EQ_INT(int_at(o, "icr.destination"), 2);
        CHECK_EQ_INT(int_at(o, "lvt.timer.vector"), 0x40);
        CHECK_EQ_INT(bool_at(o, "lvt.timer.masked"), 0);
        CHECK_STREQ(str_at(o, "lvt.timer.timer_mode"), "periodic");
        CHECK(!field(o, "lvt.timer.delivery_mode"));
        CHECK_STREQ(str_at(o, "lvt.perf.delivery_mode"), "nmi");
        CHECK_EQ_INT(bool_at(o, "lvt.perf.masked"), 1);
        CHECK_STREQ(str_at(o, "lvt.lint0.delivery_mode"), "extint");
        CHECK_STREQ(str_at(o, "lvt.lint0.trigger_mode"), "edge");
        CHECK_STREQ(str_at(o, "lvt.lint1.delivery_mode"), "nmi");
        CHECK_STREQ(str_at(o, "lvt.lint1.trigger_mode"), "level");
        CHECK_STREQ(str_at(o, "lvt.lint1.polarity"), "active-low");
        CHECK_EQ_INT(int_at(o, "lvt.error.vector"), 0xfe);
        CHECK_EQ_INT(bool_at(o, "lvt.cmci.masked"), 1);
        CHECK_EQ_INT(bool_at(o, "lvt.thermal.masked"), 1);
        CHECK_STREQ(str_at(o, "timer.mode"), "periodic");
        CHECK_EQ_INT(int_at(o, "timer.initial_count"), 0x100000);
        CHECK_EQ_INT(int_at(o, "timer.current_count"), 0x0fff00);
        CHECK_EQ_INT(int_at(o, "timer.divide"), 16);
        json_object_put(o);
}

TEST(lapic_timer_divide_encodings) {
        static const struct {
                uint32_t dcr;
                int divisor;
        } cases[] = { { 0x0, 2 }, { 0x1, 4 }, { 0x2, 8 }, { 0x3, 16 }, { 0x8, 32 }, { 0x9, 64 }, { 0xa, 128 }, { 0xb, 1 } };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct kvm_lapic_state s;
                json_object *o = NULL;
                memset(&s, 0, sizeof s);
                set_reg(&s, 0x3e0, cases[i].dcr);
                ASSERT_EQ_INT(lapic_decode(&s, 0, false, &o), 0);
                CHECK_EQ_INT(int_at(o, "timer.divide"), cases[i].divisor);
                json_object_put(o);
        }
}

TEST(lapic_x2apic_mode_and_ids) {
        struct kvm_lapic_state s;
        json_object *o = NULL;
        memset(&s, 0, sizeof s);
        set_reg(&s, 0x20, 5u << 24);
        set_reg(&s, 0x310, 0x12345678);
        set_reg(&s, 0x320, (2u << 17) | (1u << 16) | 0xef);
        /* Without 32-bit IDs KVM reports an x2APIC's ID shifted to bits 31:24, as in xAPIC mode. */
        ASSERT_EQ_INT(lapic_decode(&s, 0xfee00000ULL | (1 << 11) | (1 << 10), false, &o), 0);
        CHECK_STREQ(str_at(o, "mode"), "x2apic");
        CHECK_EQ_INT(bool_at(o, "x2apic"), 1);
        CHECK_EQ_INT(bool_at(o, "apic_base.bsp"), 0);
        CHECK_EQ_INT(int_at(o, "id"), 5);
        CHECK_EQ_INT(int_at(o, "icr.destination"), 0x12345678);
        CHECK_STREQ(str_at(o, "timer.mode"), "tsc-deadline");
        CHECK_EQ_INT(bool_at(o, "timer.masked"), 1);
        CHECK_EQ_INT(int_at(o, "timer.vector"), 0xef);
        json_object_put(o);

        set_reg(&s, 0x20, 0x105);
        ASSERT_EQ_INT(lapic_decode(&s, 0xfee00000ULL | (1 << 11) | (1 << 10), true, &o), 0);
        CHECK_EQ_INT(int_at(o, "id"), 0x105);
        json_object_put(o);

        /* A disabled APIC (global enable off) is neither xAPIC nor x2APIC, whatever EXTD says. */
        ASSERT_EQ_INT(lapic_decode(&s, 0xfee00000ULL | (1 << 10), true, &o), 0);
        CHECK_STREQ(str_at(o, "mode"), "disabled");
        CHECK_EQ_INT(bool_at(o, "x2apic"), 0);
        CHECK_EQ_INT(int_at(o, "id"), 0);
        CHECK_STREQ(json_to_string(field(o, "irr")), "[]");
        json_object_put(o);
}
