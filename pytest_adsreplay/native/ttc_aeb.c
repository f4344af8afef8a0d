/*
 * ttc_aeb.c - the reference TTC cascade AEB (warning -> partial -> full braking)
 * in C, through the adsreplay C ABI. A line-by-line port of
 * pytest_adsreplay.reference:TtcAeb: same parameters and defaults, same state machine,
 * same confirmation and release timers, same lateral gate, so a build with
 * -ffp-contract=off gives the same outputs bit for bit.
 *
 * Build:  cc -O2 -ffp-contract=off -shared -fPIC -I. ttc_aeb.c -o libttc_aeb.so
 * (add -DADSREPLAY_NO_BATCH to leave out the batch entry point)
 */
#include "adsreplay_function.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IDLE = 0, WARNING = 1, PARTIAL = 2, FULL = 3 };
#define EPS 1e-9
#define ERR_LEN 512

enum { IN_EGO_SPEED, IN_DISTANCE, IN_REL_SPEED, IN_VALID, IN_LATERAL, N_INPUTS };
enum { OUT_FCW, OUT_DECEL, OUT_TTC, OUT_STATE, N_OUTPUTS };
enum {
    P_FCW_TTC, P_PARTIAL_TTC, P_FULL_TTC, P_PARTIAL_DECEL, P_FULL_DECEL, P_CONFIRM_TIME,
    P_HYSTERESIS, P_RELEASE_TIME, P_MAX_LATERAL, P_MIN_SPEED, P_STANDSTILL_SPEED, N_PARAMS
};

static const char *const INPUTS[N_INPUTS] = {
    "ego_speed", "target_distance", "target_rel_speed", "target_valid", "target_lateral"};
static const char *const OUTPUTS[N_OUTPUTS] = {"fcw", "aeb_decel", "ttc", "state"};
static const char *const PARAMS[N_PARAMS] = {
    "fcw_ttc", "partial_ttc", "full_ttc", "partial_decel", "full_decel", "confirm_time",
    "hysteresis", "release_time", "max_lateral", "min_speed", "standstill_speed"};
static const double DEFAULTS[N_PARAMS] = {2.8, 1.7, 1.2, 4.0, 9.0, 0.1, 0.3, 0.5, 1.0, 1.4, 0.1};

struct adsreplay_instance {
    double p[N_PARAMS];
    int state;
    int has_threat; /* threat_since is set */
    double threat_since;
    int has_clear; /* clear_since is set */
    double clear_since;
    char error[ERR_LEN];
};

static char create_error[ERR_LEN];

int adsreplay_abi_version(void) { return ADSREPLAY_ABI_VERSION; }
int adsreplay_input_count(void) { return N_INPUTS; }
const char *adsreplay_input_name(int i) { return i >= 0 && i < N_INPUTS ? INPUTS[i] : NULL; }
int adsreplay_output_count(void) { return N_OUTPUTS; }
const char *adsreplay_output_name(int i) { return i >= 0 && i < N_OUTPUTS ? OUTPUTS[i] : NULL; }
int adsreplay_parameter_count(void) { return N_PARAMS; }
const char *adsreplay_parameter_name(int i) { return i >= 0 && i < N_PARAMS ? PARAMS[i] : NULL; }
double adsreplay_parameter_default(int i) { return i >= 0 && i < N_PARAMS ? DEFAULTS[i] : NAN; }
double adsreplay_cycle_time(void) { return 0.01; }

const char *adsreplay_last_error(const adsreplay_instance *f) {
    return f ? f->error : create_error;
}

/* ---- parameters: a flat JSON object of numbers ------------------------------------ */

static const char *skip_ws(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return s;
}

/* Parse a JSON string at s (after the opening quote) into buf; return the char after
 * the closing quote, or NULL. */
static const char *parse_key(const char *s, char *buf, size_t size) {
    size_t n = 0;
    while (*s && *s != '"') {
        if (*s == '\\' && s[1]) s++;
        if (n + 1 < size) buf[n++] = *s;
        s++;
    }
    buf[n] = '\0';
    return *s == '"' ? s + 1 : NULL;
}

static int param_index(const char *name) {
    for (int i = 0; i < N_PARAMS; i++)
        if (strcmp(name, PARAMS[i]) == 0) return i;
    return -1;
}

static int set_param(double *p, const char *key, const char **cursor) {
    const char *s = *cursor;
    int i = param_index(key);
    if (i < 0) {
        snprintf(create_error, ERR_LEN, "unknown parameter '%s'", key);
        return -1;
    }
    char *end = NULL;
    double value = strtod(s, &end);
    if (end == s || *s == '"' || *s == 't' || *s == 'f' || *s == '[' || *s == '{') {
        snprintf(create_error, ERR_LEN, "TtcAeb %s must be a number", key);
        return -1;
    }
    p[i] = value;
    *cursor = end;
    return 0;
}

static int parse_params(const char *json, double *p) {
    char key[128];
    const char *s = skip_ws(json ? json : "{}");
    if (*s++ != '{') goto bad;
    s = skip_ws(s);
    if (*s == '}') return 0;
    for (;;) {
        if (*s++ != '"' || !(s = parse_key(s, key, sizeof key))) goto bad;
        s = skip_ws(s);
        if (*s++ != ':') goto bad;
        s = skip_ws(s);
        if (set_param(p, key, &s)) return -1;
        s = skip_ws(s);
        if (*s == '}') return 0;
        if (*s++ != ',') goto bad;
        s = skip_ws(s);
    }
bad:
    snprintf(create_error, ERR_LEN, "parameters are not a flat JSON object of numbers: %.200s",
             json);
    return -1;
}

static int check_params(const double *p) {
    for (int i = 0; i < N_PARAMS; i++) {
        if (!isfinite(p[i]) || p[i] < 0) {
            snprintf(create_error, ERR_LEN, "TtcAeb %s must be finite and >= 0, got %.17g",
                     PARAMS[i], p[i]);
            return -1;
        }
    }
    if (!(0 < p[P_FULL_TTC] && p[P_FULL_TTC] <= p[P_PARTIAL_TTC] &&
          p[P_PARTIAL_TTC] <= p[P_FCW_TTC])) {
        snprintf(create_error, ERR_LEN,
                 "TtcAeb thresholds must satisfy 0 < full_ttc <= partial_ttc <= fcw_ttc, got "
                 "full_ttc=%.17g, partial_ttc=%.17g, fcw_ttc=%.17g",
                 p[P_FULL_TTC], p[P_PARTIAL_TTC], p[P_FCW_TTC]);
        return -1;
    }
    if (!(0 < p[P_PARTIAL_DECEL] && p[P_PARTIAL_DECEL] <= p[P_FULL_DECEL])) {
        snprintf(create_error, ERR_LEN,
                 "TtcAeb decelerations must satisfy 0 < partial_decel <= full_decel, got "
                 "partial_decel=%.17g, full_decel=%.17g",
                 p[P_PARTIAL_DECEL], p[P_FULL_DECEL]);
        return -1;
    }
    return 0;
}

/* ---- life cycle ------------------------------------------------------------------- */

adsreplay_instance *adsreplay_create(const char *params_json) {
    double p[N_PARAMS];
    memcpy(p, DEFAULTS, sizeof p);
    create_error[0] = '\0';
    if (parse_params(params_json, p) || check_params(p)) return NULL;
    adsreplay_instance *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(create_error, ERR_LEN, "out of memory");
        return NULL;
    }
    memcpy(f->p, p, sizeof p);
    adsreplay_reset(f);
    return f;
}

int adsreplay_reset(adsreplay_instance *f) {
    f->state = IDLE;
    f->has_threat = 0;
    f->threat_since = 0.0;
    f->has_clear = 0;
    f->clear_since = 0.0;
    f->error[0] = '\0';
    return 0;
}

void adsreplay_free(adsreplay_instance *f) { free(f); }

/* ---- one cycle -------------------------------------------------------------------- */

/* TTC of the in-path target: inf when not closing, NaN with no (in-path) target. */
static double ttc_of(const adsreplay_instance *f, const double *in) {
    double d = in[IN_DISTANCE], vr = in[IN_REL_SPEED];
    if (!(d > 0.0) || vr != vr || in[IN_VALID] == 0.0 || fabs(in[IN_LATERAL]) > f->p[P_MAX_LATERAL])
        return NAN;
    return vr < 0.0 ? d / -vr : INFINITY;
}

static void step_one(adsreplay_instance *f, double t, const double *in, double *out) {
    const double *p = f->p;
    double ttc = ttc_of(f, in);
    int critical = ttc <= p[P_FCW_TTC] + p[P_HYSTERESIS];
    double speed = in[IN_EGO_SPEED];
    int state = f->state;

    if (critical && speed >= p[P_MIN_SPEED]) {
        if (!f->has_threat && ttc <= p[P_FCW_TTC]) {
            f->has_threat = 1;
            f->threat_since = t;
        }
    } else {
        f->has_threat = 0;
    }

    if (state == IDLE) {
        if (f->has_threat && t - f->threat_since >= p[P_CONFIRM_TIME] - EPS) {
            state = WARNING;
            f->has_clear = 0;
        }
    } else {
        if (critical) {
            f->has_clear = 0;
        } else if (!f->has_clear) {
            f->has_clear = 1;
            f->clear_since = t;
        }
        if (speed <= p[P_STANDSTILL_SPEED] ||
            (f->has_clear && t - f->clear_since >= p[P_RELEASE_TIME] - EPS)) {
            state = IDLE;
            f->has_clear = 0;
        }
    }

    if (state != IDLE && f->has_threat) {
        if (ttc <= p[P_FULL_TTC])
            state = FULL;
        else if (ttc <= p[P_PARTIAL_TTC] && state < PARTIAL)
            state = PARTIAL;
    }

    f->state = state;
    out[OUT_FCW] = state != IDLE ? 1.0 : 0.0;
    out[OUT_DECEL] = state == FULL ? p[P_FULL_DECEL] : state == PARTIAL ? p[P_PARTIAL_DECEL] : 0.0;
    out[OUT_TTC] = ttc;
    out[OUT_STATE] = (double)state;
}

int adsreplay_step(adsreplay_instance *f, double t, const double *inputs, double *outputs) {
    step_one(f, t, inputs, outputs);
    return 0;
}

#ifndef ADSREPLAY_NO_BATCH /* -DADSREPLAY_NO_BATCH builds the per-step form */
int adsreplay_step_batch(adsreplay_instance *f, size_t n, const double *t, const double *inputs,
                         double *outputs, size_t *done) {
    for (size_t i = 0; i < n; i++)
        step_one(f, t[i], inputs + i * N_INPUTS, outputs + i * N_OUTPUTS);
    if (done) *done = n;
    return 0;
}
#endif
