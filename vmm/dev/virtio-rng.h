/* SPDX-License-Identifier: MIT */
/* virtio-rng: one queue whose device-writable buffers are filled from getrandom(2). */
#pragma once

#include "dev/virtio-pci.h"

int virtio_rng_attach(const VirtioPciEnv *env, VirtioPci **ret);
