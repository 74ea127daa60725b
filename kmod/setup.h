/* SPDX-License-Identifier: MIT */
#pragma once

#include "config.h"
#include "report.h"

/* The whole run: validate the requested parameters, pin to the target CPU, bring the KVM modules to
 * the requested state (insert, or with config->reload re-insert on drift), read back the effective
 * parameters, compare every online CPU with the target CPU. Every outcome, failures included, lands
 * in report (exit_code, error); the return value is negative only when the report itself could not
 * be built (out of memory). */
int kvm_setup_run(LoadConfig *config, LoadReport *report);
