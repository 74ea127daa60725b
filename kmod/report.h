/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

#include "cpuid.h"
#include "modules.h"

/* Exit codes, also recorded in the report. */
enum {
        LOAD_EXIT_OK = 0,
        LOAD_EXIT_DIVERGENCE = 1,
        LOAD_EXIT_LOAD_FAILED = 2,
        LOAD_EXIT_USAGE = 3,
};

typedef enum ModuleAction {
        MODULE_ACTION_NONE,
        MODULE_ACTION_INSERTED,
        MODULE_ACTION_RELOADED,
        MODULE_ACTION_FAILED,
} ModuleAction;

const char *module_action_to_string(ModuleAction a);

typedef struct CpuTraceEntry {
        char step[64];
        int cpu; /* sched_getcpu() at that point */
} CpuTraceEntry;

typedef struct ModuleReport {
        char name[64];
        ModuleState state; /* after the run */
        int refcount;      /* -1: none */
        ModuleAction action;
        char error[256];
} ModuleReport;

typedef struct ParamReport {
        char module[64];
        char name[64];
        char requested[128];
        char effective[128]; /* "" with has_effective false when unreadable */
        bool has_effective;
        bool in_effect;
        bool applicable;
        char reason[512];
} ParamReport;

typedef struct DurationEntry {
        char name[32];
        double ms;
} DurationEntry;

#define LOAD_REPORT_MAX_TRACE 64
#define LOAD_REPORT_MAX_MODULES 8
#define LOAD_REPORT_MAX_DURATIONS 16
#define LOAD_REPORT_MAX_NOTES 16

typedef struct LoadReport {
        char kernel_release[65];
        char generated_at[32];
        unsigned target_cpu;
        CpuTraceEntry trace[LOAD_REPORT_MAX_TRACE];
        size_t n_trace;
        CpuVendor vendor;
        char vendor_module[64];
        ModuleReport modules[LOAD_REPORT_MAX_MODULES];
        size_t n_modules;
        ParamReport *params;
        size_t n_params;
        bool params_in_effect;
        bool drift; /* loaded modules run with parameters other than the requested ones */
        unsigned *checked_cpus;
        size_t n_checked_cpus;
        bool consistency_checked;
        bool consistent;
        char cpuid_source[16]; /* "dev" or "pinned" */
        CpuDifference *differences;
        size_t n_differences;
        DurationEntry durations[LOAD_REPORT_MAX_DURATIONS];
        size_t n_durations;
        char notes[LOAD_REPORT_MAX_NOTES][256];
        size_t n_notes;
        char error[512]; /* why the run failed, if it did */
        bool ok;
        int exit_code;
} LoadReport;

int load_report_new(LoadReport **ret);
void load_report_free(LoadReport *r);

int load_report_add_trace(LoadReport *r, const char *step, int cpu);
ModuleReport *load_report_module(LoadReport *r, const char *name); /* finds or adds; NULL when full */
int load_report_add_param(LoadReport *r, const ParamReport *p);
int load_report_add_duration(LoadReport *r, const char *name, double ms);
void load_report_add_note(LoadReport *r, const char *fmt, ...) _printf_(2, 3);
const ModuleReport *load_report_find_module(const LoadReport *r, const char *name);

/* Sets generated_at to now in RFC 3339 UTC. */
int load_report_stamp(LoadReport *r);

int load_report_to_json(const LoadReport *r, json_object **ret);
/* The readable summary: one line per fact, "kvm_amd: loaded, no drift", "CPUs consistent", ... */
int load_report_print(const LoadReport *r, FILE *f);
