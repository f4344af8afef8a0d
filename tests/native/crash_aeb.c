/*
 * A TTC function under test that fails on purpose, for the crash tests.
 *
 * Parameters: "crash" picks what happens (0 nothing, 1 SIGSEGV, 2 abort(), 3 exit(0),
 * 4 return ADSREPLAY_FMU_TERMINATE_STATUS when built into an FMU with that define) on
 * a recording whose ego speed reaches "crash_speed" m/s, at the first cycle with
 * t >= "crash_after" s. Every other recording runs normally.
 */
#include "adsreplay_function.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ADSREPLAY_FMU_TERMINATE_STATUS
#define ADSREPLAY_FMU_TERMINATE_STATUS 9
#endif

enum { P_CRASH, P_SPEED, P_AFTER, N_PARAMS };
static const char *const IN[] = {"ego_speed", "target_distance", "target_rel_speed"};
static const char *const OUT[] = {"aeb_decel", "fcw"};
static const char *const PAR[N_PARAMS] = {"crash", "crash_speed", "crash_after"};
static const double DEF[N_PARAMS] = {0.0, 15.0, 1.0};

struct adsreplay_instance {
    double p[N_PARAMS];
    char err[200];
};
static char create_err[200];

int adsreplay_abi_version(void) { return ADSREPLAY_ABI_VERSION; }
int adsreplay_input_count(void) { return 3; }
const char *adsreplay_input_name(int i) { return IN[i]; }
int adsreplay_output_count(void) { return 2; }
const char *adsreplay_output_name(int i) { return OUT[i]; }
int adsreplay_parameter_count(void) { return N_PARAMS; }
const char *adsreplay_parameter_name(int i) { return PAR[i]; }
double adsreplay_parameter_default(int i) { return DEF[i]; }
double adsreplay_cycle_time(void) { return 0.01; }
const char *adsreplay_last_error(const adsreplay_instance *f) { return f ? f->err : create_err; }

adsreplay_instance *adsreplay_create(const char *json) {
    adsreplay_instance *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(create_err, sizeof create_err, "out of memory");
        return NULL;
    }
    memcpy(f->p, DEF, sizeof DEF);
    for (int i = 0; i < N_PARAMS; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":", PAR[i]);
        const char *at = strstr(json, key);
        if (at) f->p[i] = strtod(at + strlen(key), NULL);
    }
    return f;
}

int adsreplay_reset(adsreplay_instance *f) {
    f->err[0] = 0;
    return 0;
}

void adsreplay_free(adsreplay_instance *f) { free(f); }

static int crash(adsreplay_instance *f, int kind) {
    volatile int *nowhere = NULL;
    switch (kind) {
    case 1:
        return *nowhere;
    case 2:
        abort();
    case 3:
        exit(0);
    case 4:
        snprintf(f->err, sizeof f->err, "plausibility monitor requested the end of the run");
        return ADSREPLAY_FMU_TERMINATE_STATUS;
    default:
        return 0;
    }
}

int adsreplay_step(adsreplay_instance *f, double t, const double *in, double *out) {
    if (in[0] >= f->p[P_SPEED] && t >= f->p[P_AFTER]) {
        int status = crash(f, (int)f->p[P_CRASH]);
        if (status) return status;
    }
    double ttc = in[2] < 0 && in[1] > 0 ? in[1] / -in[2] : INFINITY;
    out[0] = ttc <= 1.5 && in[0] > 1.0 ? 6.0 : 0.0;
    out[1] = ttc <= 2.5 ? 1.0 : 0.0;
    return 0;
}
