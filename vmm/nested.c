/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "kvm.h"
#include "macro.h"
#include "nested.h"

int nested_state_max_size(int kvm_fd) {
        int r = kvm_check_extension(kvm_fd, KVM_CAP_NESTED_STATE);
        return r < 0 ? 0 : r;
}

int nested_state_get(int vcpu_fd, int max_size, struct kvm_nested_state **ret, size_t *ret_size) {
        size_t size = (size_t) MAX(max_size, 0);

        if (size == 0)
                return -EOPNOTSUPP;
        for (int attempt = 0; attempt < 2; attempt++) {
                if (size < NESTED_STATE_HEADER_SIZE || size > NESTED_STATE_SIZE_LIMIT)
                        return -E2BIG;
                _cleanup_free_ struct kvm_nested_state *st = calloc(1, size);
                if (!st)
                        return -ENOMEM;
                st->size = (uint32_t) size;
                int r = __kvm_ioctl(vcpu_fd, KVM_GET_NESTED_STATE, st);
                if (r == -E2BIG) {
                        /* KVM wrote the size it needs into the header: ask again with that. */
                        if (st->size <= size)
                                return -E2BIG;
                        size = st->size;
                        continue;
                }
                if (r < 0)
                        return r;
                if (st->size < NESTED_STATE_HEADER_SIZE || st->size > size)
                        return -EPROTO;
                *ret_size = st->size;
                *ret = TAKE_PTR(st);
                return 0;
        }
        return -E2BIG;
}

int nested_state_set(int vcpu_fd, const struct kvm_nested_state *state, size_t len) {
        if (len < NESTED_STATE_HEADER_SIZE || len > NESTED_STATE_SIZE_LIMIT || state->size != len)
                return -EINVAL;
        return __kvm_ioctl(vcpu_fd, KVM_SET_NESTED_STATE, state);
}
