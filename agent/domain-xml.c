/* SPDX-License-Identifier: MIT */
#include "domain-xml.h"

#include <cpuid.h>
#include <errno.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "str-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDocPtr, xmlFreeDoc);
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlParserCtxtPtr, xmlFreeParserCtxt);
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlBufferPtr, xmlBufferFree);
static inline void xml_freep(void *p) {
        if (*(void **) p)
                xmlFree(*(void **) p);
}
#define _cleanup_xml_free_ _cleanup_(xml_freep)

#define QEMU_NAMESPACE "http://libvirt.org/schemas/domain/qemu/1.0"

/* Without this, a DTD or entity declaration could still make libxml2 open a file or URL through its
 * default loader; kvmfleet's XML never needs anything from outside the document. */
static xmlParserInputPtr deny_external_entity(const char *url, const char *id, xmlParserCtxtPtr ctxt) {
        return NULL;
}

/* Errors reach callers through DomainXmlError; libxml2 must not print them on stderr as well. */
static void xml_error_discard(void *ctx, const char *msg, ...) {
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_setup(void) {
        xmlInitParser();
        xmlSetExternalEntityLoader(deny_external_entity);
}

void domain_xml_error_done(DomainXmlError *e) {
        if (!e)
                return;
        json_object_put(e->details);
        e->details = NULL;
}

unsigned domain_xml_error_http_status(const DomainXmlError *e) {
        switch (e->kind) {
        case DOMAIN_XML_ERROR_TOO_LARGE:
                return 413;
        case DOMAIN_XML_ERROR_SYNTAX:
                return 400;
        case DOMAIN_XML_ERROR_UNSUPPORTED:
        case DOMAIN_XML_ERROR_INVALID:
                return 422;
        }
        return 400;
}

const char *domain_xml_error_code(const DomainXmlError *e) {
        switch (e->kind) {
        case DOMAIN_XML_ERROR_TOO_LARGE:
                return "payload_too_large";
        case DOMAIN_XML_ERROR_UNSUPPORTED:
                return "unsupported";
        case DOMAIN_XML_ERROR_SYNTAX:
        case DOMAIN_XML_ERROR_INVALID:
                return "invalid_argument";
        }
        return "invalid_argument";
}

static int error_set(DomainXmlError *e, DomainXmlErrorKind kind, json_object *details, const char *fmt, ...)
        _printf_(4, 5);
static int error_set(DomainXmlError *e, DomainXmlErrorKind kind, json_object *details, const char *fmt, ...) {
        va_list ap;
        *e = (DomainXmlError) { .kind = kind, .details = details };
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* ---- sizes ---- */

int domain_xml_parse_size(const char *value, const char *unit, uint64_t default_unit_bytes, uint64_t *ret) {
        _cleanup_free_ char *copy = NULL;
        uint64_t v, scale;
        char *s;
        int r;

        if (!value)
                return -EINVAL;
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        s = strstrip(copy);
        if (!*s || strspn(s, "0123456789") != strlen(s))
                return -EINVAL;
        r = safe_atou64(s, &v);
        if (r < 0)
                return r;

        if (!unit || !*unit)
                scale = default_unit_bytes;
        else if (strchr("bB", unit[0])) {
                if (strcasecmp(unit, "b") != 0 && strcasecmp(unit, "byte") != 0 && strcasecmp(unit, "bytes") != 0)
                        return -EINVAL;
                scale = 1;
        } else {
                static const char powers[] = "kmgtpe";
                const char *p = strchr(powers, unit[0] | 0x20);
                uint64_t base;
                if (!p || !*p)
                        return -EINVAL;
                if (unit[1] == '\0' || strcasecmp(unit + 1, "iB") == 0)
                        base = 1024;
                else if ((unit[1] | 0x20) == 'b' && unit[2] == '\0')
                        base = 1000;
                else
                        return -EINVAL;
                scale = 1;
                for (long i = 0; i <= p - powers; i++)
                        scale *= base;
        }
        if (scale != 0 && v > UINT64_MAX / scale)
                return -ERANGE;
        *ret = v * scale;
        return 0;
}

/* ---- import ---- */

typedef struct Import {
        bool strict;
        json_object *spec;
        json_object *warnings;
        json_object *refused;
        size_t n_warnings, n_refused;

        const xmlNode *kernel, *raw_boot, *os;
        const xmlNode *memory, *current_memory;
        bool memory_seen;
        uint64_t memory_bytes, current_memory_bytes;
        const char *irqchip_feature, *irqchip_metadata;
        const xmlNode *irqchip_metadata_node;
        char *console_log;
        const xmlNode *console_log_node;
        bool have_hugepages;
        const char *source_type, *access_mode;
        const xmlNode *memory_backing;
        json_object *libvirt_metadata;
} Import;

static char *node_xpath(const xmlNode *node, const char *attr) {
        _cleanup_xml_free_ xmlChar *path = xmlGetNodePath(node);
        char *s = NULL;
        if (!path)
                return NULL;
        if (attr) {
                if (asprintf(&s, "%s/@%s", (const char *) path, attr) < 0)
                        return NULL;
                return s;
        }
        return strdup((const char *) path);
}

static int list_add(json_object *list, size_t *count, const xmlNode *node, const char *attr, const char *reason) {
        _cleanup_free_ char *xpath = NULL;
        json_object *item;

        (*count)++;
        if (*count > DOMAIN_XML_ITEMS_MAX)
                return 0;
        xpath = node_xpath(node, attr);
        if (!xpath || !(item = json_object_new_object()))
                return -ENOMEM;
        if (json_object_array_add(list, item) < 0) {
                json_object_put(item);
                return -ENOMEM;
        }
        if (json_add_string(item, "xpath", xpath) < 0 || json_add_string(item, "reason", reason) < 0)
                return -ENOMEM;
        return 0;
}

static int refuse(Import *im, const xmlNode *node, const char *attr, const char *fmt, ...) _printf_(4, 5);
static int refuse(Import *im, const xmlNode *node, const char *attr, const char *fmt, ...) {
        char reason[384];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        return list_add(im->refused, &im->n_refused, node, attr, reason);
}

/* Something kvmfleet does not map but can do without: a warning, or a refusal in strict mode. */
static int ignore(Import *im, const xmlNode *node, const char *attr, const char *why) {
        char reason[384];
        if (im->strict) {
                snprintf(reason, sizeof reason, "not mapped (strict): %s", why);
                return list_add(im->refused, &im->n_refused, node, attr, reason);
        }
        snprintf(reason, sizeof reason, "ignored: %s", why);
        return list_add(im->warnings, &im->n_warnings, node, attr, reason);
}

static bool is_element(const xmlNode *n) {
        return n->type == XML_ELEMENT_NODE;
}

static bool node_is(const xmlNode *n, const char *name) {
        return !n->ns && streq((const char *) n->name, name);
}

static const char *attr_get(const xmlNode *node, const char *name) {
        for (const xmlAttr *a = node->properties; a; a = a->next)
                if (!a->ns && streq((const char *) a->name, name) && a->children &&
                    a->children->type == XML_TEXT_NODE)
                        return (const char *) a->children->content;
        for (const xmlAttr *a = node->properties; a; a = a->next)
                if (!a->ns && streq((const char *) a->name, name))
                        return "";
        return NULL;
}

/* Attributes not in allowed (NULL-terminated) are ignored with why. */
static int check_attrs(Import *im, const xmlNode *node, const char *const *allowed, const char *why) {
        for (const xmlAttr *a = node->properties; a; a = a->next) {
                bool ok = false;
                for (size_t i = 0; allowed && allowed[i]; i++)
                        if (!a->ns && streq((const char *) a->name, allowed[i]))
                                ok = true;
                if (!ok) {
                        int r = ignore(im, node, (const char *) a->name, why);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Leaf elements kvmfleet maps carry text only. */
static int check_no_children(Import *im, const xmlNode *node) {
        for (const xmlNode *c = node->children; c; c = c->next)
                if (is_element(c)) {
                        int r = ignore(im, c, NULL, "unexpected element inside a value");
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* The text of an element; the document has no DTD, so there are no entity references to expand. */
static char *node_text(const xmlNode *node) {
        xmlChar *t = xmlNodeGetContent(node);
        char *s;
        if (!t)
                return strdup("");
        s = strdup((const char *) t);
        xmlFree(t);
        return s;
}

static char *node_text_stripped(const xmlNode *node) {
        char *s = node_text(node);
        if (!s)
                return NULL;
        char *t = strstrip(s);
        memmove(s, t, strlen(t) + 1);
        return s;
}

static int spec_set_string(json_object *obj, const char *key, const char *value) {
        return json_add_string(obj, key, value);
}

static int spec_sub(json_object *obj, const char *key, json_object **ret) {
        json_object *sub;
        if (json_object_object_get_ex(obj, key, &sub)) {
                *ret = sub;
                return 0;
        }
        if (!(sub = json_object_new_object()) || json_add(obj, key, sub) < 0)
                return -ENOMEM;
        *ret = sub;
        return 0;
}

static int import_text_field(Import *im, const xmlNode *node, json_object *obj, const char *key, bool strip) {
        _cleanup_free_ char *text = strip ? node_text_stripped(node) : node_text(node);
        int r;
        if (!text)
                return -ENOMEM;
        r = check_attrs(im, node, NULL, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        r = check_no_children(im, node);
        if (r < 0)
                return r;
        return spec_set_string(obj, key, text);
}

static int import_uuid(Import *im, const xmlNode *node) {
        _cleanup_free_ char *text = node_text_stripped(node);
        char canon[37];
        size_t n = 0;
        if (!text)
                return -ENOMEM;
        /* libvirt also reads 32 hex digits in any case, with or without dashes (in any place). */
        for (const char *p = text; *p && n < sizeof canon - 1; p++) {
                if (*p == '-')
                        continue;
                if (!((*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')))
                        return refuse(im, node, NULL, "not a UUID");
                if (n == 8 || n == 13 || n == 18 || n == 23)
                        canon[n++] = '-';
                canon[n++] = (char) ((*p >= 'A' && *p <= 'F') ? (*p | 0x20) : *p);
        }
        canon[n] = '\0';
        if (n != 36 || strspn(text, "0123456789abcdefABCDEF-") != strlen(text))
                return refuse(im, node, NULL, "not a UUID");
        return spec_set_string(im->spec, "uuid", canon);
}

static int import_size_element(Import *im, const xmlNode *node, uint64_t *ret) {
        static const char *const attrs[] = { "unit", "dumpCore", NULL };
        _cleanup_free_ char *text = node_text_stripped(node);
        int r;
        if (!text)
                return -ENOMEM;
        r = check_attrs(im, node, attrs, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        r = domain_xml_parse_size(text, attr_get(node, "unit"), 1024, ret);
        if (r == -ENOMEM)
                return r;
        if (r == -ERANGE)
                return refuse(im, node, NULL, "size overflows 64 bits");
        if (r < 0)
                return refuse(im, node, NULL, "not a size: a decimal number and a unit such as KiB, MiB, GB");
        return 1;
}

static int import_vcpu(Import *im, const xmlNode *node) {
        static const char *const attrs[] = { "placement", "cpuset", "current", NULL };
        _cleanup_free_ char *text = node_text_stripped(node);
        const char *placement = attr_get(node, "placement"), *cpuset = attr_get(node, "cpuset"),
                   *current = attr_get(node, "current");
        uint64_t n;
        int r;

        if (!text)
                return -ENOMEM;
        r = check_attrs(im, node, attrs, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        if (safe_atou64(text, &n) < 0 || n < 1 || n > VM_SPEC_VCPUS_MAX)
                return refuse(im, node, NULL, "must be a vCPU count from 1 to %d", VM_SPEC_VCPUS_MAX);
        r = json_add_uint(im->spec, "vcpus", n);
        if (r < 0)
                return r;
        if (placement && !streq(placement, "static")) {
                if (!streq(placement, "auto"))
                        return refuse(im, node, "placement", "must be static or auto");
                r = ignore(im, node, "placement", "kvmfleet has no automatic (numad) placement");
                if (r < 0)
                        return r;
        }
        if (cpuset) {
                _cleanup_free_ char *canon = NULL;
                r = vm_cpuset_normalize(cpuset, &canon);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return refuse(im, node, "cpuset", "must be a list of host CPUs 0 to %d such as 0-3,6",
                                      VM_SPEC_CPUSET_MAX);
                r = spec_set_string(im->spec, "cpuset", canon);
                if (r < 0)
                        return r;
        }
        if (current) {
                uint64_t c;
                if (safe_atou64(current, &c) < 0 || c < 1 || c > n)
                        return refuse(im, node, "current", "must be a vCPU count from 1 to the <vcpu> count");
                if (c != n) {
                        r = ignore(im, node, "current", "kvmfleet has no vCPU hotplug; every vCPU starts");
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int import_lifecycle(Import *im, const xmlNode *node, const char *key) {
        _cleanup_free_ char *text = node_text_stripped(node);
        VmLifecycleAction action;
        if (!text)
                return -ENOMEM;
        if (vm_lifecycle_action_from_string(text, &action) < 0)
                return refuse(im, node, NULL, "kvmfleet's supervisor supports destroy, restart and preserve, not \"%.64s\"",
                              text);
        return spec_set_string(im->spec, key, text);
}

static int import_os(Import *im, const xmlNode *os) {
        json_object *boot;
        int r;

        im->os = os;
        r = spec_sub(im->spec, "boot", &boot);
        if (r < 0)
                return r;
        for (const xmlAttr *a = os->properties; a; a = a->next) {
                if (streq((const char *) a->name, "firmware"))
                        r = refuse(im, os, "firmware", "kvmfleet boots a kernel directly; it has no firmware");
                else
                        r = ignore(im, os, (const char *) a->name, "attribute kvmfleet does not map");
                if (r < 0)
                        return r;
        }
        for (const xmlNode *c = os->children; c; c = c->next) {
                if (!is_element(c))
                        continue;
                if (node_is(c, "type")) {
                        static const char *const attrs[] = { "arch", "machine", NULL };
                        _cleanup_free_ char *text = node_text_stripped(c);
                        const char *arch = attr_get(c, "arch");
                        if (!text)
                                return -ENOMEM;
                        if (!streq(text, "hvm"))
                                r = refuse(im, c, NULL, "kvmfleet runs hvm guests only, not \"%.32s\"", text);
                        else if (arch && !streq(arch, "x86_64"))
                                r = refuse(im, c, "arch", "kvmfleet runs x86_64 guests only, not \"%.32s\"", arch);
                        else if (attr_get(c, "machine"))
                                r = ignore(im, c, "machine", "kvmfleet-vmm is its own machine type");
                        if (r < 0)
                                return r;
                        r = check_attrs(im, c, attrs, "attribute kvmfleet does not map");
                } else if (node_is(c, "kernel")) {
                        im->kernel = c;
                        r = import_text_field(im, c, boot, "kernel", true);
                } else if (node_is(c, "initrd"))
                        r = import_text_field(im, c, boot, "initrd", true);
                else if (node_is(c, "cmdline"))
                        r = import_text_field(im, c, boot, "cmdline", false);
                else if (node_is(c, "boot"))
                        r = ignore(im, c, NULL, "kvmfleet boots the kernel directly, not from a device");
                else if (node_is(c, "bootmenu") || node_is(c, "bios") || node_is(c, "smbios"))
                        r = ignore(im, c, NULL, "kvmfleet has no firmware to configure");
                else if (node_is(c, "loader") || node_is(c, "nvram") || node_is(c, "firmware"))
                        r = refuse(im, c, NULL, "kvmfleet boots a kernel directly; it has no firmware or NVRAM");
                else if (node_is(c, "acpi") || node_is(c, "dtb"))
                        r = refuse(im, c, NULL, "firmware tables from files are guest data kvmfleet cannot provide");
                else
                        r = refuse(im, c, NULL, "unknown to kvmfleet");
                if (r < 0)
                        return r;
        }
        return 0;
}

static int import_memory_backing(Import *im, const xmlNode *mb) {
        int r = check_attrs(im, mb, NULL, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        im->memory_backing = mb;
        for (const xmlNode *c = mb->children; c; c = c->next) {
                if (!is_element(c))
                        continue;
                if (node_is(c, "hugepages")) {
                        im->have_hugepages = true;
                        r = check_attrs(im, c, NULL, "attribute kvmfleet does not map");
                        for (const xmlNode *p = c->children; r >= 0 && p; p = p->next) {
                                static const char *const attrs[] = { "size", "unit", "nodeset", NULL };
                                uint64_t size;
                                if (!is_element(p))
                                        continue;
                                if (!node_is(p, "page")) {
                                        r = refuse(im, p, NULL, "unknown to kvmfleet");
                                        continue;
                                }
                                r = check_attrs(im, p, attrs, "attribute kvmfleet does not map");
                                if (r < 0)
                                        break;
                                if (attr_get(p, "nodeset"))
                                        r = ignore(im, p, "nodeset", "kvmfleet guests have one NUMA node");
                                if (r < 0)
                                        break;
                                r = domain_xml_parse_size(attr_get(p, "size"), attr_get(p, "unit"), 1024, &size);
                                if (r == -ENOMEM)
                                        return r;
                                if (r < 0)
                                        r = refuse(im, p, "size", "not a page size");
                                else if (size != VM_SPEC_HUGEPAGE_SIZE)
                                        r = refuse(im, p, "size", "kvmfleet-vmm backs RAM with 2 MiB huge pages only");
                        }
                } else if (node_is(c, "source")) {
                        static const char *const attrs[] = { "type", NULL };
                        const char *type = attr_get(c, "type");
                        r = check_attrs(im, c, attrs, "attribute kvmfleet does not map");
                        if (r >= 0 && type && !streq(type, "memfd") && !streq(type, "anonymous"))
                                r = refuse(im, c, "type", "kvmfleet backs RAM with memfd or anonymous memory, not \"%.32s\"",
                                           type);
                        else
                                im->source_type = type;
                } else if (node_is(c, "access")) {
                        static const char *const attrs[] = { "mode", NULL };
                        const char *mode = attr_get(c, "mode");
                        r = check_attrs(im, c, attrs, "attribute kvmfleet does not map");
                        if (r >= 0 && mode && !streq(mode, "shared") && !streq(mode, "private"))
                                r = refuse(im, c, "mode", "must be shared or private");
                        else
                                im->access_mode = mode;
                } else if (node_is(c, "nosharepages") || node_is(c, "locked") || node_is(c, "allocation") ||
                           node_is(c, "discard"))
                        r = ignore(im, c, NULL, "kvmfleet-vmm manages guest RAM itself");
                else
                        r = refuse(im, c, NULL, "unknown to kvmfleet");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* memoryBacking → memory_backing, once every child is known: memfd and hugetlb RAM is mapped shared,
 * anonymous RAM private. */
static int memory_backing_resolve(Import *im) {
        const char *backing = NULL;
        if (!im->memory_backing)
                return 0;
        if (im->have_hugepages) {
                if (im->source_type && streq(im->source_type, "anonymous"))
                        return refuse(im, im->memory_backing, NULL,
                                      "kvmfleet takes huge pages from a hugetlb memfd, not anonymous memory");
                if (im->access_mode && streq(im->access_mode, "private"))
                        return refuse(im, im->memory_backing, NULL, "kvmfleet maps hugetlb RAM shared, not private");
                backing = "hugetlb";
        } else if (im->source_type) {
                backing = im->source_type;
                if (im->access_mode && streq(backing, "memfd") && streq(im->access_mode, "private"))
                        return refuse(im, im->memory_backing, NULL, "kvmfleet maps memfd RAM shared, not private");
                if (im->access_mode && streq(backing, "anonymous") && streq(im->access_mode, "shared"))
                        return refuse(im, im->memory_backing, NULL, "kvmfleet maps anonymous RAM private, not shared");
        } else if (im->access_mode)
                backing = streq(im->access_mode, "shared") ? "memfd" : "anonymous";
        return backing ? spec_set_string(im->spec, "memory_backing", backing) : 0;
}

static int import_cpu(Import *im, const xmlNode *cpu) {
        static const char *const attrs[] = { "mode", "match", "check", "migratable", NULL };
        const char *mode = attr_get(cpu, "mode");
        json_object *cpu_obj;
        int r;

        r = check_attrs(im, cpu, attrs, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        if (mode && !streq(mode, "host-passthrough")) {
                if (!streq(mode, "host-model") && !streq(mode, "custom") && !streq(mode, "maximum"))
                        return refuse(im, cpu, "mode", "unknown CPU mode");
                r = ignore(im, cpu, "mode", "kvmfleet gives guests the host CPU (host-passthrough)");
                if (r < 0)
                        return r;
        }
        for (const xmlNode *c = cpu->children; c; c = c->next) {
                if (!is_element(c))
                        continue;
                if (node_is(c, "feature")) {
                        static const char *const fattrs[] = { "policy", "name", NULL };
                        const char *name = attr_get(c, "name"), *policy = attr_get(c, "policy");
                        r = check_attrs(im, c, fattrs, "attribute kvmfleet does not map");
                        if (r < 0)
                                return r;
                        if (!name || (!streq(name, "vmx") && !streq(name, "svm"))) {
                                r = ignore(im, c, NULL, "kvmfleet passes the host's CPUID through; only vmx/svm (nested) is mapped");
                        } else if (!policy || streq(policy, "require") || streq(policy, "force")) {
                                r = spec_sub(im->spec, "cpu", &cpu_obj);
                                if (r >= 0)
                                        r = json_add_bool(cpu_obj, "nested", true);
                        } else if (streq(policy, "disable") || streq(policy, "forbid")) {
                                r = spec_sub(im->spec, "cpu", &cpu_obj);
                                if (r >= 0)
                                        r = json_add_bool(cpu_obj, "nested", false);
                        } else if (streq(policy, "optional"))
                                r = ignore(im, c, "policy", "nested virtualization is exposed only on require or force");
                        else
                                r = refuse(im, c, "policy", "must be require, force, optional, disable or forbid");
                } else if (node_is(c, "model") || node_is(c, "vendor"))
                        r = ignore(im, c, NULL, "kvmfleet gives guests the host CPU (host-passthrough)");
                else if (node_is(c, "topology") || node_is(c, "cache") || node_is(c, "maxphysaddr"))
                        r = ignore(im, c, NULL, "kvmfleet sets no CPU topology, cache or address-size overrides");
                else if (node_is(c, "numa"))
                        r = ignore(im, c, NULL, "kvmfleet guests have one NUMA node");
                else
                        r = refuse(im, c, NULL, "unknown to kvmfleet");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* An on|off attribute of node that maps to cpu.kvm_pv.FEATURE; absent: KVM's default stays. */
static int import_kvm_pv_switch(Import *im, const xmlNode *node, const char *attr, const char *feature) {
        const char *v = attr_get(node, attr);
        json_object *cpu, *pv;
        if (!v)
                return 0;
        if (!streq(v, "on") && !streq(v, "off"))
                return refuse(im, node, attr, "must be on or off");
        int r = spec_sub(im->spec, "cpu", &cpu);
        if (r >= 0)
                r = spec_sub(cpu, "kvm_pv", &pv);
        if (r >= 0)
                r = json_add_bool(pv, feature, streq(v, "on"));
        return r;
}

static int import_features(Import *im, const xmlNode *features) {
        int r = check_attrs(im, features, NULL, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        for (const xmlNode *c = features->children; c; c = c->next) {
                if (!is_element(c))
                        continue;
                if (node_is(c, "apic")) {
                        /* eoi: the KVM paravirtual EOI (cpu.kvm_pv.pv_eoi) */
                        static const char *const attrs[] = { "eoi", NULL };
                        r = check_attrs(im, c, attrs, "attribute kvmfleet does not map");
                        if (r >= 0)
                                r = import_kvm_pv_switch(im, c, "eoi", "pv_eoi");
                } else if (node_is(c, "pvspinlock")) {
                        /* state: KVM_FEATURE_PV_UNHALT, what paravirtual spinlocks need */
                        static const char *const attrs[] = { "state", NULL };
                        r = check_attrs(im, c, attrs, "attribute kvmfleet does not map");
                        if (r >= 0)
                                r = import_kvm_pv_switch(im, c, "state", "pv_unhalt");
                }
                else if (node_is(c, "ioapic")) {
                        static const char *const attrs[] = { "driver", NULL };
                        const char *driver = attr_get(c, "driver");
                        r = check_attrs(im, c, attrs, "attribute kvmfleet does not map");
                        if (r >= 0 && driver) {
                                if (streq(driver, "kvm"))
                                        im->irqchip_feature = "kernel";
                                else if (streq(driver, "qemu"))
                                        im->irqchip_feature = "split";
                                else
                                        r = refuse(im, c, "driver", "must be kvm (in-kernel irqchip) or qemu (split irqchip)");
                        }
                } else if (node_is(c, "acpi"))
                        r = ignore(im, c, NULL, "kvmfleet-vmm writes ACPI tables for guests with more than one vCPU");
                else
                        r = ignore(im, c, NULL, "kvmfleet-vmm does not offer this hypervisor feature");
                if (r < 0)
                        return r;
        }
        return 0;
}

static int console_log_set(Import *im, const xmlNode *node, const char *path) {
        if (!path || !*path)
                return refuse(im, node, NULL, "needs a file path");
        if (im->console_log) {
                if (!streq(im->console_log, path))
                        return refuse(im, node, NULL, "a second console log file; kvmfleet's console has one");
                return 0;
        }
        im->console_log = strdup(path);
        im->console_log_node = node;
        return im->console_log ? 0 : -ENOMEM;
}

/* <serial> and <console>: kvmfleet has one serial port (COM1), the console, read through the API and
 * logged to a file when the device is of type file (or a pty with <log file=…>). */
static int import_chardev(Import *im, const xmlNode *dev) {
        static const char *const attrs[] = { "type", "tty", NULL };
        bool console = node_is(dev, "console");
        const char *type = attr_get(dev, "type");
        const xmlNode *target = NULL, *source = NULL, *log = NULL;
        int r;

        for (const xmlNode *c = dev->children; c; c = c->next) {
                if (!is_element(c))
                        continue;
                if (node_is(c, "target"))
                        target = c;
                else if (node_is(c, "source"))
                        source = c;
                else if (node_is(c, "log"))
                        log = c;
                else if (!node_is(c, "alias") && !node_is(c, "address")) {
                        r = ignore(im, c, NULL, "kvmfleet's serial port has no such setting");
                        if (r < 0)
                                return r;
                }
        }
        if (target) {
                const char *port = attr_get(target, "port"), *ttype = attr_get(target, "type");
                if (console && ttype && !streq(ttype, "serial"))
                        return ignore(im, dev, NULL, "kvmfleet has no console other than the serial port");
                if (port && !streq(port, "0"))
                        return ignore(im, dev, NULL, "kvmfleet has one serial port (COM1, port 0)");
                if (!console && ttype && !streq(ttype, "isa-serial"))
                        return refuse(im, target, "type", "kvmfleet's serial port is an ISA 16550A");
        }
        r = check_attrs(im, dev, attrs, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        if (!type || streq(type, "pty")) {
                if (log)
                        return console_log_set(im, log, attr_get(log, "file"));
                return 0;
        }
        if (streq(type, "file"))
                return console_log_set(im, source ? source : dev, source ? attr_get(source, "path") : NULL);
        if (streq(type, "null"))
                return ignore(im, dev, "type", "kvmfleet always keeps the console in a ring buffer read through the API");
        return refuse(im, dev, "type",
                      "kvmfleet's console is read through the API and can be logged to a file (pty or file), not \"%.32s\"",
                      type);
}

/* Appends an object to spec[key] (an array, created on first use); *ret is borrowed. */
static int spec_array_append(json_object *spec, const char *key, json_object **ret) {
        json_object *arr, *item;
        if (!json_object_object_get_ex(spec, key, &arr)) {
                arr = json_object_new_array();
                if (!arr || json_add(spec, key, arr) < 0)
                        return -ENOMEM;
        }
        item = json_object_new_object();
        if (!item || json_object_array_add(arr, item) < 0) {
                json_object_put(item);
                return -ENOMEM;
        }
        *ret = item;
        return 0;
}

/* <address> places the device on a PCI slot of libvirt's choosing; kvmfleet-vmm numbers slots in
 * document order itself. <alias> is a name for libvirt's own use. */
static int import_device_placement(Import *im, const xmlNode *c) {
        if (node_is(c, "alias"))
                return 0;
        return ignore(im, c, NULL, "kvmfleet-vmm places its virtio devices on PCI bus 0 itself, in document order");
}

/* <disk type='file'|'block' device='disk'> on bus virtio with a raw image: a virtio-blk disk. */
static int import_disk(Import *im, const xmlNode *disk) {
        static const char *const attrs[] = { "type", "device", "snapshot", "model", NULL };
        const char *type = attr_get(disk, "type"), *device = attr_get(disk, "device"), *model = attr_get(disk, "model");
        const xmlNode *source = NULL, *target = NULL;
        bool readonly = false;
        _cleanup_free_ char *serial = NULL;
        json_object *item;
        size_t refused = im->n_refused;
        int r;

        /* A disk of another kind is refused as a whole: its children describe something else. */
        if (!type || (!streq(type, "file") && !streq(type, "block")))
                return refuse(im, disk, "type",
                              "kvmfleet attaches raw image files and block devices (type file or block), not \"%.32s\"",
                              type ?: "");
        if (device && !streq(device, "disk"))
                return refuse(im, disk, "device", "kvmfleet attaches disks only (virtio-blk), not a %.32s", device);
        if (model && !streq(model, "virtio") && !streq(model, "virtio-non-transitional"))
                return refuse(im, disk, "model", "kvmfleet's disks are modern virtio-blk devices, not \"%.32s\"", model);
        r = check_attrs(im, disk, attrs, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        if (attr_get(disk, "snapshot")) {
                r = ignore(im, disk, "snapshot", "kvmfleet takes no disk snapshots");
                if (r < 0)
                        return r;
        }

        for (const xmlNode *c = disk->children; c; c = c->next) {
                if (!is_element(c))
                        continue;
                if (node_is(c, "driver")) {
                        const char *name = attr_get(c, "name"), *dtype = attr_get(c, "type");
                        r = 0;
                        if (name && !streq(name, "qemu"))
                                r = refuse(im, c, "name", "must be qemu (the hypervisor's own block driver)");
                        else if (dtype && !streq(dtype, "raw"))
                                r = refuse(im, c, "type",
                                           "kvmfleet attaches raw images only, not %.32s (convert with qemu-img convert -O raw)",
                                           dtype);
                        for (const xmlAttr *a = c->properties; r >= 0 && a; a = a->next) {
                                const char *an = (const char *) a->name, *v = attr_get(c, an);
                                if (a->ns || streq(an, "name") || streq(an, "type"))
                                        continue;
                                /* Host-side caching, I/O submission and zero detection: the guest sees
                                 * the same device and the same data either way. */
                                if (streq(an, "cache") || streq(an, "io") || streq(an, "detect_zeroes") ||
                                    streq(an, "iothread") || streq(an, "queues") || streq(an, "queue_size"))
                                        r = ignore(im, c, an, "kvmfleet-vmm chooses its own host I/O path");
                                else if ((streq(an, "discard") && streq(v, "ignore")) ||
                                         ((streq(an, "error_policy") || streq(an, "rerror_policy")) && streq(v, "report")))
                                        r = 0;
                                else if (streq(an, "discard"))
                                        r = refuse(im, c, an, "kvmfleet's disks offer no discard to the guest");
                                else if (streq(an, "error_policy") || streq(an, "rerror_policy"))
                                        r = refuse(im, c, an, "kvmfleet reports I/O errors to the guest (report); it never pauses the VM");
                                else
                                        r = refuse(im, c, an, "a driver setting that changes what the guest sees");
                        }
                } else if (node_is(c, "source")) {
                        static const char *const sattrs[] = { "file", "dev", "index", NULL };
                        const char *want = type && streq(type, "block") ? "dev" : "file";
                        source = c;
                        if (!attr_get(c, want))
                                r = refuse(im, c, NULL, "needs the %s attribute for a disk of type %s", want,
                                           type ?: "file");
                        else
                                r = 0;
                        for (const xmlAttr *a = c->properties; r >= 0 && a; a = a->next) {
                                bool ok = false;
                                for (size_t i = 0; sattrs[i]; i++)
                                        ok |= !a->ns && streq((const char *) a->name, sattrs[i]);
                                if (!ok)
                                        r = refuse(im, c, (const char *) a->name, "a source setting kvmfleet does not support");
                        }
                        for (const xmlNode *k = c->children; r >= 0 && k; k = k->next)
                                if (is_element(k))
                                        r = refuse(im, k, NULL, "a source setting kvmfleet does not support");
                } else if (node_is(c, "target")) {
                        static const char *const tattrs[] = { "dev", "bus", NULL };
                        const char *bus = attr_get(c, "bus"), *dev = attr_get(c, "dev");
                        target = c;
                        if (bus && !streq(bus, "virtio"))
                                r = refuse(im, c, "bus", "kvmfleet's disks are virtio-blk (bus virtio), not %.32s", bus);
                        else if (!bus && (!dev || !startswith(dev, "vd")))
                                r = refuse(im, c, NULL, "needs bus='virtio' (or a vdX device name)");
                        else
                                r = check_attrs(im, c, tattrs, "attribute kvmfleet does not map");
                } else if (node_is(c, "readonly")) {
                        readonly = true;
                        r = 0;
                } else if (node_is(c, "serial")) {
                        free(serial);
                        serial = node_text_stripped(c);
                        r = serial ? 0 : -ENOMEM;
                } else if (node_is(c, "backingStore")) {
                        /* Written empty by libvirt for an image without a backing file. */
                        bool empty = !attr_get(c, "type");
                        for (const xmlNode *k = c->children; k; k = k->next)
                                empty &= !is_element(k);
                        r = empty ? 0 : refuse(im, c, NULL, "kvmfleet attaches standalone raw images, without a backing chain");
                } else if (node_is(c, "alias") || node_is(c, "address"))
                        r = import_device_placement(im, c);
                else if (node_is(c, "boot"))
                        r = ignore(im, c, NULL, "kvmfleet boots the kernel directly, not from a device");
                else if (node_is(c, "iotune"))
                        r = ignore(im, c, NULL, "kvmfleet sets no block I/O limits");
                else if (node_is(c, "shareable"))
                        r = refuse(im, c, NULL, "kvmfleet attaches an image written by a VM to that VM only");
                else if (node_is(c, "encryption") || node_is(c, "auth"))
                        r = refuse(im, c, NULL, "kvmfleet attaches plain raw images only");
                else if (node_is(c, "blockio") || node_is(c, "geometry") || node_is(c, "wwn") || node_is(c, "vendor") ||
                         node_is(c, "product") || node_is(c, "transient"))
                        r = refuse(im, c, NULL, "kvmfleet's virtio-blk disks have no such setting");
                else
                        r = refuse(im, c, NULL, "unknown to kvmfleet");
                if (r < 0)
                        return r;
        }
        if (!source)
                r = refuse(im, disk, NULL, "needs a <source>: kvmfleet has no empty drives");
        else if (!target)
                r = refuse(im, disk, NULL, "needs a <target dev='vdX' bus='virtio'/>");
        else
                r = 0;
        if (r < 0 || im->n_refused > refused)
                return r;

        r = spec_array_append(im->spec, "disks", &item);
        if (r >= 0)
                r = spec_set_string(item, "path", attr_get(source, type && streq(type, "block") ? "dev" : "file"));
        if (r >= 0 && readonly)
                r = json_add_bool(item, "readonly", true);
        if (r >= 0 && serial)
                r = spec_set_string(item, "serial", serial);
        return r;
}

/* <interface type='ethernet'> with a target tap and a virtio model: a virtio-net NIC on that tap. */
static int import_interface(Import *im, const xmlNode *iface) {
        static const char *const attrs[] = { "type", "trustGuestRxFilters", NULL };
        const char *type = attr_get(iface, "type");
        const xmlNode *target = NULL, *mac = NULL, *model = NULL;
        size_t refused = im->n_refused;
        json_object *item;
        int r;

        if (!type || !streq(type, "ethernet"))
                return refuse(im, iface, "type",
                              "kvmfleet attaches to an existing tap device (type ethernet with <target dev>), not \"%.32s\"; "
                              "it creates no bridges, networks or user-mode stacks",
                              type ?: "");
        r = check_attrs(im, iface, attrs, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        for (const xmlNode *c = iface->children; c; c = c->next) {
                if (!is_element(c))
                        continue;
                if (node_is(c, "target")) {
                        static const char *const tattrs[] = { "dev", "managed", NULL };
                        const char *managed = attr_get(c, "managed");
                        target = c;
                        if (!attr_get(c, "dev") || !*attr_get(c, "dev"))
                                r = refuse(im, c, NULL, "needs dev, the name of the tap device");
                        else if (managed && !streq(managed, "no"))
                                r = refuse(im, c, "managed", "kvmfleet attaches to an existing tap (managed='no')");
                        else
                                r = check_attrs(im, c, tattrs, "attribute kvmfleet does not map");
                } else if (node_is(c, "mac")) {
                        static const char *const mattrs[] = { "address", NULL };
                        mac = c;
                        r = attr_get(c, "address") ? check_attrs(im, c, mattrs, "attribute kvmfleet does not map")
                                                   : refuse(im, c, NULL, "needs address");
                } else if (node_is(c, "model")) {
                        const char *m = attr_get(c, "type");
                        model = c;
                        if (!m || (!streq(m, "virtio") && !streq(m, "virtio-non-transitional")))
                                r = refuse(im, c, "type", "kvmfleet's NICs are virtio-net, not \"%.32s\"", m ?: "");
                        else
                                r = 0;
                } else if (node_is(c, "driver")) {
                        const char *name = attr_get(c, "name");
                        r = name && !streq(name, "vhost") && !streq(name, "qemu")
                                    ? refuse(im, c, "name", "must be vhost or qemu")
                                    : ignore(im, c, NULL, "kvmfleet-vmm chooses its own host packet path");
                } else if (node_is(c, "link")) {
                        const char *state = attr_get(c, "state");
                        r = state && !streq(state, "up") ? refuse(im, c, "state", "kvmfleet's NICs start with the link up")
                                                          : 0;
                } else if (node_is(c, "alias") || node_is(c, "address"))
                        r = import_device_placement(im, c);
                else if (node_is(c, "boot") || node_is(c, "rom"))
                        r = ignore(im, c, NULL, "kvmfleet boots the kernel directly; it has no network boot ROM");
                else if (node_is(c, "bandwidth"))
                        r = ignore(im, c, NULL, "kvmfleet sets no traffic shaping on the tap");
                else if (node_is(c, "script") || node_is(c, "downscript") || node_is(c, "ip") || node_is(c, "route"))
                        r = refuse(im, c, NULL, "kvmfleet does not configure the host side of the tap; set it up before define");
                else if (node_is(c, "mtu") || node_is(c, "coalesce") || node_is(c, "tune") || node_is(c, "filterref") ||
                         node_is(c, "vlan") || node_is(c, "virtualport") || node_is(c, "source") || node_is(c, "backend") ||
                         node_is(c, "port") || node_is(c, "teaming"))
                        r = refuse(im, c, NULL, "kvmfleet's virtio-net NICs have no such setting");
                else
                        r = refuse(im, c, NULL, "unknown to kvmfleet");
                if (r < 0)
                        return r;
        }
        if (!target)
                r = refuse(im, iface, NULL, "needs <target dev='TAP'/>: kvmfleet attaches to an existing tap");
        else if (!model)
                r = ignore(im, iface, NULL, "no <model>: kvmfleet's NICs are virtio-net");
        if (r < 0 || im->n_refused > refused)
                return r;
        r = spec_array_append(im->spec, "nics", &item);
        if (r >= 0)
                r = spec_set_string(item, "tap", attr_get(target, "dev"));
        if (r >= 0 && mac)
                r = spec_set_string(item, "mac", attr_get(mac, "address"));
        return r;
}

static int import_devices(Import *im, const xmlNode *devices) {
        static const struct {
                const char *name;
                bool refuse;
                const char *reason;
        } table[] = {
                { "emulator", false, "kvmfleet runs its own VMM, kvmfleet-vmm" },
                { "controller", false, "kvmfleet has no such controller (one PCI root bus; no USB, SATA or SCSI controllers)" },
                { "memballoon", false, "kvmfleet has no memory balloon" },
                { "input", false, "kvmfleet has no input devices" },
                { "video", false, "kvmfleet has no display" },
                { "sound", false, "kvmfleet has no sound device" },
                { "audio", false, "kvmfleet has no sound device" },
                { "hub", false, "kvmfleet has no USB" },
                { "watchdog", false, "kvmfleet has no watchdog device" },
                { "panic", false, "kvmfleet has no panic device; a crash is seen as the VM's end" },
                { "rng", false, "kvmfleet has no random number device" },
                { "channel", false, "kvmfleet has no guest agent channels" },
                { "iommu", false, "kvmfleet has no IOMMU" },
                { "parallel", false, "kvmfleet has no parallel port" },
                { "hostdev", true, "host device assignment is not supported" },
                { "filesystem", true, "shared filesystems hold guest data; not supported" },
                { "graphics", false, "kvmfleet has no graphical console; the guest's console is its serial port" },
                { "redirdev", true, "USB redirection is not supported" },
                { "redirfilter", true, "USB redirection is not supported" },
                { "smartcard", true, "smartcards hold identity; not supported" },
                { "tpm", true, "a TPM holds the guest's keys; not supported" },
                { "shmem", true, "shared memory holds guest data; not supported" },
                { "memory", true, "memory devices (hotplug, NVDIMM) hold guest data; not supported" },
                { "vsock", true, "a vsock CID is guest identity; not supported" },
                { "lease", true, "lock manager leases are not supported" },
                { "crypto", true, "crypto devices are not supported" },
                { "nvram", true, "NVRAM holds guest data; not supported" },
        };
        int r = check_attrs(im, devices, NULL, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        for (const xmlNode *c = devices->children; c; c = c->next) {
                bool known = false;
                if (!is_element(c))
                        continue;
                if (node_is(c, "serial") || node_is(c, "console") || node_is(c, "disk") || node_is(c, "interface")) {
                        r = node_is(c, "disk")        ? import_disk(im, c)
                            : node_is(c, "interface") ? import_interface(im, c)
                                                      : import_chardev(im, c);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t i = 0; !c->ns && i < ELEMENTSOF(table); i++)
                        if (streq((const char *) c->name, table[i].name)) {
                                known = true;
                                if (table[i].refuse)
                                        r = refuse(im, c, NULL, "%s", table[i].reason);
                                else if (streq(table[i].name, "memballoon") && streq_ptr(attr_get(c, "model"), "none"))
                                        r = 0;
                                else if (streq(table[i].name, "controller") && streq_ptr(attr_get(c, "type"), "pci") &&
                                         (streq_ptr(attr_get(c, "model"), "pci-root") ||
                                          streq_ptr(attr_get(c, "model"), "pcie-root")))
                                        r = 0; /* kvmfleet-vmm's devices sit on its one PCI root bus */
                                else if (streq(table[i].name, "controller") && attr_get(c, "type")) {
                                        char why[128];
                                        if (streq(attr_get(c, "type"), "pci"))
                                                snprintf(why, sizeof why, "kvmfleet-vmm has one PCI root bus and no %.32s",
                                                         attr_get(c, "model") ?: "other PCI controller");
                                        else
                                                snprintf(why, sizeof why, "kvmfleet has no %.32s controller", attr_get(c, "type"));
                                        r = ignore(im, c, NULL, why);
                                } else
                                        r = ignore(im, c, NULL, table[i].reason);
                                break;
                        }
                if (!known)
                        r = refuse(im, c, NULL, "unknown to kvmfleet");
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool attr_yes_no(const char *v, bool *ret) {
        if (v && streq(v, "yes"))
                *ret = true;
        else if (v && streq(v, "no"))
                *ret = false;
        else
                return false;
        return true;
}

/* <kvmfleet:vm>: the settings libvirt has no element for. */
static int import_kvmfleet_metadata(Import *im, const xmlNode *vm) {
        json_object *sub, *arr;
        int r;

        for (const xmlNode *c = vm->children; c; c = c->next) {
                const char *name = (const char *) c->name;
                if (!is_element(c))
                        continue;
                if (!c->ns || !streq((const char *) c->ns->href, DOMAIN_XML_NAMESPACE)) {
                        r = refuse(im, c, NULL, "unknown kvmfleet setting");
                } else if (streq(name, "irqchip")) {
                        const char *mode = attr_get(c, "mode");
                        if (!mode || (!streq(mode, "kernel") && !streq(mode, "split") && !streq(mode, "none")))
                                r = refuse(im, c, "mode", "must be kernel, split or none");
                        else {
                                im->irqchip_metadata = mode;
                                im->irqchip_metadata_node = c;
                                r = 0;
                        }
                } else if (streq(name, "pit")) {
                        bool reinject;
                        if (!attr_yes_no(attr_get(c, "reinject"), &reinject))
                                r = refuse(im, c, "reinject", "must be yes or no");
                        else {
                                r = spec_sub(im->spec, "pit", &sub);
                                if (r >= 0)
                                        r = json_add_bool(sub, "reinject", reinject);
                        }
                } else if (streq(name, "kvm-pv")) {
                        /* cpu.kvm_pv settings without a libvirt element: NAME='on|off' each */
                        r = 0;
                        for (const xmlAttr *a = c->properties; r >= 0 && a; a = a->next) {
                                const char *an = (const char *) a->name;
                                if (vm_kvm_pv_feature_from_name(an) < 0)
                                        r = refuse(im, c, an, "unknown KVM paravirtual feature");
                                else
                                        r = import_kvm_pv_switch(im, c, an, an);
                        }
                } else if (streq(name, "boot")) {
                        const char *raw = attr_get(c, "raw"), *load = attr_get(c, "load-addr"),
                                   *entry = attr_get(c, "entry"), *mode = attr_get(c, "mode");
                        if (!raw || !load || !entry || !mode)
                                r = refuse(im, c, NULL, "needs raw, load-addr, entry and mode");
                        else {
                                im->raw_boot = c;
                                r = spec_sub(im->spec, "boot", &sub);
                                if (r >= 0)
                                        r = spec_set_string(sub, "raw", raw);
                                if (r >= 0)
                                        r = spec_set_string(sub, "load_addr", load);
                                if (r >= 0)
                                        r = spec_set_string(sub, "entry", entry);
                                if (r >= 0)
                                        r = spec_set_string(sub, "mode", mode);
                        }
                } else if (streq(name, "disk") || streq(name, "nic")) {
                        bool disk = streq(name, "disk");
                        json_object *item = json_object_new_object();
                        if (!json_object_object_get_ex(im->spec, disk ? "disks" : "nics", &arr)) {
                                arr = json_object_new_array();
                                if (!arr || json_add(im->spec, disk ? "disks" : "nics", arr) < 0) {
                                        json_object_put(item);
                                        return -ENOMEM;
                                }
                        }
                        if (!item || json_object_array_add(arr, item) < 0) {
                                json_object_put(item);
                                return -ENOMEM;
                        }
                        r = 0;
                        for (const xmlAttr *a = c->properties; r >= 0 && a; a = a->next) {
                                const char *an = (const char *) a->name, *v = attr_get(c, an);
                                bool b;
                                if (disk && streq(an, "readonly")) {
                                        if (!attr_yes_no(v, &b))
                                                r = refuse(im, c, an, "must be yes or no");
                                        else
                                                r = json_add_bool(item, "readonly", b);
                                } else if ((disk && (streq(an, "path") || streq(an, "serial"))) ||
                                           (!disk && (streq(an, "tap") || streq(an, "mac"))))
                                        r = spec_set_string(item, an, v);
                                else
                                        r = refuse(im, c, an, "unknown kvmfleet setting");
                        }
                } else
                        r = refuse(im, c, NULL, "unknown kvmfleet setting");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Whitespace between elements is layout, not content: dropping it keeps the stored text the same
 * whether the element came from a compact or an indented document. */
static void strip_blank_text(xmlNodePtr node) {
        xmlNodePtr c = node->children;
        bool has_element = false;
        for (xmlNodePtr k = c; k; k = k->next)
                if (is_element(k))
                        has_element = true;
        while (c) {
                xmlNodePtr next = c->next;
                if (has_element && c->type == XML_TEXT_NODE && xmlIsBlankNode(c)) {
                        xmlUnlinkNode(c);
                        xmlFreeNode(c);
                } else if (is_element(c))
                        strip_blank_text(c);
                c = next;
        }
}

/* Namespace names are URIs: no spaces, controls or quotes. libxml2 writes them out unescaped, so one
 * with a carriage return would not read back the same. */
static bool namespace_uri_is_plain(const xmlChar *href) {
        if (!href || !*href)
                return false;
        for (const xmlChar *p = href; *p; p++)
                if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '<' || *p == '&')
                        return false;
        return true;
}

static bool namespaces_are_plain(const xmlNode *node) {
        if (node->ns && !namespace_uri_is_plain(node->ns->href))
                return false;
        for (const xmlNs *ns = node->nsDef; ns; ns = ns->next)
                if (!namespace_uri_is_plain(ns->href))
                        return false;
        for (const xmlAttr *a = node->properties; a; a = a->next)
                if (a->ns && !namespace_uri_is_plain(a->ns->href))
                        return false;
        for (const xmlNode *c = node->children; c; c = c->next)
                if (is_element(c) && !namespaces_are_plain(c))
                        return false;
        return true;
}

/* Another namespace's element, kept as it is: copied into a document of its own so that it carries
 * the namespace declarations it uses. */
static int metadata_keep(Import *im, xmlNode *node) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
        _cleanup_(xmlBufferFreep) xmlBufferPtr buf = xmlBufferCreate();
        xmlNodePtr copy;
        json_object *s;

        if (!doc || !buf)
                return -ENOMEM;
        if (!node->ns)
                return refuse(im, node, NULL, "libvirt metadata elements need a namespace");
        if (!namespaces_are_plain(node))
                return refuse(im, node, NULL, "a namespace name with spaces, control characters or quotes");
        if (json_object_array_length(im->libvirt_metadata) >= VM_SPEC_LIBVIRT_METADATA_MAX)
                return refuse(im, node, NULL, "more than %d metadata elements", VM_SPEC_LIBVIRT_METADATA_MAX);
        copy = xmlDocCopyNode(node, doc, 1);
        if (!copy)
                return -ENOMEM;
        xmlDocSetRootElement(doc, copy);
        xmlReconciliateNs(doc, copy);
        strip_blank_text(copy);
        if (xmlNodeDump(buf, doc, copy, 0, 0) < 0)
                return -ENOMEM;
        if (xmlBufferLength(buf) > VM_SPEC_LIBVIRT_METADATA_SIZE_MAX)
                return refuse(im, node, NULL, "metadata element larger than %d bytes", VM_SPEC_LIBVIRT_METADATA_SIZE_MAX);
        s = json_object_new_string_len((const char *) xmlBufferContent(buf), xmlBufferLength(buf));
        if (!s || json_object_array_add(im->libvirt_metadata, s) < 0) {
                json_object_put(s);
                return -ENOMEM;
        }
        return 0;
}

static int import_metadata(Import *im, xmlNode *md) {
        int r = check_attrs(im, md, NULL, "attribute kvmfleet does not map");
        if (r < 0)
                return r;
        for (xmlNode *c = md->children; c; c = c->next) {
                if (!is_element(c))
                        continue;
                if (c->ns && streq((const char *) c->ns->href, DOMAIN_XML_NAMESPACE) && streq((const char *) c->name, "vm"))
                        r = import_kvmfleet_metadata(im, c);
                else
                        r = metadata_keep(im, c);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int import_domain(Import *im, xmlNode *root) {
        static const struct {
                const char *name;
                bool refuse;
                const char *reason;
        } table[] = {
                { "clock", false, "kvmfleet sets the guest clock itself (fixed CMOS clock, kvmclock)" },
                { "pm", false, "kvmfleet has no guest power management (S3/S4)" },
                { "on_lockfailure", false, "kvmfleet uses no lock manager" },
                { "maxMemory", false, "kvmfleet has no memory hotplug" },
                { "vcpus", false, "kvmfleet has no vCPU hotplug; every vCPU starts" },
                { "iothreads", false, "kvmfleet-vmm has no I/O threads" },
                { "iothreadids", false, "kvmfleet-vmm has no I/O threads" },
                { "defaultiothread", false, "kvmfleet-vmm has no I/O threads" },
                { "cputune", false, "kvmfleet has no per-vCPU tuning beyond <vcpu cpuset>" },
                { "numatune", false, "kvmfleet guests have one NUMA node" },
                { "memtune", false, "kvmfleet sets no memory cgroup limits" },
                { "blkiotune", false, "kvmfleet sets no block I/O cgroup limits" },
                { "resource", false, "kvmfleet places VMMs itself" },
                { "perf", false, "kvmfleet reads KVM's binary stats instead of perf events" },
                { "seclabel", false, "kvmfleet confines its VMMs itself" },
                { "keywrap", false, "kvmfleet has no s390 key wrapping" },
                { "throttlegroups", false, "kvmfleet sets no block I/O limits" },
                { "sysinfo", true, "SMBIOS data is guest identity kvmfleet cannot provide" },
                { "genid", true, "a VM generation ID is guest identity kvmfleet cannot provide" },
                { "launchSecurity", true, "confidential VMs (SEV, TDX) are not supported" },
                { "bootloader", true, "kvmfleet boots a kernel directly, not through a host bootloader" },
                { "bootloader_args", true, "kvmfleet boots a kernel directly, not through a host bootloader" },
                { "idmap", true, "user namespace ID maps are for containers" },
        };
        const char *type = attr_get(root, "type");
        int r;

        if (!type || !streq(type, "kvm")) {
                r = refuse(im, root, "type", "kvmfleet runs KVM guests: <domain type='kvm'>");
                if (r < 0)
                        return r;
        }
        for (const xmlAttr *a = root->properties; a; a = a->next) {
                if (!a->ns && streq((const char *) a->name, "type"))
                        continue;
                r = ignore(im, root, (const char *) a->name,
                           streq((const char *) a->name, "id") ? "the id of a running libvirt domain" :
                                                                 "attribute kvmfleet does not map");
                if (r < 0)
                        return r;
        }

        for (xmlNode *c = root->children; c; c = c->next) {
                const char *name = (const char *) c->name;
                json_object *sub;
                if (!is_element(c))
                        continue;
                if (c->ns) {
                        if (streq((const char *) c->ns->href, QEMU_NAMESPACE))
                                r = refuse(im, c, NULL, "QEMU passthrough settings cannot apply to kvmfleet-vmm");
                        else
                                r = refuse(im, c, NULL, "element of an unknown namespace outside <metadata>");
                } else if (streq(name, "name"))
                        r = import_text_field(im, c, im->spec, "name", false);
                else if (streq(name, "uuid"))
                        r = import_uuid(im, c);
                else if (streq(name, "title") || streq(name, "description")) {
                        r = spec_sub(im->spec, "libvirt", &sub);
                        if (r >= 0)
                                r = import_text_field(im, c, sub, name, false);
                } else if (streq(name, "metadata"))
                        r = import_metadata(im, c);
                else if (streq(name, "memory")) {
                        im->memory_seen = true;
                        r = import_size_element(im, c, &im->memory_bytes);
                        if (r > 0)
                                im->memory = c;
                        if (r >= 0 && attr_get(c, "dumpCore"))
                                r = ignore(im, c, "dumpCore", "kvmfleet-vmm does not dump core");
                } else if (streq(name, "currentMemory")) {
                        r = import_size_element(im, c, &im->current_memory_bytes);
                        if (r > 0)
                                im->current_memory = c;
                        if (r >= 0 && attr_get(c, "dumpCore"))
                                r = refuse(im, c, "dumpCore", "belongs on <memory>");
                } else if (streq(name, "memoryBacking"))
                        r = import_memory_backing(im, c);
                else if (streq(name, "vcpu"))
                        r = import_vcpu(im, c);
                else if (streq(name, "os"))
                        r = import_os(im, c);
                else if (streq(name, "features"))
                        r = import_features(im, c);
                else if (streq(name, "cpu"))
                        r = import_cpu(im, c);
                else if (streq(name, "on_poweroff") || streq(name, "on_reboot") || streq(name, "on_crash"))
                        r = import_lifecycle(im, c, name);
                else if (streq(name, "devices"))
                        r = import_devices(im, c);
                else {
                        bool known = false;
                        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                                if (streq(name, table[i].name)) {
                                        known = true;
                                        r = table[i].refuse ? refuse(im, c, NULL, "%s", table[i].reason) :
                                                              ignore(im, c, NULL, table[i].reason);
                                        break;
                                }
                        if (!known)
                                r = refuse(im, c, NULL, "unknown to kvmfleet");
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* What only makes sense once the whole document has been read. */
static int import_finish(Import *im, xmlNode *root) {
        json_object *sub;
        int r = 0;

        if (!im->memory_seen)
                r = refuse(im, root, NULL, "<memory> is required");
        else if (im->memory)
                r = json_add_uint(im->spec, "memory", im->memory_bytes);
        if (r < 0)
                return r;
        if (im->memory && im->current_memory && im->current_memory_bytes != im->memory_bytes) {
                r = ignore(im, im->current_memory, NULL, "kvmfleet has no balloon; the guest gets all of <memory>");
                if (r < 0)
                        return r;
        }
        r = memory_backing_resolve(im);
        if (r < 0)
                return r;

        if (im->kernel && im->raw_boot)
                r = refuse(im, im->raw_boot, NULL, "a raw boot image and <os><kernel> exclude each other");
        else if (!im->kernel && !im->raw_boot)
                r = refuse(im, im->os ? im->os : root, NULL,
                           "no <kernel>: kvmfleet boots a kernel directly (no firmware, no boot from disk)");
        if (r < 0)
                return r;

        if (im->irqchip_metadata && im->irqchip_feature && !streq(im->irqchip_metadata, im->irqchip_feature))
                r = refuse(im, im->irqchip_metadata_node, "mode", "conflicts with <features><ioapic driver>");
        else if (im->irqchip_metadata || im->irqchip_feature)
                r = spec_set_string(im->spec, "irqchip", im->irqchip_metadata ?: im->irqchip_feature);
        if (r < 0)
                return r;

        if (im->console_log) {
                r = spec_sub(im->spec, "console", &sub);
                if (r >= 0)
                        r = spec_set_string(sub, "log", im->console_log);
                if (r < 0)
                        return r;
        }
        if (json_object_array_length(im->libvirt_metadata) > 0) {
                r = spec_sub(im->spec, "libvirt", &sub);
                if (r < 0 || json_add(sub, "metadata", json_object_get(im->libvirt_metadata)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Where in the document a spec field came from, for errors found when the spec is validated. */
static const char *spec_path_to_xpath(const char *path) {
        static const char *const map[][2] = {
                { "$.name", "/domain/name" },           { "$.uuid", "/domain/uuid" },
                { "$.vcpus", "/domain/vcpu" },          { "$.memory", "/domain/memory" },
                { "$.boot.kernel", "/domain/os/kernel" }, { "$.boot.initrd", "/domain/os/initrd" },
                { "$.boot.cmdline", "/domain/os/cmdline" }, { "$.cpuset", "/domain/vcpu/@cpuset" },
                { "$.console.log", "/domain/devices/serial" }, { "$.libvirt.title", "/domain/title" },
                { "$.libvirt.description", "/domain/description" }, { "$.boot", "/domain/os" },
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (streq(path, map[i][0]))
                        return map[i][1];
        if (startswith(path, "$.disks"))
                return "/domain/devices/disk";
        if (startswith(path, "$.nics"))
                return "/domain/devices/interface";
        if (startswith(path, "$.boot.") || startswith(path, "$.pit"))
                return "/domain/metadata/kvmfleet:vm";
        return NULL;
}

static int list_finish(json_object *list, size_t count, const char *what) {
        char reason[96];
        json_object *item;
        if (count <= DOMAIN_XML_ITEMS_MAX)
                return 0;
        snprintf(reason, sizeof reason, "%zu more %s not listed", count - DOMAIN_XML_ITEMS_MAX, what);
        if (!(item = json_object_new_object()) || json_object_array_add(list, item) < 0) {
                json_object_put(item);
                return -ENOMEM;
        }
        if (json_add_string(item, "xpath", "/domain") < 0 || json_add_string(item, "reason", reason) < 0)
                return -ENOMEM;
        return 0;
}

static int depth_check(const xmlNode *node, int depth) {
        for (const xmlNode *c = node->children; c; c = c->next) {
                if (!is_element(c))
                        continue;
                if (depth >= DOMAIN_XML_DEPTH_MAX || depth_check(c, depth + 1) < 0)
                        return -E2BIG;
        }
        return 0;
}

typedef struct FirstError {
        bool set;
        xmlError error;
} FirstError;

static void first_error_keep(void *user_data, xmlErrorPtr error) {
        xmlParserCtxtPtr ctxt = user_data;
        FirstError *first = ctxt ? ctxt->_private : NULL;
        if (!first || first->set || !error || error->level < XML_ERR_ERROR)
                return;
        if (xmlCopyError(error, &first->error) == 0)
                first->set = true;
}

static int parse_document(const char *xml, size_t len, xmlDocPtr *ret, DomainXmlError *e) {
        _cleanup_(xmlFreeParserCtxtp) xmlParserCtxtPtr ctxt = NULL;
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        /* Never XML_PARSE_NOENT, XML_PARSE_DTDLOAD, XML_PARSE_DTDATTR, XML_PARSE_XINCLUDE or XML_PARSE_HUGE. */
        const int options = XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA | XML_PARSE_NOXINCNODE;
        FirstError first = {};
        xmlNodePtr root;

        if (len > DOMAIN_XML_SIZE_MAX) {
                json_object *d = json_object_new_object();
                if (!d || json_add_uint(d, "limit", DOMAIN_XML_SIZE_MAX) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                return error_set(e, DOMAIN_XML_ERROR_TOO_LARGE, d, "domain XML is larger than %u bytes",
                                 DOMAIN_XML_SIZE_MAX);
        }
        pthread_once(&xml_once, xml_setup);

        ctxt = xmlNewParserCtxt();
        if (!ctxt)
                return -ENOMEM;
        /* The first error says where the document went wrong; later ones are often consequences. */
        ctxt->_private = &first;
        ctxt->sax->serror = first_error_keep;
        xmlSetGenericErrorFunc(NULL, xml_error_discard); /* this thread's libxml2 state only */
        /* Domain XML is UTF-8 (as libvirt writes it); a forced encoding also keeps libxml2's
         * encoding detection and iconv conversions out of the way. */
        doc = xmlCtxtReadMemory(ctxt, xml, (int) len, "domain.xml", "UTF-8", options);
        if (!doc || !ctxt->wellFormed) {
                const xmlError *err = first.set ? &first.error : xmlCtxtGetLastError(ctxt);
                json_object *d = json_object_new_object();
                char msg[256];
                int line = err ? err->line : 0, column = err ? err->int2 : 0;
                snprintf(msg, sizeof msg, "%s", err && err->message ? err->message : "not well-formed");
                msg[strcspn(msg, "\n")] = '\0';
                xmlResetError(&first.error);
                if (!d || json_add_int(d, "line", line) < 0 || json_add_int(d, "column", column) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                error_set(e, DOMAIN_XML_ERROR_SYNTAX, d, "XML error at line %d, column %d: %s", line, column, msg);
                e->line = line;
                e->column = column;
                return -EINVAL;
        }
        xmlResetError(&first.error);
        if (doc->intSubset || doc->extSubset) {
                /* Entities can only be declared in a DTD; refusing it keeps entity expansion out entirely. */
                json_object *d = json_object_new_object();
                const char *doctype = memmem(xml, len, "<!DOCTYPE", 9);
                int line = 1, column = 1;
                for (const char *p = xml; doctype && p < doctype; p++)
                        if (*p == '\n') {
                                line++;
                                column = 1;
                        } else
                                column++;
                if (!d || json_add_int(d, "line", line) < 0 || json_add_int(d, "column", column) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                error_set(e, DOMAIN_XML_ERROR_SYNTAX, d,
                          "XML error at line %d, column %d: DOCTYPE declarations (and so entities) are not accepted",
                          line, column);
                e->line = line;
                e->column = column;
                return -EINVAL;
        }
        root = xmlDocGetRootElement(doc);
        if (!root || root->ns || !streq((const char *) root->name, "domain")) {
                json_object *d = json_object_new_object();
                int line = root ? (int) xmlGetLineNo(root) : 0;
                if (!d || json_add_int(d, "line", line) < 0 || json_add_int(d, "column", 1) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                error_set(e, DOMAIN_XML_ERROR_SYNTAX, d, "the document element must be <domain>");
                e->line = line;
                e->column = 1;
                return -EINVAL;
        }
        if (depth_check(root, 1) < 0) {
                json_object *d = json_object_new_object();
                if (!d || json_add_uint(d, "depth_limit", DOMAIN_XML_DEPTH_MAX) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                return error_set(e, DOMAIN_XML_ERROR_SYNTAX, d, "elements are nested deeper than %d levels",
                                 DOMAIN_XML_DEPTH_MAX);
        }
        *ret = TAKE_PTR(doc);
        return 0;
}

int domain_xml_to_spec(const char *xml, size_t len, const DomainXmlOptions *opts, json_object **ret_spec,
                       json_object **ret_warnings, DomainXmlError *ret_error) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        _cleanup_json_ json_object *spec = json_object_new_object(), *warnings = json_object_new_array(),
                                   *refused = json_object_new_array(), *metadata = json_object_new_array(),
                                   *canonical = NULL;
        _cleanup_vm_spec_ VmSpec *parsed = NULL;
        _cleanup_free_ char *console_log = NULL;
        DomainXmlError e = {};
        JsonError je;
        xmlNodePtr root;
        int r;

        if (!spec || !warnings || !refused || !metadata)
                return -ENOMEM;
        r = parse_document(xml, len, &doc, &e);
        if (r == -EINVAL)
                *ret_error = e;
        if (r < 0)
                return r;
        root = xmlDocGetRootElement(doc);

        Import im = {
                .strict = opts && opts->strict,
                .spec = spec,
                .warnings = warnings,
                .refused = refused,
                .libvirt_metadata = metadata,
        };
        r = import_domain(&im, root);
        if (r >= 0)
                r = import_finish(&im, root);
        console_log = im.console_log;
        if (r < 0)
                return r;

        if (im.n_refused > 0) {
                json_object *d = json_object_new_object();
                if (!d || list_finish(refused, im.n_refused, "refusals") < 0 ||
                    json_add(d, "refused", json_object_get(refused)) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                *ret_error = (DomainXmlError) {};
                return error_set(ret_error, DOMAIN_XML_ERROR_UNSUPPORTED, d,
                                 "the domain has %zu element(s) or attribute(s) kvmfleet does not support; see details.refused",
                                 im.n_refused);
        }

        r = vm_spec_from_json(spec, &parsed, &je);
        if (r == -EINVAL) {
                json_object *d = json_object_new_object();
                const char *xpath = spec_path_to_xpath(je.path);
                if (!d || json_add_string(d, "path", je.path) < 0 ||
                    (xpath && json_add_string(d, "xpath", xpath) < 0)) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                *ret_error = (DomainXmlError) {};
                return error_set(ret_error, DOMAIN_XML_ERROR_INVALID, d, "%s%s%s: %s", xpath ?: "", xpath ? " " : "",
                                 je.path, je.message);
        }
        if (r < 0)
                return r;
        r = vm_spec_to_json(parsed, &canonical);
        if (r < 0)
                return r;
        r = list_finish(warnings, im.n_warnings, "warnings");
        if (r < 0)
                return r;
        *ret_spec = TAKE_PTR(canonical);
        *ret_warnings = TAKE_PTR(warnings);
        return 0;
}

/* ---- export ---- */

const char *domain_xml_disk_name(size_t index, char *buf, size_t size) {
        /* vda…vdz, vdaa…vdzz as Linux names them: bijective base 26. */
        char letters[8];
        size_t n = 0, i = index + 1;
        while (i > 0 && n < sizeof letters) {
                i--;
                letters[n++] = (char) ('a' + i % 26);
                i /= 26;
        }
        size_t w = (size_t) snprintf(buf, size, "vd");
        while (n > 0 && w + 1 < size)
                buf[w++] = letters[--n];
        if (w < size)
                buf[w] = '\0';
        return buf;
}

static const char *host_nested_feature(void) {
        unsigned a, b, c, d;
        if (__get_cpuid(0, &a, &b, &c, &d) &&
            ((b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163) || /* AuthenticAMD */
             (b == 0x6f677948 && d == 0x6e65476e && c == 0x656e6975)))  /* HygonGenuine */
                return "svm";
        return "vmx";
}

static xmlNodePtr add_text(xmlNodePtr parent, const char *name, const char *text) {
        return xmlNewTextChild(parent, NULL, BAD_CAST name, BAD_CAST text);
}

static xmlNodePtr add_textf(xmlNodePtr parent, const char *name, const char *fmt, ...) _printf_(3, 4);
static xmlNodePtr add_textf(xmlNodePtr parent, const char *name, const char *fmt, ...) {
        char buf[64];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        return add_text(parent, name, buf);
}

static bool set_attr(xmlNodePtr node, const char *name, const char *value) {
        return node && xmlSetProp(node, BAD_CAST name, BAD_CAST value);
}

static bool set_attrf(xmlNodePtr node, const char *name, const char *fmt, ...) _printf_(3, 4);
static bool set_attrf(xmlNodePtr node, const char *name, const char *fmt, ...) {
        char buf[64];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        return set_attr(node, name, buf);
}

/* A kept metadata element, parsed with the same limits as a domain and adopted into doc. */
static int metadata_restore(xmlDocPtr doc, xmlNodePtr parent, const char *text) {
        _cleanup_(xmlFreeDocp) xmlDocPtr frag = NULL;
        _cleanup_(xmlFreeParserCtxtp) xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
        xmlNodePtr root, copy;

        if (!ctxt)
                return -ENOMEM;
        pthread_once(&xml_once, xml_setup);
        xmlSetGenericErrorFunc(NULL, xml_error_discard);
        frag = xmlCtxtReadMemory(ctxt, text, (int) strlen(text), "metadata.xml", "UTF-8",
                                 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
        if (!frag || !ctxt->wellFormed || frag->intSubset || !(root = xmlDocGetRootElement(frag)) || !root->ns ||
            depth_check(root, 1) < 0)
                return -EINVAL;
        copy = xmlDocCopyNode(root, doc, 1);
        if (!copy || !xmlAddChild(parent, copy)) {
                xmlFreeNode(copy);
                return -ENOMEM;
        }
        xmlReconciliateNs(doc, copy);
        return 0;
}

int domain_xml_from_spec(const VmSpec *spec, const char *uuid, const DomainXmlExportOptions *opts, char **ret_xml,
                         size_t *ret_len) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
        xmlNodePtr root, md, vm, n, os, devices, mb;
        xmlNsPtr ns;
        xmlChar *out = NULL;
        const char *nested_feature = opts && opts->nested_feature ? opts->nested_feature : host_nested_feature();
        bool ok = true;
        int size = 0, r;

        if (!doc || !(root = xmlNewNode(NULL, BAD_CAST "domain")))
                return -ENOMEM;
        xmlDocSetRootElement(doc, root);
        ok &= set_attr(root, "type", "kvm");
        ok &= !!add_text(root, "name", spec->name);
        if (uuid || spec->uuid)
                ok &= !!add_text(root, "uuid", uuid ?: spec->uuid);
        if (spec->libvirt_title)
                ok &= !!add_text(root, "title", spec->libvirt_title);
        if (spec->libvirt_description)
                ok &= !!add_text(root, "description", spec->libvirt_description);

        md = xmlNewChild(root, NULL, BAD_CAST "metadata", NULL);
        vm = md ? xmlNewChild(md, NULL, BAD_CAST "vm", NULL) : NULL;
        ns = vm ? xmlNewNs(vm, BAD_CAST DOMAIN_XML_NAMESPACE, BAD_CAST "kvmfleet") : NULL;
        if (!ns)
                return -ENOMEM;
        xmlSetNs(vm, ns);
        n = xmlNewChild(vm, ns, BAD_CAST "irqchip", NULL);
        ok &= set_attr(n, "mode", vm_irqchip_to_string(spec->irqchip));
        n = xmlNewChild(vm, ns, BAD_CAST "pit", NULL);
        ok &= set_attr(n, "reinject", spec->pit_reinject ? "yes" : "no");
        /* The KVM paravirtual settings <features> does not carry (all of them without an irqchip). */
        uint32_t pv_meta = spec->kvm_pv_on | spec->kvm_pv_off;
        if (spec->irqchip != VM_IRQCHIP_NONE)
                pv_meta &= ~((1u << vm_kvm_pv_feature_from_name("pv_eoi")) | (1u << vm_kvm_pv_feature_from_name("pv_unhalt")));
        if (pv_meta) {
                n = xmlNewChild(vm, ns, BAD_CAST "kvm-pv", NULL);
                for (unsigned bit = 0; bit < 32; bit++)
                        if (pv_meta & (1u << bit))
                                ok &= set_attr(n, vm_kvm_pv_feature_name(bit), spec->kvm_pv_on & (1u << bit) ? "on" : "off");
        }
        if (spec->boot_kind == VM_BOOT_RAW) {
                n = xmlNewChild(vm, ns, BAD_CAST "boot", NULL);
                ok &= set_attr(n, "raw", spec->raw);
                ok &= set_attrf(n, "load-addr", "0x%" PRIx64, spec->load_addr);
                ok &= set_attrf(n, "entry", "0x%" PRIx64, spec->entry);
                ok &= set_attr(n, "mode", vm_boot_mode_to_string(spec->mode));
        }
        for (size_t i = 0; i < spec->n_libvirt_metadata; i++) {
                r = metadata_restore(doc, md, spec->libvirt_metadata[i]);
                if (r < 0)
                        return r;
        }

        n = add_textf(root, "memory", "%" PRIu64, spec->memory / 1024);
        ok &= set_attr(n, "unit", "KiB");
        n = add_textf(root, "currentMemory", "%" PRIu64, spec->memory / 1024);
        ok &= set_attr(n, "unit", "KiB");
        mb = xmlNewChild(root, NULL, BAD_CAST "memoryBacking", NULL);
        if (spec->memory_backing == VM_MEMORY_HUGETLB) {
                n = xmlNewChild(mb, NULL, BAD_CAST "hugepages", NULL);
                n = n ? xmlNewChild(n, NULL, BAD_CAST "page", NULL) : NULL;
                ok &= set_attrf(n, "size", "%" PRIu64, (uint64_t) ((spec->hugepage_size ?: VM_SPEC_HUGEPAGE_SIZE) / 1024));
                ok &= set_attr(n, "unit", "KiB");
        }
        n = xmlNewChild(mb, NULL, BAD_CAST "source", NULL);
        ok &= set_attr(n, "type", spec->memory_backing == VM_MEMORY_ANONYMOUS ? "anonymous" : "memfd");
        n = xmlNewChild(mb, NULL, BAD_CAST "access", NULL);
        ok &= set_attr(n, "mode", spec->memory_backing == VM_MEMORY_ANONYMOUS ? "private" : "shared");

        n = add_textf(root, "vcpu", "%u", spec->vcpus);
        ok &= set_attr(n, "placement", "static");
        if (spec->cpuset)
                ok &= set_attr(n, "cpuset", spec->cpuset);

        os = xmlNewChild(root, NULL, BAD_CAST "os", NULL);
        n = os ? add_text(os, "type", "hvm") : NULL;
        ok &= set_attr(n, "arch", "x86_64");
        if (spec->boot_kind == VM_BOOT_KERNEL) {
                ok &= !!add_text(os, "kernel", spec->kernel);
                if (spec->initrd)
                        ok &= !!add_text(os, "initrd", spec->initrd);
                if (spec->cmdline)
                        ok &= !!add_text(os, "cmdline", spec->cmdline);
        }

        if (spec->irqchip != VM_IRQCHIP_NONE) {
                const uint32_t eoi = 1u << vm_kvm_pv_feature_from_name("pv_eoi"),
                               unhalt = 1u << vm_kvm_pv_feature_from_name("pv_unhalt");
                xmlNodePtr features = xmlNewChild(root, NULL, BAD_CAST "features", NULL), apic;
                ok &= !!(apic = features ? xmlNewChild(features, NULL, BAD_CAST "apic", NULL) : NULL);
                if ((spec->kvm_pv_on | spec->kvm_pv_off) & eoi)
                        ok &= set_attr(apic, "eoi", spec->kvm_pv_on & eoi ? "on" : "off");
                if ((spec->kvm_pv_on | spec->kvm_pv_off) & unhalt) {
                        n = features ? xmlNewChild(features, NULL, BAD_CAST "pvspinlock", NULL) : NULL;
                        ok &= set_attr(n, "state", spec->kvm_pv_on & unhalt ? "on" : "off");
                }
                n = features ? xmlNewChild(features, NULL, BAD_CAST "ioapic", NULL) : NULL;
                ok &= set_attr(n, "driver", spec->irqchip == VM_IRQCHIP_SPLIT ? "qemu" : "kvm");
        }
        n = xmlNewChild(root, NULL, BAD_CAST "cpu", NULL);
        ok &= set_attr(n, "mode", "host-passthrough");
        if (spec->nested) {
                n = xmlNewChild(n, NULL, BAD_CAST "feature", NULL);
                ok &= set_attr(n, "policy", "require");
                ok &= set_attr(n, "name", nested_feature);
        }
        ok &= !!add_text(root, "on_poweroff", vm_lifecycle_action_to_string(spec->on_poweroff));
        ok &= !!add_text(root, "on_reboot", vm_lifecycle_action_to_string(spec->on_reboot));
        ok &= !!add_text(root, "on_crash", vm_on_crash_to_string(spec->on_crash));

        devices = xmlNewChild(root, NULL, BAD_CAST "devices", NULL);
        for (size_t i = 0; i < spec->n_disks; i++) {
                const VmDisk *d = &spec->disks[i];
                bool block = startswith(d->path, "/dev/");
                char dev[16];
                xmlNodePtr disk = devices ? xmlNewChild(devices, NULL, BAD_CAST "disk", NULL) : NULL;
                ok &= set_attr(disk, "type", block ? "block" : "file");
                ok &= set_attr(disk, "device", "disk");
                n = disk ? xmlNewChild(disk, NULL, BAD_CAST "driver", NULL) : NULL;
                ok &= set_attr(n, "name", "qemu");
                ok &= set_attr(n, "type", "raw");
                n = disk ? xmlNewChild(disk, NULL, BAD_CAST "source", NULL) : NULL;
                ok &= set_attr(n, block ? "dev" : "file", d->path);
                n = disk ? xmlNewChild(disk, NULL, BAD_CAST "target", NULL) : NULL;
                ok &= set_attr(n, "dev", domain_xml_disk_name(i, dev, sizeof dev));
                ok &= set_attr(n, "bus", "virtio");
                if (d->readonly)
                        ok &= disk && xmlNewChild(disk, NULL, BAD_CAST "readonly", NULL);
                if (d->serial)
                        ok &= disk && add_text(disk, "serial", d->serial);
        }
        for (size_t i = 0; i < spec->n_nics; i++) {
                xmlNodePtr iface = devices ? xmlNewChild(devices, NULL, BAD_CAST "interface", NULL) : NULL;
                ok &= set_attr(iface, "type", "ethernet");
                /* The MAC the agent recorded at define; a spec without one keeps none, so that the
                 * document imports back to the same spec. */
                if (spec->nics[i].mac) {
                        n = iface ? xmlNewChild(iface, NULL, BAD_CAST "mac", NULL) : NULL;
                        ok &= set_attr(n, "address", spec->nics[i].mac);
                }
                n = iface ? xmlNewChild(iface, NULL, BAD_CAST "target", NULL) : NULL;
                ok &= set_attr(n, "dev", spec->nics[i].tap);
                ok &= set_attr(n, "managed", "no");
                n = iface ? xmlNewChild(iface, NULL, BAD_CAST "model", NULL) : NULL;
                ok &= set_attr(n, "type", "virtio");
        }
        for (int i = 0; i < 2; i++) {
                const char *type = spec->console_log ? "file" : "pty";
                xmlNodePtr dev = devices ? xmlNewChild(devices, NULL, BAD_CAST (i == 0 ? "serial" : "console"), NULL)
                                         : NULL;
                ok &= set_attr(dev, "type", type);
                if (spec->console_log) {
                        n = dev ? xmlNewChild(dev, NULL, BAD_CAST "source", NULL) : NULL;
                        ok &= set_attr(n, "path", spec->console_log);
                }
                n = dev ? xmlNewChild(dev, NULL, BAD_CAST "target", NULL) : NULL;
                if (i == 1)
                        ok &= set_attr(n, "type", "serial");
                ok &= set_attr(n, "port", "0");
        }
        if (!ok)
                return -ENOMEM;

        xmlDocDumpFormatMemoryEnc(doc, &out, &size, "UTF-8", 1);
        if (!out || size <= 0)
                return -ENOMEM;
        /* Without the XML declaration the text is what virsh dumpxml prints. */
        const char *body = (const char *) out;
        const char *decl_end = startswith(body, "<?xml") ? strstr(body, "?>\n") : NULL;
        if (decl_end)
                body = decl_end + 3;
        char *copy = strdup(body);
        size_t copy_len = (size_t) size - (size_t) (body - (const char *) out);
        xmlFree(out);
        if (!copy)
                return -ENOMEM;
        *ret_xml = copy;
        if (ret_len)
                *ret_len = copy_len;
        return 0;
}
