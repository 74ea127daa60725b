/* SPDX-License-Identifier: MIT */
/* Drives agent/domain-xml.c from the command line for the golden and libvirt tests:
 *   domain-xml-tool import [--strict] FILE   domain XML → {"spec","warnings"} or {"status","error"} (exit 1)
 *   domain-xml-tool export [--uuid UUID] [--nested-feature vmx|svm] FILE   spec JSON → domain XML
 * FILE "-" is stdin. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/domain-xml.h"
#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "str-util.h"

#define log_oom() log_error_errno(-ENOMEM, "Out of memory")

/* Reads at most limit+1 bytes so that an oversized input still reaches the size check. */
static int read_input(const char *path, size_t limit, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = streq(path, "-") ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        if (fd < 0)
                return -errno;
        buf = malloc(limit + 2);
        if (!buf)
                return -ENOMEM;
        while (len < limit + 1) {
                ssize_t n = read(fd, buf + len, limit + 1 - len);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int print_json(json_object *obj) {
        puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
        return 0;
}

static int cmd_import(const char *path, bool strict) {
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_object *spec = NULL, *warnings = NULL, *out = json_object_new_object();
        DomainXmlOptions opts = { .strict = strict };
        DomainXmlError e = {};
        size_t len;
        int r;

        if (!out)
                return log_oom();
        r = read_input(path, DOMAIN_XML_SIZE_MAX, &text, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        r = domain_xml_to_spec(text, len, &opts, &spec, &warnings, &e);
        if (r == -EINVAL) {
                json_object *err = json_object_new_object();
                if (!err || json_add_uint(out, "status", domain_xml_error_http_status(&e)) < 0 ||
                    json_add(out, "error", err) < 0 || json_add_string(err, "code", domain_xml_error_code(&e)) < 0 ||
                    json_add_string(err, "message", e.message) < 0 ||
                    json_add(err, "details", json_object_get(e.details)) < 0) {
                        domain_xml_error_done(&e);
                        return log_oom();
                }
                domain_xml_error_done(&e);
                print_json(out);
                return -EINVAL;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to map %s: %m", path);
        if (json_add(out, "spec", TAKE_PTR(spec)) < 0 || json_add(out, "warnings", TAKE_PTR(warnings)) < 0)
                return log_oom();
        return print_json(out);
}

static int cmd_export(const char *path, const char *uuid, const char *nested_feature) {
        _cleanup_free_ char *text = NULL, *xml = NULL;
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        DomainXmlExportOptions opts = { .nested_feature = nested_feature };
        JsonError je;
        size_t len;
        int r;

        r = read_input(path, 4U << 20, &text, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        r = vm_spec_from_string(text, len, &spec, &je);
        if (r < 0)
                return log_error_errno(r, "Invalid spec: %s: %s", je.path, je.message);
        r = domain_xml_from_spec(spec, uuid, &opts, &xml, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to write domain XML: %m");
        fwrite(xml, 1, len, stdout);
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "strict", no_argument, NULL, 's' },
                { "uuid", required_argument, NULL, 'u' },
                { "nested-feature", required_argument, NULL, 'n' },
                {},
        };
        const char *uuid = NULL, *nested_feature = NULL;
        bool strict = false;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        strict = true;
                        break;
                case 'u':
                        uuid = optarg;
                        break;
                case 'n':
                        nested_feature = optarg;
                        break;
                default:
                        return 2;
                }
        if (argc - optind != 2) {
                fprintf(stderr, "usage: %s import [--strict] FILE | export [--uuid UUID] [--nested-feature F] FILE\n",
                        argv[0]);
                return 2;
        }
        if (streq(argv[optind], "import"))
                return cmd_import(argv[optind + 1], strict) < 0 ? 1 : 0;
        if (streq(argv[optind], "export"))
                return cmd_export(argv[optind + 1], uuid, nested_feature) < 0 ? 1 : 0;
        fprintf(stderr, "unknown command %s\n", argv[optind]);
        return 2;
}
