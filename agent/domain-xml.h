/* SPDX-License-Identifier: MIT */
/* libvirt domain XML <-> the VM spec of API contract v1 (docs/domain-xml.md has the mapping table).
 *
 * Import maps a <domain type='kvm'> to spec JSON. What kvmfleet does not map is either ignored with a
 * warning (it holds no guest data or identity and the guest boots without it) or refused (it holds data
 * or identity: disks, interfaces, host devices, ...); one refusal lists every refused XPath. Strict mode
 * refuses everything not mapped. Export writes a VmSpec as a domain XML that libvirt's schema accepts
 * and that imports back to the same spec.
 *
 * Parsing is bounded: the size is checked before libxml2 sees the text, no DTD is loaded, no entity is
 * substituted, no external resource (file or network) is ever read, XInclude is off, libxml2's depth and
 * entity-amplification limits stay on (no XML_PARSE_HUGE), and a document with a DOCTYPE is refused. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/spec.h"

#define DOMAIN_XML_SIZE_MAX (1U << 20)   /* bytes of XML text accepted */
#define DOMAIN_XML_DEPTH_MAX 32          /* element nesting below <domain> walked */
#define DOMAIN_XML_ITEMS_MAX 256         /* warnings or refusals listed one by one */
#define DOMAIN_XML_NAMESPACE "https://kvmfleet.dev/xmlns/domain/1"

typedef struct DomainXmlOptions {
        bool strict; /* refuse every element and attribute that is not mapped, instead of a warning */
} DomainXmlOptions;

typedef enum DomainXmlErrorKind {
        DOMAIN_XML_ERROR_TOO_LARGE,   /* 413 payload_too_large: over DOMAIN_XML_SIZE_MAX */
        DOMAIN_XML_ERROR_SYNTAX,      /* 400 invalid_argument: not well-formed XML, DOCTYPE; line/column set */
        DOMAIN_XML_ERROR_UNSUPPORTED, /* 422 unsupported: details.refused lists every refused XPath */
        DOMAIN_XML_ERROR_INVALID,     /* 422 invalid_argument: the mapped spec is invalid; details.path */
} DomainXmlErrorKind;

/* Why an import failed. details is owned (domain_xml_error_done() releases it):
 *   SYNTAX:      {"line": N, "column": N}
 *   UNSUPPORTED: {"refused": [{"xpath": "/domain/devices/disk[1]", "reason": "..."}, ...]}
 *   INVALID:     {"path": "$.memory"} (the JSON path in the spec), "xpath" too where known
 *   TOO_LARGE:   {"limit": DOMAIN_XML_SIZE_MAX} */
typedef struct DomainXmlError {
        DomainXmlErrorKind kind;
        int line, column; /* SYNTAX only; 0 when libxml2 gave none */
        char message[512];
        json_object *details;
} DomainXmlError;

void domain_xml_error_done(DomainXmlError *e);
unsigned domain_xml_error_http_status(const DomainXmlError *e);
const char *domain_xml_error_code(const DomainXmlError *e); /* API error code of DESIGN.md */

/* XML text (len bytes, need not be NUL-terminated) → canonical spec JSON (vm_spec_to_json() form, so
 * vm_spec_from_json() accepts it) and warnings [{"xpath","reason"}] (an empty array when none).
 * Returns 0, -EINVAL with *ret_error filled (caller calls domain_xml_error_done()), or -ENOMEM. */
int domain_xml_to_spec(const char *xml, size_t len, const DomainXmlOptions *opts, json_object **ret_spec,
                       json_object **ret_warnings, DomainXmlError *ret_error);

typedef struct DomainXmlExportOptions {
        /* CPUID feature that stands for nested virtualization, "vmx" or "svm"; NULL: the host's. */
        const char *nested_feature;
} DomainXmlExportOptions;

/* The libvirt target name of disk index: vda, vdb, … vdz, vdaa. Returns buf. */
const char *domain_xml_disk_name(size_t index, char *buf, size_t size);

/* spec → domain XML text (NUL-terminated, caller frees). uuid overrides spec->uuid when not NULL
 * (the agent's VM uuid). -ENOMEM, or -EINVAL when the spec holds metadata that is not XML. */
int domain_xml_from_spec(const VmSpec *spec, const char *uuid, const DomainXmlExportOptions *opts, char **ret_xml,
                         size_t *ret_len);

/* A libvirt size: decimal value and unit ("" or NULL: default_unit_bytes). Units as libvirt reads them,
 * case-insensitively: b, byte, bytes; k, KiB, m, MiB, ... e, EiB (powers of 1024); KB, MB, ... EB
 * (powers of 1000). -EINVAL for a bad number or unit, -ERANGE on overflow. */
int domain_xml_parse_size(const char *value, const char *unit, uint64_t default_unit_bytes, uint64_t *ret);
