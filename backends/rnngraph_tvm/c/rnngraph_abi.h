/* rnngraph_abi.h: what a kernel built by TVM for a CPU expects of its caller, declared
 * here so that a model runs without TVM's runtime (see rnngraph_run.h).
 *
 * A kernel is one function, `int32_t __tvm_ffi_<name>(void *self, const TVMFFIAny *args,
 * int32_t num_args, TVMFFIAny *result)`, taking each buffer as a DLPack tensor (by
 * pointer, type index 7) inside a 16-byte tagged value; it returns 0, or -1 after
 * reporting a failed check of its arguments through TVMFFIErrorSetRaisedFromCStrParts.
 * The layouts are DLPack's (dlpack.h) and tvm-ffi's (tvm/ffi/c_api.h) C ABI; kernels
 * only read these fields.
 *
 * Generated C kernels (device "c") include this file in place of TVM's headers.
 */
#ifndef RNNGRAPH_ABI_H
#define RNNGRAPH_ABI_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef TVM_DLL
#define TVM_DLL
#endif

typedef struct {
  int32_t device_type; /* 1: CPU */
  int32_t device_id;
} DLDevice;

typedef struct {
  uint8_t code; /* 0: int, 1: uint, 2: float, 6: bool */
  uint8_t bits;
  uint16_t lanes;
} DLDataType;

typedef struct {
  void *data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t *shape;
  int64_t *strides; /* NULL: compact, row-major */
  uint64_t byte_offset;
} DLTensor;

typedef struct {
  int32_t type_index; /* 0: none, 7: a DLTensor pointer */
  uint32_t zero_padding;
  union {
    int64_t v_int64;
    double v_float64;
    void *v_ptr;
  };
} TVMFFIAny;

#define RNNGRAPH_DLTENSOR_PTR 7

/* How a kernel reports a failed check: defined (weakly) by each model's .c file. */
void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **message_parts,
                                       int32_t num_parts);

#endif /* RNNGRAPH_ABI_H */
