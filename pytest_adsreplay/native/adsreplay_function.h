/*
 * adsreplay_function.h - the C ABI of pytest-adsreplay for a function under test.
 *
 * A shared library (.so, .dylib, .dll) that exports these symbols can be given to
 * --aeb-function / adsreplay_function directly. The ABI is name-based: the library
 * lists its inputs and outputs by name, and the plugin binds them to canonical signals
 * (ego_speed, target_distance, ...) by name or through the binding file, so a library
 * built against an older list of canonical signals keeps working.
 *
 * Timing: cycle k sets the inputs at t_k, calls step, and the outputs written by that
 * call are the outputs of cycle k (stored at t_k).
 *
 * Values are doubles. An input whose canonical signal is absent from a recording is
 * NaN. Outputs named "aeb_decel" (m/s^2 >= 0) and "fcw" (0/1) are the canonical
 * outputs; every other output is kept as an extra output signal.
 *
 * Object lists: an input named obj_dx[0] ... obj_dx[count-1] (any field: obj_dx, obj_dy,
 * obj_vx, obj_vy, obj_ax, obj_valid, obj_id, obj_class) is that slot of the recording's
 * object list; NaN where a slot is empty, and every slot is NaN in a recording without
 * a list. Own names bind in the binding file: RadarDx = "obj_dx" binds RadarDx[0] ...
 * RadarDx[n-1], Radar_dx_3 = "obj_dx[3]" one slot; index_base = 1 in [inputs] when the
 * names count from [1]. A library must take exactly the list's count slots of each
 * field it reads (the channel map's [objects] count): another number is a usage error.
 *
 * Print this file with:  adsreplay function --header
 */
#ifndef ADSREPLAY_FUNCTION_H
#define ADSREPLAY_FUNCTION_H

#include <stddef.h>

#define ADSREPLAY_ABI_VERSION 1

#if defined(_WIN32)
#define ADSREPLAY_EXPORT __declspec(dllexport)
#else
#define ADSREPLAY_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* One instance of the function: all of its state. Opaque to the plugin. */
typedef struct adsreplay_instance adsreplay_instance;

/* ---- required --------------------------------------------------------------------- */

/* Return ADSREPLAY_ABI_VERSION of the header the library was built against. */
ADSREPLAY_EXPORT int adsreplay_abi_version(void);

/* Inputs and outputs, in the order of the arrays passed to step: count and names
 * (static strings, valid as long as the library is loaded). */
ADSREPLAY_EXPORT int adsreplay_input_count(void);
ADSREPLAY_EXPORT const char *adsreplay_input_name(int index);
ADSREPLAY_EXPORT int adsreplay_output_count(void);
ADSREPLAY_EXPORT const char *adsreplay_output_name(int index);

/* Create an instance. params_json is a flat JSON object of parameter values by name,
 * e.g. {"brake_ttc": 1.6, "ctrl.gain": 2} (nested TOML tables arrive flattened with
 * '.'); "{}" means defaults. Return NULL on failure; adsreplay_last_error(NULL) then
 * says why. */
ADSREPLAY_EXPORT adsreplay_instance *adsreplay_create(const char *params_json);

/* Return to the initial state; called before each recording. 0 = ok. */
ADSREPLAY_EXPORT int adsreplay_reset(adsreplay_instance *instance);

/* One cycle at time t (s): inputs[input_count] in, outputs[output_count] out.
 * 0 = ok; anything else fails the recording with adsreplay_last_error(instance). */
ADSREPLAY_EXPORT int adsreplay_step(adsreplay_instance *instance, double t,
                                    const double *inputs, double *outputs);

/* Release the instance. */
ADSREPLAY_EXPORT void adsreplay_free(adsreplay_instance *instance);

/* Text of the last error of instance (NULL: of the last failed adsreplay_create);
 * "" when there was none. Valid until the next call into the library. */
ADSREPLAY_EXPORT const char *adsreplay_last_error(const adsreplay_instance *instance);

/* ---- optional (looked up by name; leave out what you do not have) ------------------ */

/* Parameters: count, names and default values. When present, an unknown parameter
 * name is rejected by the plugin with the list of known ones before create. */
ADSREPLAY_EXPORT int adsreplay_parameter_count(void);
ADSREPLAY_EXPORT const char *adsreplay_parameter_name(int index);
ADSREPLAY_EXPORT double adsreplay_parameter_default(int index);

/* The function's own cycle time in seconds (> 0); the recording is resampled to it. */
ADSREPLAY_EXPORT double adsreplay_cycle_time(void);

/* n cycles in one call, used instead of step when present: t[n], inputs row-major
 * n x input_count, outputs row-major n x output_count. Same results as n calls of
 * step. On a non-zero status, *done is the index of the cycle that failed (the cycles
 * before it have valid outputs). */
ADSREPLAY_EXPORT int adsreplay_step_batch(adsreplay_instance *instance, size_t n,
                                          const double *t, const double *inputs,
                                          double *outputs, size_t *done);

#ifdef __cplusplus
}
#endif

#endif /* ADSREPLAY_FUNCTION_H */
