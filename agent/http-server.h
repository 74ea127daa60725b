/* SPDX-License-Identifier: MIT */
#pragma once

#include <microhttpd.h>

#include "manager.h"

int http_server_start_unix(Manager *m, int *ret_fd, struct MHD_Daemon **ret);
int http_server_start_tcp(Manager *m, struct MHD_Daemon **ret);
