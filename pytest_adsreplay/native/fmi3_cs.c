/*
 * fmi3_cs.c - an FMI 3.0 co-simulation FMU around a library built against
 * adsreplay_function.h. Compile it together with the function's source:
 *
 *   cc -O2 -ffp-contract=off -shared -fPIC -I<fmi3 headers> -I. fmi3_cs.c ttc_aeb.c \
 *      -o binaries/x86_64-linux/<modelIdentifier>.so
 *
 * Float64, Int32 and Boolean variables (see adsreplay_fmu_core.h for the value
 * references); inputs named x[0] ... x[n-1] are one array variable x with a fixed
 * Dimension of n (its values in one call: nValues counts the elements); no event mode,
 * no early return, no clocks.
 */
#include "fmi3Functions.h"

#include "adsreplay_fmu_core.h"

typedef struct {
    adsreplay_fmu_core core;
    fmi3InstanceEnvironment env;
    fmi3LogMessageCallback log;
} Comp;

static void log_error(Comp *m, const char *text) {
    if (m->log) m->log(m->env, fmi3Error, "logStatusError", text);
}

const char *fmi3GetVersion(void) { return fmi3Version; }

fmi3Status fmi3SetDebugLogging(fmi3Instance c, fmi3Boolean on, size_t n, const fmi3String cat[]) {
    (void)c; (void)on; (void)n; (void)cat;
    return fmi3OK;
}

fmi3Instance fmi3InstantiateCoSimulation(
    fmi3String name, fmi3String token, fmi3String resources, fmi3Boolean visible,
    fmi3Boolean logging, fmi3Boolean event_mode, fmi3Boolean early_return,
    const fmi3ValueReference required[], size_t n_required, fmi3InstanceEnvironment env,
    fmi3LogMessageCallback log, fmi3IntermediateUpdateCallback update) {
    (void)name; (void)token; (void)resources; (void)visible; (void)logging;
    (void)required; (void)n_required; (void)update;
    if (event_mode || early_return) {
        if (log) log(env, fmi3Error, "logStatusError", "event mode and early return are not supported");
        return NULL;
    }
    Comp *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->env = env;
    m->log = log;
    if (core_init(&m->core, 1)) {
        core_free(&m->core);
        free(m);
        return NULL;
    }
    return m;
}

void fmi3FreeInstance(fmi3Instance c) {
    Comp *m = c;
    if (!m) return;
    core_release(&m->core);
    core_free(&m->core);
    free(m);
}

fmi3Status fmi3EnterInitializationMode(fmi3Instance c, fmi3Boolean td, fmi3Float64 tol,
                                       fmi3Float64 start, fmi3Boolean sd, fmi3Float64 stop) {
    (void)c; (void)td; (void)tol; (void)start; (void)sd; (void)stop;
    return fmi3OK;
}

fmi3Status fmi3ExitInitializationMode(fmi3Instance c) {
    Comp *m = c;
    if (core_create(&m->core)) {
        log_error(m, m->core.message);
        return fmi3Error;
    }
    return fmi3OK;
}

fmi3Status fmi3Terminate(fmi3Instance c) { (void)c; return fmi3OK; }

fmi3Status fmi3Reset(fmi3Instance c) {
    core_reset(&((Comp *)c)->core);
    return fmi3OK;
}

fmi3Status fmi3GetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t n,
                          fmi3Float64 v[], size_t nv) {
    return core_get(&((Comp *)c)->core, vr, n, v, nv) ? fmi3Error : fmi3OK;
}

fmi3Status fmi3SetFloat64(fmi3Instance c, const fmi3ValueReference vr[], size_t n,
                          const fmi3Float64 v[], size_t nv) {
    return core_set(&((Comp *)c)->core, vr, n, v, nv) ? fmi3Error : fmi3OK;
}

fmi3Status fmi3DoStep(fmi3Instance c, fmi3Float64 t, fmi3Float64 h, fmi3Boolean no_prior,
                      fmi3Boolean *event, fmi3Boolean *terminate, fmi3Boolean *early_return,
                      fmi3Float64 *last_time) {
    Comp *m = c;
    (void)no_prior;
    *event = fmi3False;
    *terminate = fmi3False;
    *early_return = fmi3False;
    *last_time = t + h;
    int status = core_step(&m->core, t);
    if (status) {
        log_error(m, m->core.message);
#ifdef ADSREPLAY_FMU_TERMINATE_STATUS
        /* built with -DADSREPLAY_FMU_TERMINATE_STATUS=N: step status N ends the simulation */
        if (status == ADSREPLAY_FMU_TERMINATE_STATUS) {
            *terminate = fmi3True;
            return fmi3OK;
        }
#endif
        return fmi3Error;
    }
    return fmi3OK;
}

/* Int32 and Boolean variables: the same values, converted (any number of them). */
static double *scratch(fmi3Instance c, size_t nv) {
    adsreplay_fmu_core *core = &((Comp *)c)->core;
    return nv <= (size_t)(core->np + core->ni + core->no) ? core->scratch : NULL;
}

fmi3Status fmi3GetInt32(fmi3Instance c, const fmi3ValueReference vr[], size_t n, fmi3Int32 v[],
                        size_t nv) {
    double *x = scratch(c, nv);
    if (!x || core_get(&((Comp *)c)->core, vr, n, x, nv)) return fmi3Error;
    for (size_t i = 0; i < nv; i++) v[i] = (fmi3Int32)x[i];
    return fmi3OK;
}

fmi3Status fmi3GetBoolean(fmi3Instance c, const fmi3ValueReference vr[], size_t n,
                          fmi3Boolean v[], size_t nv) {
    double *x = scratch(c, nv);
    if (!x || core_get(&((Comp *)c)->core, vr, n, x, nv)) return fmi3Error;
    for (size_t i = 0; i < nv; i++) v[i] = x[i] != 0.0 && x[i] == x[i];
    return fmi3OK;
}

fmi3Status fmi3SetInt32(fmi3Instance c, const fmi3ValueReference vr[], size_t n,
                        const fmi3Int32 v[], size_t nv) {
    double *x = scratch(c, nv);
    if (!x) return fmi3Error;
    for (size_t i = 0; i < nv; i++) x[i] = (double)v[i];
    return core_set(&((Comp *)c)->core, vr, n, x, nv) ? fmi3Error : fmi3OK;
}

fmi3Status fmi3SetBoolean(fmi3Instance c, const fmi3ValueReference vr[], size_t n,
                          const fmi3Boolean v[], size_t nv) {
    double *x = scratch(c, nv);
    if (!x) return fmi3Error;
    for (size_t i = 0; i < nv; i++) x[i] = v[i] ? 1.0 : 0.0;
    return core_set(&((Comp *)c)->core, vr, n, x, nv) ? fmi3Error : fmi3OK;
}

/* ---- not supported: every other FMI 3.0 function answers fmi3Error ------------------ */
/* (generated from fmi3FunctionTypes.h; the parameters are unused) */
fmi3Instance fmi3InstantiateModelExchange(fmi3String instanceName, fmi3String instantiationToken, fmi3String resourcePath, fmi3Boolean visible, fmi3Boolean loggingOn, fmi3InstanceEnvironment instanceEnvironment, fmi3LogMessageCallback logMessage) { return NULL; }
fmi3Instance fmi3InstantiateScheduledExecution(fmi3String instanceName, fmi3String instantiationToken, fmi3String resourcePath, fmi3Boolean visible, fmi3Boolean loggingOn, fmi3InstanceEnvironment instanceEnvironment, fmi3LogMessageCallback logMessage, fmi3ClockUpdateCallback clockUpdate, fmi3LockPreemptionCallback lockPreemption, fmi3UnlockPreemptionCallback unlockPreemption) { return NULL; }
fmi3Status fmi3EnterEventMode(fmi3Instance instance) { return fmi3Error; }
fmi3Status fmi3GetFloat32(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3Float32 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetInt8(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3Int8 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetUInt8(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3UInt8 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetInt16(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3Int16 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetUInt16(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3UInt16 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetUInt32(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3UInt32 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetInt64(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3Int64 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetUInt64(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3UInt64 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetString(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3String values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetBinary(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, size_t valueSizes[], fmi3Binary values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3GetClock(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3Clock values[]) { return fmi3Error; }
fmi3Status fmi3SetFloat32(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3Float32 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetInt8(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3Int8 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetUInt8(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3UInt8 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetInt16(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3Int16 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetUInt16(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3UInt16 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetUInt32(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3UInt32 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetInt64(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3Int64 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetUInt64(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3UInt64 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetString(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3String values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetBinary(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const size_t valueSizes[], const fmi3Binary values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3SetClock(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3Clock values[]) { return fmi3Error; }
fmi3Status fmi3GetNumberOfVariableDependencies(fmi3Instance instance, fmi3ValueReference valueReference, size_t* nDependencies) { return fmi3Error; }
fmi3Status fmi3GetVariableDependencies(fmi3Instance instance, fmi3ValueReference dependent, size_t elementIndicesOfDependent[], fmi3ValueReference independents[], size_t elementIndicesOfIndependents[], fmi3DependencyKind dependencyKinds[], size_t nDependencies) { return fmi3Error; }
fmi3Status fmi3GetFMUState(fmi3Instance instance, fmi3FMUState* FMUState) { return fmi3Error; }
fmi3Status fmi3SetFMUState(fmi3Instance instance, fmi3FMUState FMUState) { return fmi3Error; }
fmi3Status fmi3FreeFMUState(fmi3Instance instance, fmi3FMUState* FMUState) { return fmi3Error; }
fmi3Status fmi3SerializedFMUStateSize(fmi3Instance instance, fmi3FMUState FMUState, size_t* size) { return fmi3Error; }
fmi3Status fmi3SerializeFMUState(fmi3Instance instance, fmi3FMUState FMUState, fmi3Byte serializedState[], size_t size) { return fmi3Error; }
fmi3Status fmi3DeserializeFMUState(fmi3Instance instance, const fmi3Byte serializedState[], size_t size, fmi3FMUState* FMUState) { return fmi3Error; }
fmi3Status fmi3GetDirectionalDerivative(fmi3Instance instance, const fmi3ValueReference unknowns[], size_t nUnknowns, const fmi3ValueReference knowns[], size_t nKnowns, const fmi3Float64 seed[], size_t nSeed, fmi3Float64 sensitivity[], size_t nSensitivity) { return fmi3Error; }
fmi3Status fmi3GetAdjointDerivative(fmi3Instance instance, const fmi3ValueReference unknowns[], size_t nUnknowns, const fmi3ValueReference knowns[], size_t nKnowns, const fmi3Float64 seed[], size_t nSeed, fmi3Float64 sensitivity[], size_t nSensitivity) { return fmi3Error; }
fmi3Status fmi3EnterConfigurationMode(fmi3Instance instance) { return fmi3Error; }
fmi3Status fmi3ExitConfigurationMode(fmi3Instance instance) { return fmi3Error; }
fmi3Status fmi3GetIntervalDecimal(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3Float64 intervals[], fmi3IntervalQualifier qualifiers[]) { return fmi3Error; }
fmi3Status fmi3GetIntervalFraction(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3UInt64 counters[], fmi3UInt64 resolutions[], fmi3IntervalQualifier qualifiers[]) { return fmi3Error; }
fmi3Status fmi3GetShiftDecimal(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3Float64 shifts[]) { return fmi3Error; }
fmi3Status fmi3GetShiftFraction(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, fmi3UInt64 counters[], fmi3UInt64 resolutions[]) { return fmi3Error; }
fmi3Status fmi3SetIntervalDecimal(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3Float64 intervals[]) { return fmi3Error; }
fmi3Status fmi3SetIntervalFraction(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3UInt64 counters[], const fmi3UInt64 resolutions[]) { return fmi3Error; }
fmi3Status fmi3SetShiftDecimal(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3Float64 shifts[]) { return fmi3Error; }
fmi3Status fmi3SetShiftFraction(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3UInt64 counters[], const fmi3UInt64 resolutions[]) { return fmi3Error; }
fmi3Status fmi3EvaluateDiscreteStates(fmi3Instance instance) { return fmi3Error; }
fmi3Status fmi3UpdateDiscreteStates(fmi3Instance instance, fmi3Boolean* discreteStatesNeedUpdate, fmi3Boolean* terminateSimulation, fmi3Boolean* nominalsOfContinuousStatesChanged, fmi3Boolean* valuesOfContinuousStatesChanged, fmi3Boolean* nextEventTimeDefined, fmi3Float64* nextEventTime) { return fmi3Error; }
fmi3Status fmi3EnterContinuousTimeMode(fmi3Instance instance) { return fmi3Error; }
fmi3Status fmi3CompletedIntegratorStep(fmi3Instance instance, fmi3Boolean noSetFMUStatePriorToCurrentPoint, fmi3Boolean* enterEventMode, fmi3Boolean* terminateSimulation) { return fmi3Error; }
fmi3Status fmi3SetTime(fmi3Instance instance, fmi3Float64 time) { return fmi3Error; }
fmi3Status fmi3SetContinuousStates(fmi3Instance instance, const fmi3Float64 continuousStates[], size_t nContinuousStates) { return fmi3Error; }
fmi3Status fmi3GetContinuousStateDerivatives(fmi3Instance instance, fmi3Float64 derivatives[], size_t nContinuousStates) { return fmi3Error; }
fmi3Status fmi3GetEventIndicators(fmi3Instance instance, fmi3Float64 eventIndicators[], size_t nEventIndicators) { return fmi3Error; }
fmi3Status fmi3GetContinuousStates(fmi3Instance instance, fmi3Float64 continuousStates[], size_t nContinuousStates) { return fmi3Error; }
fmi3Status fmi3GetNominalsOfContinuousStates(fmi3Instance instance, fmi3Float64 nominals[], size_t nContinuousStates) { return fmi3Error; }
fmi3Status fmi3GetNumberOfEventIndicators(fmi3Instance instance, size_t* nEventIndicators) { return fmi3Error; }
fmi3Status fmi3GetNumberOfContinuousStates(fmi3Instance instance, size_t* nContinuousStates) { return fmi3Error; }
fmi3Status fmi3EnterStepMode(fmi3Instance instance) { return fmi3Error; }
fmi3Status fmi3GetOutputDerivatives(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences, const fmi3Int32 orders[], fmi3Float64 values[], size_t nValues) { return fmi3Error; }
fmi3Status fmi3ActivateModelPartition(fmi3Instance instance, fmi3ValueReference clockReference, fmi3Float64 activationTime) { return fmi3Error; }
