/*
 * ttc_aeb.c - the reference TTC cascade AEB (warning -> partial -> full braking)
 * in C, through the adsreplay C ABI. A line-by-line port of
 * pytest_adsreplay.reference:TtcAeb: same parameters and defaults, same state machine,
 * same confirmation and release timers, same lateral gate, same target selection from
 * the object list, so a build with -ffp-contract=off gives the same outputs bit for bit.
 *
 * Inputs: the single target (ego_speed, target_*), ego_yaw_rate, and the object list as
 * obj_dx[0] ... obj_dx[31], obj_dy[..], obj_vx[..], obj_valid[..], obj_id[..] (32 slots;
 * NaN when a recording has no list). Outputs: fcw, aeb_decel, ttc, state and reacted_to
 * (the selected track id; NaN without a list, where the Python function has no such
 * output).
 *
 * Build:  cc -O2 -ffp-contract=off -shared -fPIC -I. ttc_aeb.c -o libttc_aeb.so
 * (add -DADSREPLAY_NO_BATCH to leave out the batch entry point; -DTTC_AEB_SLOTS=n for a
 * list of n slots, 0 for a single-target build without object inputs)
 */
#include "adsreplay_function.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IDLE = 0, WARNING = 1, PARTIAL = 2, FULL = 3 };
#define EPS 1e-9
#define ERR_LEN 512

#ifndef TTC_AEB_SLOTS
#define TTC_AEB_SLOTS 32
#endif
#define N_SLOTS TTC_AEB_SLOTS   /* object-list slots */
#define MIN_CURVATURE_SPEED 2.0 /* m/s; kpi.target.MIN_CURVATURE_SPEED */

/* The object fields the function reads, each N_SLOTS inputs after the scalar ones. */
enum { OBJ_DX, OBJ_DY, OBJ_VX, OBJ_VALID, OBJ_ID, N_OBJ_FIELDS };
enum {
    IN_EGO_SPEED, IN_DISTANCE, IN_REL_SPEED, IN_VALID, IN_LATERAL, IN_YAW_RATE, IN_OBJECTS,
    N_INPUTS = IN_OBJECTS + N_OBJ_FIELDS * N_SLOTS
};
enum { OUT_FCW, OUT_DECEL, OUT_TTC, OUT_STATE, OUT_REACTED_TO, N_OUTPUTS };
enum {
    P_FCW_TTC, P_PARTIAL_TTC, P_FULL_TTC, P_PARTIAL_DECEL, P_FULL_DECEL, P_CONFIRM_TIME,
    P_HYSTERESIS, P_RELEASE_TIME, P_MAX_LATERAL, P_MIN_SPEED, P_STANDSTILL_SPEED,
    P_AXLE_TO_FRONT, N_PARAMS
};

static const char *const INPUTS[IN_OBJECTS] = {
    "ego_speed", "target_distance", "target_rel_speed", "target_valid", "target_lateral",
    "ego_yaw_rate"};
#if N_SLOTS > 0
static const char *const OBJ_FIELDS[N_OBJ_FIELDS] = {"obj_dx", "obj_dy", "obj_vx", "obj_valid",
                                                     "obj_id"};
static char obj_names[N_OBJ_FIELDS * N_SLOTS][16]; /* "obj_dx[0]" ..., made when first asked */
#endif
static const char *const OUTPUTS[N_OUTPUTS] = {"fcw", "aeb_decel", "ttc", "state", "reacted_to"};
static const char *const PARAMS[N_PARAMS] = {
    "fcw_ttc", "partial_ttc", "full_ttc", "partial_decel", "full_decel", "confirm_time",
    "hysteresis", "release_time", "max_lateral", "min_speed", "standstill_speed",
    "axle_to_front"};
static const double DEFAULTS[N_PARAMS] = {2.8, 1.7, 1.2, 4.0, 9.0, 0.1,
                                          0.3, 0.5, 1.0, 1.4, 0.1, 0.0};

struct adsreplay_instance {
    double p[N_PARAMS];
    int state;
    int has_threat; /* threat_since is set */
    double threat_since;
    int has_clear; /* clear_since is set */
    double clear_since;
    double target; /* the track id selected from the object list last cycle (NaN: none) */
    char error[ERR_LEN];
};

static char create_error[ERR_LEN];

int adsreplay_abi_version(void) { return ADSREPLAY_ABI_VERSION; }
int adsreplay_input_count(void) { return N_INPUTS; }
const char *adsreplay_input_name(int i) {
    if (i < 0 || i >= N_INPUTS) return NULL;
    if (i < IN_OBJECTS) return INPUTS[i];
#if N_SLOTS > 0
    int k = i - IN_OBJECTS;
    if (!obj_names[k][0])
        snprintf(obj_names[k], sizeof obj_names[k], "%s[%d]", OBJ_FIELDS[k / N_SLOTS], k % N_SLOTS);
    return obj_names[k];
#else
    return NULL;
#endif
}
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
    f->target = NAN;
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

/* TtcAeb.select: 1 with *d, *vr, *offset, *id of the nearest in-path valid object ahead
 * (all NaN when no valid object is in the path), 0 when the list holds no valid object. */
static int select_target(const adsreplay_instance *f, const double *in, double *d, double *vr,
                         double *offset, double *id) {
    const double *dx = in + IN_OBJECTS + OBJ_DX * N_SLOTS;
    const double *dy = in + IN_OBJECTS + OBJ_DY * N_SLOTS;
    const double *valid = in + IN_OBJECTS + OBJ_VALID * N_SLOTS;
    double speed = in[IN_EGO_SPEED], yaw = in[IN_YAW_RATE];
    double kappa = isfinite(yaw) && speed >= MIN_CURVATURE_SPEED ? yaw / speed : 0.0;
    int listed = 0, best = -1;
    double best_offset = NAN;
    for (int j = 0; j < N_SLOTS; j++) {
        /* an empty slot (dx NaN, read first: the only field read without a list) or an
         * invalid object; a NaN obj_valid (not mapped) counts as valid, like target_valid */
        if (dx[j] != dx[j] || valid[j] == 0.0) continue;
        listed = 1;
        if (!(dx[j] > 0.0)) continue;
        /* only an object nearer than the best so far can win (at equal distance the lower
         * slot stays): its offset is worked out, the others' never */
        if (best >= 0 && !(dx[j] < dx[best])) continue;
        double x = dx[j] + f->p[P_AXLE_TO_FRONT];
        double y = dy[j] == dy[j] ? dy[j] : 0.0;
        double kx = kappa * x;
        double ky = 1.0 - kappa * y;
        double off = (2.0 * y - kappa * (x * x + y * y)) / (1.0 + sqrt(kx * kx + ky * ky));
        if (fabs(off) <= f->p[P_MAX_LATERAL]) {
            best = j;
            best_offset = off;
        }
    }
    if (!listed) return 0;
    if (best < 0) {
        *d = *vr = *offset = *id = NAN;
        return 1;
    }
    *d = dx[best];
    *vr = in[IN_OBJECTS + OBJ_VX * N_SLOTS + best];
    *offset = best_offset;
    *id = in[IN_OBJECTS + OBJ_ID * N_SLOTS + best];
    return 1;
}

/* TtcAeb._follow: the TTC of the selected target (the target_* inputs' without a valid
 * object); a new track id restarts the threat confirmation. */
static double follow(adsreplay_instance *f, const double *in, int picked, double d, double vr,
                     double id) {
    if (!picked) {
        f->target = NAN;
        return ttc_of(f, in);
    }
    if (id == id && id != f->target) f->has_threat = 0; /* a new target: confirmed afresh */
    f->target = id;
    if (!(d > 0.0) || vr != vr) return NAN;
    return vr < 0.0 ? d / -vr : INFINITY;
}

static void step_one(adsreplay_instance *f, double t, const double *in, double *out) {
    const double *p = f->p;
    double d = NAN, vr = NAN, offset = NAN, id = NAN;
    int picked = select_target(f, in, &d, &vr, &offset, &id);
    double ttc = follow(f, in, picked, d, vr, id);
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

    if (state != IDLE && f->has_threat &&
        (!picked || t - f->threat_since >= p[P_CONFIRM_TIME] - EPS)) {
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
    out[OUT_REACTED_TO] = picked ? id : NAN;
}

int adsreplay_step(adsreplay_instance *f, double t, const double *inputs, double *outputs) {
    step_one(f, t, inputs, outputs);
    return 0;
}

#ifndef ADSREPLAY_NO_BATCH /* -DADSREPLAY_NO_BATCH builds the per-step form */
int adsreplay_step_batch(adsreplay_instance *f, size_t n, const double *t, const double *inputs,
                         double *outputs, size_t *done) {
    for (size_t i = 0; i < n; i++) {
#if defined(__GNUC__) && N_SLOTS > 0
        /* a row of the list is wide (1.3 kB at 32 slots) and every cycle reads its obj_dx:
         * fetch the scalars and obj_dx of a row 8 cycles ahead (about twice as fast) */
        if (i + 8 < n) {
            const char *row = (const char *)(inputs + (i + 8) * N_INPUTS);
            for (size_t c = 0; c < (IN_OBJECTS + N_SLOTS) * sizeof(double); c += 64)
                __builtin_prefetch(row + c);
        }
#endif
        step_one(f, t[i], inputs + i * N_INPUTS, outputs + i * N_OUTPUTS);
    }
    if (done) *done = n;
    return 0;
}
#endif
