/*
 * Echoes an Integer input and its NAME_valid input, for the tests of inputs that
 * cannot hold NaN: outputs seen_brake and seen_valid are what the function was given.
 */
#include "adsreplay_function.h"

#include <stdlib.h>

static const char *const IN[] = {"ego_speed", "driver_brake", "driver_brake_valid"};
static const char *const OUT[] = {"aeb_decel", "seen_brake", "seen_valid"};
struct adsreplay_instance { int unused; };
static char no_error[1];

int adsreplay_abi_version(void) { return ADSREPLAY_ABI_VERSION; }
int adsreplay_input_count(void) { return 3; }
const char *adsreplay_input_name(int i) { return IN[i]; }
int adsreplay_output_count(void) { return 3; }
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
    out[0] = 0.0;
    out[1] = in[1];
    out[2] = in[2];
    return 0;
}
