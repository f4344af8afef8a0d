/*
 * Takes the object list as element inputs and reports what it was given, for the tests
 * of object-list inputs of C functions and FMUs.
 *
 * Inputs: ego_speed, then OBJ_NAME[OBJ_BASE] ... OBJ_NAME[OBJ_BASE + OBJ_SLOTS - 1]
 * (defaults: obj_dx, 0, 4; set with -DOBJ_NAME="\"RadarDx\"" -DOBJ_BASE=1 -DOBJ_SLOTS=n).
 * Outputs: aeb_decel (4 m/s^2 while the nearest object is closer than 25 m), nearest_dx
 * (the smallest finite value, -1 when there is none), slot_code (sum of (k+1) * value
 * over the finite values of slot k: it tells the slots apart), nan_slots (the number of
 * NaN slots).
 */
#include "adsreplay_function.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef OBJ_NAME
#define OBJ_NAME "obj_dx"
#endif
#ifndef OBJ_BASE
#define OBJ_BASE 0
#endif
#ifndef OBJ_SLOTS
#define OBJ_SLOTS 4
#endif

static const char *const OUT[] = {"aeb_decel", "nearest_dx", "slot_code", "nan_slots"};
static char names[OBJ_SLOTS + 1][64];
struct adsreplay_instance { int unused; };
static char no_error[1];

int adsreplay_abi_version(void) { return ADSREPLAY_ABI_VERSION; }
int adsreplay_input_count(void) { return OBJ_SLOTS + 1; }
const char *adsreplay_input_name(int i) {
    if (i < 0 || i > OBJ_SLOTS) return NULL;
    if (i == 0) return "ego_speed";
    snprintf(names[i], sizeof names[i], "%s[%d]", OBJ_NAME, OBJ_BASE + i - 1);
    return names[i];
}
int adsreplay_output_count(void) { return 4; }
const char *adsreplay_output_name(int i) { return OUT[i]; }
int adsreplay_parameter_count(void) { return 0; }
const char *adsreplay_parameter_name(int i) { (void)i; return NULL; }
double adsreplay_parameter_default(int i) { (void)i; return 0.0; }
double adsreplay_cycle_time(void) { return 0.01; }
const char *adsreplay_last_error(const adsreplay_instance *f) { (void)f; return no_error; }
adsreplay_instance *adsreplay_create(const char *json) { (void)json; return calloc(1, sizeof(adsreplay_instance)); }
int adsreplay_reset(adsreplay_instance *f) { (void)f; return 0; }
void adsreplay_free(adsreplay_instance *f) { free(f); }
int adsreplay_step(adsreplay_instance *f, double t, const double *in, double *out) {
    (void)f; (void)t;
    double nearest = INFINITY, code = 0.0, nans = 0.0;
    for (int k = 0; k < OBJ_SLOTS; k++) {
        double x = in[1 + k];
        if (isnan(x)) {
            nans += 1.0;
            continue;
        }
        code += (k + 1) * x;
        if (x < nearest) nearest = x;
    }
    out[0] = nearest < 25.0 ? 4.0 : 0.0;
    out[1] = isfinite(nearest) ? nearest : -1.0;
    out[2] = code;
    out[3] = nans;
    return 0;
}
