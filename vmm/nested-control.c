/* SPDX-License-Identifier: MIT */
#include "nested-control.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "nested-state.h"
#include "nested.h"
#include "str-util.h"

bool nested_control_method(const char *method) {
        return streq(method, "nested_state_get") || streq(method, "nested_state_set");
}

/* An error reply body; details (may be NULL) is taken. Returns 0, or -ENOMEM. */
_printf_(4, 5) static int error_reply(json_object **ret, const char *code, json_object *details, const char *fmt, ...) {
        char message[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(message, sizeof message, fmt, ap);
        va_end(ap);
        json_object *o = json_object_new_object();
        if (!o || json_add_string(o, "code", code) < 0 || json_add_string(o, "message", message) < 0) {
                json_object_put(o);
                json_object_put(details);
                return -ENOMEM;
        }
        if (details && json_add(o, "details", details) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

static int unsupported(json_object **ret) {
        json_object *d = json_object_new_object();
        if (d) {
                json_add_string(d, "capability", "KVM_CAP_NESTED_STATE");
                json_add_int(d, "value", 0);
        }
        return error_reply(ret, "unsupported", d, "KVM_CAP_NESTED_STATE is 0: this host's KVM has no nested state");
}

/* "vcpu" (required) plus the method's own keys; checks that the VM is paused and the vCPU exists. */
static int params_vcpu(Vm *vm, json_object *params, const char *const *keys, unsigned *ret_vcpu, json_object **ret_error) {
        JsonError je = {};
        uint64_t vcpu = 0;

        if (!params)
                return error_reply(ret_error, "invalid_argument", NULL, "$.params.vcpu: is required") ?: 0;
        if (json_check_keys(params, "$.params", keys, &je) < 0 ||
            json_get_uint64(params, "$.params", "vcpu", true, 0, UINT32_MAX, &vcpu, &je) < 0)
                return error_reply(ret_error, "invalid_argument", NULL, "%s: %s", je.path, je.message) ?: 0;
        if (vcpu >= vm->n_vcpus) {
                json_object *d = json_object_new_object();
                if (d) {
                        json_add_uint(d, "vcpu", vcpu);
                        json_add_uint(d, "vcpus", vm->n_vcpus);
                }
                return error_reply(ret_error, "not_found", d, "no vCPU %llu (the VM has %u)", (unsigned long long) vcpu,
                                   vm->n_vcpus) ?: 0;
        }
        pthread_mutex_lock(&vm->lock);
        VmState state = vm->state;
        pthread_mutex_unlock(&vm->lock);
        if (state != VM_STATE_PAUSED) {
                json_object *d = json_object_new_object();
                if (d)
                        json_add_string(d, "state", vm_state_to_string(state));
                return error_reply(ret_error, "invalid_state", d,
                                   "nested state is read and written only while the VM is paused; it is %s",
                                   vm_state_to_string(state)) ?: 0;
        }
        if (nested_state_max_size(vm->kvm_fd) <= 0)
                return unsupported(ret_error) ?: 0;
        *ret_vcpu = (unsigned) vcpu;
        return 1;
}

typedef struct NestedCall {
        int max_size;
        struct kvm_nested_state *state; /* get: filled; set: given */
        size_t size;
} NestedCall;

static int vcpu_get(Vcpu *v, void *userdata) {
        NestedCall *c = userdata;
        return nested_state_get(v->fd, c->max_size, &c->state, &c->size);
}

static int vcpu_set(Vcpu *v, void *userdata) {
        NestedCall *c = userdata;
        return nested_state_set(v->fd, c->state, c->size);
}

static int kvm_failed(json_object **ret_error, const char *ioctl_name, unsigned vcpu, int err) {
        json_object *d = json_object_new_object();
        if (d) {
                json_add_string(d, "ioctl", ioctl_name);
                json_add_int(d, "errno", -err);
                json_add_string(d, "errno_name", strerrorname_np(-err) ?: "?");
                json_add_uint(d, "vcpu", vcpu);
        }
        return error_reply(ret_error, "nested_state_rejected", d, "%s on vCPU %u failed: %s", ioctl_name, vcpu, strerror(-err));
}

static int result_for(const struct kvm_nested_state *st, size_t size, unsigned vcpu, int max_size, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *b64 = NULL;
        int r = nested_state_decode(st, size, &o);
        if (r < 0)
                return r;
        b64 = base64_encode(st, size);
        if (!b64)
                return -ENOMEM;
        if (json_add_uint(o, "vcpu", vcpu) < 0 || json_add_int(o, "max_size", max_size) < 0 ||
            json_add_string(o, "data", b64) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 1;
}

static int method_get(Vm *vm, json_object *params, json_object **ret, json_object **ret_error) {
        static const char *const keys[] = { "vcpu", NULL };
        unsigned vcpu = 0;
        int r = params_vcpu(vm, params, keys, &vcpu, ret_error);
        if (r <= 0)
                return r;
        NestedCall c = { .max_size = nested_state_max_size(vm->kvm_fd) };
        r = vm_vcpu_call(vm, vcpu, vcpu_get, &c, NESTED_CONTROL_VCPU_TIMEOUT_MS);
        if (r == -ETIMEDOUT)
                return error_reply(ret_error, "internal", NULL, "vCPU %u did not answer within %d ms", vcpu,
                                   NESTED_CONTROL_VCPU_TIMEOUT_MS) ?: 0;
        if (r < 0)
                return kvm_failed(ret_error, "KVM_GET_NESTED_STATE", vcpu, r) ?: 0;
        _cleanup_free_ struct kvm_nested_state *st = c.state;
        return result_for(st, c.size, vcpu, c.max_size, ret);
}

static int method_set(Vm *vm, json_object *params, json_object **ret, json_object **ret_error) {
        static const char *const keys[] = { "vcpu", "data", NULL };
        _cleanup_free_ void *blob = NULL;
        const char *data = NULL;
        NestedStateError ne = {};
        JsonError je = {};
        unsigned vcpu = 0;
        size_t len = 0;
        int r = params_vcpu(vm, params, keys, &vcpu, ret_error);
        if (r <= 0)
                return r;
        if (json_get_string(params, "$.params", "data", true, &data, &je) < 0)
                return error_reply(ret_error, "invalid_argument", NULL, "%s: %s", je.path, je.message) ?: 0;
        if (base64_decode(data, &blob, &len) < 0)
                return error_reply(ret_error, "invalid_argument", NULL, "$.params.data: is not valid base64") ?: 0;

        int max_size = nested_state_max_size(vm->kvm_fd);
        r = nested_state_validate(blob, len, nested_state_host_format(), max_size, &ne);
        if (r == -EOPNOTSUPP)
                return unsupported(ret_error) ?: 0;
        if (r < 0) {
                json_object *d = json_object_new_object();
                if (d) {
                        json_add_string(d, "field", ne.field);
                        json_add_uint(d, "size", len);
                        json_add_int(d, "max_size", max_size);
                }
                return error_reply(ret_error, "invalid_argument", d, "nested state refused: %s: %s", ne.field, ne.message) ?: 0;
        }
        NestedCall c = { .max_size = max_size, .state = blob, .size = len };
        r = vm_vcpu_call(vm, vcpu, vcpu_set, &c, NESTED_CONTROL_VCPU_TIMEOUT_MS);
        if (r == -ETIMEDOUT)
                return error_reply(ret_error, "internal", NULL, "vCPU %u did not answer within %d ms", vcpu,
                                   NESTED_CONTROL_VCPU_TIMEOUT_MS) ?: 0;
        if (r < 0)
                return kvm_failed(ret_error, "KVM_SET_NESTED_STATE", vcpu, r) ?: 0;

        /* What KVM holds now, read back so the caller sees the state in effect. */
        c = (NestedCall){ .max_size = max_size };
        r = vm_vcpu_call(vm, vcpu, vcpu_get, &c, NESTED_CONTROL_VCPU_TIMEOUT_MS);
        if (r < 0)
                return kvm_failed(ret_error, "KVM_GET_NESTED_STATE", vcpu, r) ?: 0;
        _cleanup_free_ struct kvm_nested_state *st = c.state;
        return result_for(st, c.size, vcpu, max_size, ret);
}

int nested_control_call(Vm *vm, const char *method, json_object *params, json_object **ret_result,
                        json_object **ret_error) {
        if (streq(method, "nested_state_get"))
                return method_get(vm, params, ret_result, ret_error);
        if (streq(method, "nested_state_set"))
                return method_set(vm, params, ret_result, ret_error);
        return -EINVAL;
}
