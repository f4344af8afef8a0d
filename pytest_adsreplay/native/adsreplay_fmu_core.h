/*
 * adsreplay_fmu_core.h - shared state of the FMI 2.0 / 3.0 co-simulation wrappers that
 * turn a library built against adsreplay_function.h into an FMU.
 *
 * Values: the parameters first (0 .. P-1), then the inputs (P .. P+M-1), then the
 * outputs (P+M .. P+M+K-1), each in the library's own order. Every value is held as a
 * double; Integer and Boolean variables are converted on get and set.
 *
 * Variables: FMI 2 has one variable per value, its value reference is the value's
 * index. FMI 3 (core_init with group_arrays) turns each run of inputs named
 * x[k], x[k+1], ... x[k+n-1] (consecutive in the library's order, consecutive indices)
 * into one array variable x of n values; the value references count the variables in
 * the same order (parameters, inputs with each run as one variable, outputs), which is
 * how the modelDescription.xml generator of the tests numbers them.
 *
 * The instance is created when initialization ends, with the parameter values set
 * before it.
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
    double *values;  /* np + ni + no */
    double *scratch; /* as many: converted Integer and Boolean values */
    int nvars, nset; /* variables; the first nset (parameters and inputs) can be set */
    int *first, *size; /* per variable: its first value and its number of values */
    char message[600];
} adsreplay_fmu_core;

/* The array element name "x[12]": length of "x" (the array's name) and 12, else -1. */
static int core_element(const char *name, long *index) {
    size_t n = strlen(name);
    if (n < 4 || name[n - 1] != ']') return -1;
    size_t open = n - 1;
    while (open > 0 && name[open - 1] >= '0' && name[open - 1] <= '9') open--;
    if (open == n - 1 || open < 2 || name[open - 1] != '[') return -1;
    *index = strtol(name + open, NULL, 10);
    return (int)(open - 1);
}

/* Does input i continue the array of input i - 1 (same name, next index)? */
static int core_continues(int i) {
    if (i <= 0) return 0;
    const char *a = adsreplay_input_name(i - 1), *b = adsreplay_input_name(i);
    long ia, ib;
    int la = core_element(a, &ia), lb = core_element(b, &ib);
    return la > 0 && la == lb && strncmp(a, b, (size_t)la) == 0 && ib == ia + 1;
}

static void core_free(adsreplay_fmu_core *c) {
    free(c->values);
    free(c->scratch);
    free(c->first);
    free(c->size);
}

static int core_init(adsreplay_fmu_core *c, int group_arrays) {
    c->np = adsreplay_parameter_count();
    c->ni = adsreplay_input_count();
    c->no = adsreplay_output_count();
    size_t total = (size_t)(c->np + c->ni + c->no) + 1;
    c->values = calloc(total, sizeof(double));
    c->scratch = calloc(total, sizeof(double));
    c->first = calloc(total, sizeof(int));
    c->size = calloc(total, sizeof(int));
    if (!c->values || !c->scratch || !c->first || !c->size) return -1;
    for (int i = 0; i < c->np; i++) c->values[i] = adsreplay_parameter_default(i);
    int v = 0;
    for (int i = 0; i < c->np + c->ni + c->no; i++) {
        int input = i >= c->np && i < c->np + c->ni;
        if (group_arrays && input && core_continues(i - c->np)) {
            c->size[v - 1]++;
        } else {
            c->first[v] = i;
            c->size[v] = 1;
            v++;
        }
        if (i < c->np + c->ni) c->nset = v;
    }
    c->nvars = v;
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

/* The values of variables vr[0 .. n-1] into out[0 .. nv-1] (an array variable gives
 * all of its values); -1 for an unknown variable or when nv is not their number. */
static int core_get(const adsreplay_fmu_core *c, const unsigned int vr[], size_t n, double *out,
                    size_t nv) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] >= (unsigned int)c->nvars) return -1;
        size_t size = (size_t)c->size[vr[i]];
        if (k + size > nv) return -1;
        memcpy(out + k, c->values + c->first[vr[i]], size * sizeof(double));
        k += size;
    }
    return k == nv ? 0 : -1;
}

/* Set variables vr[0 .. n-1] from in[0 .. nv-1]; outputs are read-only. */
static int core_set(adsreplay_fmu_core *c, const unsigned int vr[], size_t n, const double *in,
                    size_t nv) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (vr[i] >= (unsigned int)c->nset) return -1;
        size_t size = (size_t)c->size[vr[i]];
        if (k + size > nv) return -1;
        memcpy(c->values + c->first[vr[i]], in + k, size * sizeof(double));
        k += size;
    }
    return k == nv ? 0 : -1;
}

#endif /* ADSREPLAY_FMU_CORE_H */
