/*
 * adsreplay_fmu_core.h - shared state of the FMI 2.0 / 3.0 co-simulation wrappers that
 * turn a library built against adsreplay_function.h into an FMU.
 *
 * Value references: the parameters first (0 .. P-1), then the inputs (P .. P+M-1), then
 * the outputs (P+M .. P+M+K-1), each in the library's own order. The instance is
 * created when initialization ends, with the parameter values set before it. Every value
 * is held as a double; Integer and Boolean variables are converted on get and set.
 */
#ifndef ADSREPLAY_FMU_CORE_H
#define ADSREPLAY_FMU_CORE_H

#include "adsreplay_function.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    adsreplay_instance *inst;
    int np, ni, no;
    double *values; /* np + ni + no */
    char message[600];
} adsreplay_fmu_core;

static int core_init(adsreplay_fmu_core *c) {
    c->np = adsreplay_parameter_count();
    c->ni = adsreplay_input_count();
    c->no = adsreplay_output_count();
    c->values = calloc((size_t)(c->np + c->ni + c->no) + 1, sizeof(double));
    if (!c->values) return -1;
    for (int i = 0; i < c->np; i++) c->values[i] = adsreplay_parameter_default(i);
    return 0;
}

static void core_release(adsreplay_fmu_core *c) {
    if (c->inst) adsreplay_free(c->inst);
    c->inst = NULL;
}

static void core_reset(adsreplay_fmu_core *c) {
    core_release(c);
    for (int i = 0; i < c->np; i++) c->values[i] = adsreplay_parameter_default(i);
}

/* Create the instance from the parameter values; on failure c->message says why. */
static int core_create(adsreplay_fmu_core *c) {
    size_t size = 64 + (size_t)c->np * 200, n = 1;
    char *json = malloc(size);
    if (!json) return -1;
    json[0] = '{';
    for (int i = 0; i < c->np; i++)
        n += (size_t)snprintf(json + n, size - n, "%s\"%s\": %.17g", i ? ", " : "",
                              adsreplay_parameter_name(i), c->values[i]);
    snprintf(json + n, size - n, "}");
    core_release(c);
    c->inst = adsreplay_create(json);
    free(json);
    if (!c->inst) {
        snprintf(c->message, sizeof c->message, "%s", adsreplay_last_error(NULL));
        return -1;
    }
    return 0;
}

static int core_step(adsreplay_fmu_core *c, double t) {
    if (!c->inst) {
        snprintf(c->message, sizeof c->message, "doStep before initialization");
        return -1;
    }
    int status = adsreplay_step(c->inst, t, c->values + c->np, c->values + c->np + c->ni);
    if (status) snprintf(c->message, sizeof c->message, "%s", adsreplay_last_error(c->inst));
    return status;
}

static int core_get(const adsreplay_fmu_core *c, const unsigned int vr[], size_t n, double *out) {
    for (size_t i = 0; i < n; i++) {
        if (vr[i] >= (unsigned int)(c->np + c->ni + c->no)) return -1;
        out[i] = c->values[vr[i]];
    }
    return 0;
}

static int core_set(adsreplay_fmu_core *c, const unsigned int vr[], size_t n, const double *in) {
    for (size_t i = 0; i < n; i++) {
        if (vr[i] >= (unsigned int)(c->np + c->ni)) return -1; /* outputs are read-only */
        c->values[vr[i]] = in[i];
    }
    return 0;
}

#endif /* ADSREPLAY_FMU_CORE_H */
