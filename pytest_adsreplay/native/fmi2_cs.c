/*
 * fmi2_cs.c - an FMI 2.0 co-simulation FMU around a library built against
 * adsreplay_function.h. Compile it together with the function's source:
 *
 *   cc -O2 -ffp-contract=off -shared -fPIC -I<fmi2 headers> -I. fmi2_cs.c ttc_aeb.c \
 *      -o binaries/linux64/<modelIdentifier>.so
 *
 * Real, Integer and Boolean variables (see adsreplay_fmu_core.h for the value references).
 */
#include "fmi2Functions.h"

#include "adsreplay_fmu_core.h"

typedef struct {
    adsreplay_fmu_core core;
    fmi2CallbackFunctions cb;
    char name[128];
} Comp;

static void log_error(Comp *m, const char *text) {
    if (m->cb.logger)
        m->cb.logger(m->cb.componentEnvironment, m->name, fmi2Error, "logStatusError", "%s",
                     text);
}

const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }
const char *fmi2GetVersion(void) { return fmi2Version; }

fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean on, size_t n, const fmi2String cat[]) {
    (void)c; (void)on; (void)n; (void)cat;
    return fmi2OK;
}

fmi2Component fmi2Instantiate(fmi2String name, fmi2Type type, fmi2String guid,
                              fmi2String resources, const fmi2CallbackFunctions *cb,
                              fmi2Boolean visible, fmi2Boolean logging) {
    (void)guid; (void)resources; (void)visible; (void)logging;
    if (type != fmi2CoSimulation) return NULL;
    Comp *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (cb) m->cb = *cb;
    snprintf(m->name, sizeof m->name, "%s", name ? name : "instance");
    if (core_init(&m->core, 0)) {
        core_free(&m->core);
        free(m);
        return NULL;
    }
    return m;
}

void fmi2FreeInstance(fmi2Component c) {
    Comp *m = c;
    if (!m) return;
    core_release(&m->core);
    core_free(&m->core);
    free(m);
}

fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean td, fmi2Real tol, fmi2Real start,
                               fmi2Boolean sd, fmi2Real stop) {
    (void)c; (void)td; (void)tol; (void)start; (void)sd; (void)stop;
    return fmi2OK;
}

fmi2Status fmi2EnterInitializationMode(fmi2Component c) { (void)c; return fmi2OK; }

fmi2Status fmi2ExitInitializationMode(fmi2Component c) {
    Comp *m = c;
    if (core_create(&m->core)) {
        log_error(m, m->core.message);
        return fmi2Error;
    }
    return fmi2OK;
}

fmi2Status fmi2Terminate(fmi2Component c) { (void)c; return fmi2OK; }

fmi2Status fmi2Reset(fmi2Component c) {
    core_reset(&((Comp *)c)->core);
    return fmi2OK;
}

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2Real v[]) {
    return core_get(&((Comp *)c)->core, vr, n, v, n) ? fmi2Error : fmi2OK;
}

fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t n,
                       const fmi2Real v[]) {
    return core_set(&((Comp *)c)->core, vr, n, v, n) ? fmi2Error : fmi2OK;
}

static fmi2Boolean terminated = fmi2False; /* fmi2Terminated of fmi2GetBooleanStatus */

fmi2Status fmi2DoStep(fmi2Component c, fmi2Real t, fmi2Real h, fmi2Boolean no_prior) {
    Comp *m = c;
    (void)h; (void)no_prior;
    int status = core_step(&m->core, t);
    if (status) {
        log_error(m, m->core.message);
#ifdef ADSREPLAY_FMU_TERMINATE_STATUS
        /* built with -DADSREPLAY_FMU_TERMINATE_STATUS=N: step status N ends the simulation */
        if (status == ADSREPLAY_FMU_TERMINATE_STATUS) {
            terminated = fmi2True;
            return fmi2Discard;
        }
#endif
        return fmi2Error;
    }
    return fmi2OK;
}

/* Integer and Boolean variables: the same values, converted (any number of them). */
fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2Integer v[]) {
    adsreplay_fmu_core *core = &((Comp *)c)->core;
    double *x = core->scratch;
    if (n > (size_t)(core->np + core->ni + core->no) || core_get(core, vr, n, x, n)) return fmi2Error;
    for (size_t i = 0; i < n; i++) v[i] = (fmi2Integer)x[i];
    return fmi2OK;
}

fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2Boolean v[]) {
    adsreplay_fmu_core *core = &((Comp *)c)->core;
    double *x = core->scratch;
    if (n > (size_t)(core->np + core->ni + core->no) || core_get(core, vr, n, x, n)) return fmi2Error;
    for (size_t i = 0; i < n; i++) v[i] = x[i] != 0.0 && x[i] == x[i] ? fmi2True : fmi2False;
    return fmi2OK;
}

fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Integer v[]) {
    adsreplay_fmu_core *core = &((Comp *)c)->core;
    double *x = core->scratch;
    if (n > (size_t)(core->np + core->ni + core->no)) return fmi2Error;
    for (size_t i = 0; i < n; i++) x[i] = (double)v[i];
    return core_set(core, vr, n, x, n) ? fmi2Error : fmi2OK;
}

fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Boolean v[]) {
    adsreplay_fmu_core *core = &((Comp *)c)->core;
    double *x = core->scratch;
    if (n > (size_t)(core->np + core->ni + core->no)) return fmi2Error;
    for (size_t i = 0; i < n; i++) x[i] = v[i] ? 1.0 : 0.0;
    return core_set(core, vr, n, x, n) ? fmi2Error : fmi2OK;
}

/* ---- not supported: every other FMI 2.0 function answers fmi2Error ------------------ */
#define UNSUPPORTED return fmi2Error
fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t n, fmi2String v[]) { (void)c; (void)vr; (void)n; (void)v; UNSUPPORTED; }
fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2String v[]) { (void)c; (void)vr; (void)n; (void)v; UNSUPPORTED; }
fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate *s) { (void)c; (void)s; UNSUPPORTED; }
fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate s) { (void)c; (void)s; UNSUPPORTED; }
fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate *s) { (void)c; (void)s; UNSUPPORTED; }
fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate s, size_t *n) { (void)c; (void)s; (void)n; UNSUPPORTED; }
fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate s, fmi2Byte b[], size_t n) { (void)c; (void)s; (void)b; (void)n; UNSUPPORTED; }
fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte b[], size_t n, fmi2FMUstate *s) { (void)c; (void)b; (void)n; (void)s; UNSUPPORTED; }
fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference u[], size_t nu, const fmi2ValueReference k[], size_t nk, const fmi2Real dk[], fmi2Real du[]) { (void)c; (void)u; (void)nu; (void)k; (void)nk; (void)dk; (void)du; UNSUPPORTED; }
fmi2Status fmi2SetRealInputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Integer o[], const fmi2Real v[]) { (void)c; (void)vr; (void)n; (void)o; (void)v; UNSUPPORTED; }
fmi2Status fmi2GetRealOutputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t n, const fmi2Integer o[], fmi2Real v[]) { (void)c; (void)vr; (void)n; (void)o; (void)v; UNSUPPORTED; }
fmi2Status fmi2CancelStep(fmi2Component c) { (void)c; UNSUPPORTED; }
fmi2Status fmi2GetStatus(fmi2Component c, const fmi2StatusKind s, fmi2Status *v) { (void)c; (void)s; (void)v; UNSUPPORTED; }
fmi2Status fmi2GetRealStatus(fmi2Component c, const fmi2StatusKind s, fmi2Real *v) { (void)c; (void)s; (void)v; UNSUPPORTED; }
fmi2Status fmi2GetIntegerStatus(fmi2Component c, const fmi2StatusKind s, fmi2Integer *v) { (void)c; (void)s; (void)v; UNSUPPORTED; }
fmi2Status fmi2GetBooleanStatus(fmi2Component c, const fmi2StatusKind s, fmi2Boolean *v) {
    (void)c;
    if (s != fmi2Terminated) UNSUPPORTED;
    *v = terminated;
    return fmi2OK;
}
fmi2Status fmi2GetStringStatus(fmi2Component c, const fmi2StatusKind s, fmi2String *v) { (void)c; (void)s; (void)v; UNSUPPORTED; }
