"""Stand-ins for TFLite-Micro's headers declaring the real signatures (MicroInterpreter's
constructor, input/output/Invoke, GetModel, MicroPrintf, InitializeTarget, MicroMutableOpResolver's
Add* methods), for ``g++ -fsyntax-only`` on the generated main.cc without TFLite-Micro's sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

STUBS = {
    "tensorflow/lite/c/common.h": """#pragma once
#include <cstddef>
#include <cstdint>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt8 = 9 } TfLiteType;
typedef struct { int size; int data[4]; } TfLiteIntArray;
typedef struct { float scale; int32_t zero_point; } TfLiteQuantizationParams;
typedef union { int8_t* int8; float* f; uint8_t* uint8; void* data; } TfLitePtrUnion;
typedef struct { TfLiteType type; TfLitePtrUnion data; TfLiteIntArray* dims; TfLiteQuantizationParams params;
                 size_t bytes; } TfLiteTensor;
""",
    "tensorflow/lite/schema/schema_generated.h": """#pragma once
#include <cstdint>
namespace tflite {
struct Model { uint32_t version() const { return 3; } };
inline const Model* GetModel(const void* buf) { return static_cast<const Model*>(buf); }
}  // namespace tflite
""",
    "tensorflow/lite/micro/micro_op_resolver.h": """#pragma once
#include "tensorflow/lite/c/common.h"
namespace tflite { class MicroOpResolver { public: virtual ~MicroOpResolver() {} }; }
""",
    "tensorflow/lite/micro/micro_interpreter.h": """#pragma once
#include <cstddef>
#include <cstdint>
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#define TFLITE_SCHEMA_VERSION (3)
namespace tflite {
class MicroResourceVariables; class MicroProfilerInterface;
class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver, uint8_t* tensor_arena,
                   size_t tensor_arena_size, MicroResourceVariables* resource_variables = nullptr,
                   MicroProfilerInterface* profiler = nullptr, bool preserve_all_tensors = false);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
  size_t arena_used_bytes() const;
};
}  // namespace tflite
""",
    "tensorflow/lite/micro/micro_log.h": "#pragma once\nvoid MicroPrintf(const char* format, ...);\n",
    "tensorflow/lite/micro/system_setup.h": "#pragma once\nnamespace tflite { void InitializeTarget(); }\n",
}


def resolver_stub() -> str:
    from edgekit.export.op_resolver import TFLM_ADD_METHODS

    methods = "\n".join(f"  TfLiteStatus {m}() {{ return kTfLiteOk; }}" for m in sorted(set(TFLM_ADD_METHODS.values())))
    return ('#pragma once\n#include "tensorflow/lite/micro/micro_op_resolver.h"\nnamespace tflite {\n'
            "template <unsigned int tOpCount>\nclass MicroMutableOpResolver : public MicroOpResolver {\n public:\n"
            f"{methods}\n}};\n}}  // namespace tflite\n")



def write_stubs(inc: Path, *, resolver: str | None = None) -> Path:
    """The stub headers under ``inc`` (``resolver``: the MicroMutableOpResolver header, default all Add* methods)."""
    headers = {**STUBS, "tensorflow/lite/micro/micro_mutable_op_resolver.h": resolver or resolver_stub()}
    for rel, text in headers.items():
        (inc / rel).parent.mkdir(parents=True, exist_ok=True)
        (inc / rel).write_text(text)
    return inc


def gpp_syntax(src: Path, *includes: Path, werror: bool = True) -> subprocess.CompletedProcess:
    """``g++ -std=c++17 -fsyntax-only [-Wall -Werror]`` on ``src``."""
    flags = ["-Wall", "-Werror"] if werror else []
    return subprocess.run(["g++", "-std=c++17", "-fsyntax-only", *flags, *(f"-I{i}" for i in includes), str(src)],
                          capture_output=True, text=True, timeout=120)


HAVE_GPP = shutil.which("g++") is not None
