/*
 * aeb_ecu.c - a production-style AEB function in C for pytest-adsreplay.
 *
 * It names its ports the way the ECU does (VehSpd_mps, ObjDistX_m, AebDecelReq, ...);
 * binding.toml maps them to the plugin's canonical signals and outputs. Parameters
 * are dotted names, so a TOML table {brake = {ttc = 1.8}} sets "brake.ttc".
 *
 * Build (see Makefile):
 *   adsreplay function --header > adsreplay_function.h
 *   cc -O2 -ffp-contract=off -shared -fPIC -I. aeb_ecu.c -o build/libaeb_ecu.so -lm
 */
#include "adsreplay_function.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { VEH_SPD, OBJ_DX, OBJ_VX, OBJ_VALID, OBJ_DY, N_IN };
enum { DECEL_REQ, FCW_REQ, TTC_EST, N_OUT };
enum { FCW_TTC, BRAKE_TTC, BRAKE_DECEL, GATE_LATERAL, GATE_MIN_SPEED, N_PAR };

static const char *const IN[N_IN] = {"VehSpd_mps", "ObjDistX_m", "ObjVrelX_mps", "ObjValid",
                                     "ObjDistY_m"};
static const char *const OUT[N_OUT] = {"AebDecelReq", "FcwReq", "TtcEst"};
static const char *const PAR[N_PAR] = {"fcw.ttc", "brake.ttc", "brake.decel", "gate.lateral",
                                       "gate.min_speed"};
static const double DEF[N_PAR] = {2.6, 1.6, 8.0, 1.0, 1.4};

struct adsreplay_instance {
    double p[N_PAR];
    int braking;      /* latched braking request */
    double clear_for; /* s without a threat while braking */
    double last_t;
    char error[256];
};

static char create_error[256];

int adsreplay_abi_version(void) { return ADSREPLAY_ABI_VERSION; }
int adsreplay_input_count(void) { return N_IN; }
const char *adsreplay_input_name(int i) { return IN[i]; }
int adsreplay_output_count(void) { return N_OUT; }
const char *adsreplay_output_name(int i) { return OUT[i]; }
int adsreplay_parameter_count(void) { return N_PAR; }
const char *adsreplay_parameter_name(int i) { return PAR[i]; }
double adsreplay_parameter_default(int i) { return DEF[i]; }
double adsreplay_cycle_time(void) { return 0.01; }
const char *adsreplay_last_error(const adsreplay_instance *f) {
    return f ? f->error : create_error;
}

/* The plugin sends a flat JSON object of numbers whose names it has checked against
 * the parameter list above, e.g. {"brake.ttc": 1.8}. */
static int read_params(const char *json, double *p) {
    for (int i = 0; i < N_PAR; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\"", PAR[i]);
        const char *at = strstr(json, key);
        if (!at) continue;
        at += strlen(key);
        while (*at == ' ' || *at == ':') at++;
        char *end;
        p[i] = strtod(at, &end);
        if (end == at || !isfinite(p[i]) || p[i] < 0) {
            snprintf(create_error, sizeof create_error, "%s must be a finite number >= 0", PAR[i]);
            return -1;
        }
    }
    if (p[BRAKE_TTC] > p[FCW_TTC]) {
        snprintf(create_error, sizeof create_error,
                 "brake.ttc (%g s) must not exceed fcw.ttc (%g s)", p[BRAKE_TTC], p[FCW_TTC]);
        return -1;
    }
    return 0;
}

adsreplay_instance *adsreplay_create(const char *params_json) {
    adsreplay_instance *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    memcpy(f->p, DEF, sizeof DEF);
    if (read_params(params_json, f->p)) {
        free(f);
        return NULL;
    }
    return f;
}

int adsreplay_reset(adsreplay_instance *f) {
    f->braking = 0;
    f->clear_for = 0.0;
    f->last_t = NAN;
    f->error[0] = '\0';
    return 0;
}

void adsreplay_free(adsreplay_instance *f) { free(f); }

static int step(adsreplay_instance *f, double t, const double *in, double *out) {
    const double *p = f->p;
    double dx = in[OBJ_DX], vx = in[OBJ_VX], speed = in[VEH_SPD];
    int in_path = in[OBJ_VALID] != 0.0 && dx > 0.0 && !(fabs(in[OBJ_DY]) > p[GATE_LATERAL]);
    double ttc = in_path && vx < 0.0 ? dx / -vx : INFINITY;
    double dt = isnan(f->last_t) ? 0.0 : t - f->last_t;
    f->last_t = t;
    if (ttc <= p[BRAKE_TTC] && speed >= p[GATE_MIN_SPEED]) {
        f->braking = 1;
        f->clear_for = 0.0;
    } else if (f->braking) {
        f->clear_for = ttc <= p[FCW_TTC] ? 0.0 : f->clear_for + dt;
        if (speed <= 0.1 || f->clear_for >= 0.5) f->braking = 0;
    }
    out[DECEL_REQ] = f->braking ? p[BRAKE_DECEL] : 0.0;
    out[FCW_REQ] = f->braking || (ttc <= p[FCW_TTC] && speed >= p[GATE_MIN_SPEED]) ? 1.0 : 0.0;
    out[TTC_EST] = ttc;
    return 0;
}

int adsreplay_step(adsreplay_instance *f, double t, const double *inputs, double *outputs) {
    return step(f, t, inputs, outputs);
}

int adsreplay_step_batch(adsreplay_instance *f, size_t n, const double *t, const double *inputs,
                         double *outputs, size_t *done) {
    for (size_t i = 0; i < n; i++) {
        int status = step(f, t[i], inputs + i * N_IN, outputs + i * N_OUT);
        if (status) {
            *done = i;
            return status;
        }
    }
    *done = n;
    return 0;
}
