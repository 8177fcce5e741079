#ifndef EDGEKIT_HARNESS_OPS_H_
#define EDGEKIT_HARNESS_OPS_H_

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace edgekit {

typedef tflite::MicroMutableOpResolver<102> OpResolver;

// Adds every operator this build has a kernel for (see ops.cc).
TfLiteStatus RegisterOps(OpResolver& resolver);

}  // namespace edgekit

#endif  // EDGEKIT_HARNESS_OPS_H_
