// edgekit emulator harness: runs one .tflite with TFLite-Micro on a Cortex-M in QEMU (mps2).
//
// Everything goes through semihosting files in QEMU's working directory (see edgekit/emulator/run.py):
//   config.txt   in:  "model FILE BYTES", "input FILE BYTES", "arena BYTES" (0: all free PSRAM),
//                      "warmup N", "runs N", "dump 0|1", "mode run|min_arena|record|sizes"
//   result.txt   out: one fact per line (parsed by run.py; times in SysTick ticks, 40 instructions each)
//   outputs.bin  out: the model's output tensors after the last invoke, in output order
//   dump.bin     out: with "dump 1", every operator's output tensors right after that operator ran,
//                     during one extra (untimed) invoke; result.txt indexes them ("dump" lines)
//   stderr       out: "mode record": RecordingMicroAllocator's report (as the host tflite_micro prints it)
// The model and the arena live in the board's 16 MB PSRAM (EDGEKIT_PSRAM_BASE).
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "ops.h"
#include "profiler.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_allocation_info.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/recording_micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifndef EDGEKIT_PSRAM_BASE
#error "EDGEKIT_PSRAM_BASE must name the board's PSRAM base address"
#endif

namespace {

const size_t kPsramBytes = 16u << 20;
const size_t kAlign = 16;  // MicroArenaBufferAlignment()

struct Config {
  char model[128] = "model.tflite";
  unsigned long model_bytes = 0;
  char input[128] = "";
  unsigned long input_bytes = 0;
  unsigned long arena = 0;
  int warmup = 1;
  int runs = 3;
  int dump = 0;
  char mode[16] = "run";
};

// MicroInterpreter keeps its TfLiteContext protected; the dump needs it to find tensors in the arena.
class Interpreter : public tflite::MicroInterpreter {
 public:
  using tflite::MicroInterpreter::MicroInterpreter;
  TfLiteContext* mutable_context() { return const_cast<TfLiteContext*>(&context()); }
};

FILE* g_result = nullptr;
FILE* g_dump = nullptr;
unsigned long g_dump_offset = 0;

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool ReadConfig(Config* c) {
  FILE* f = fopen("config.txt", "r");
  if (f == nullptr) return false;
  char line[256];
  while (fgets(line, sizeof line, f) != nullptr) {
    char key[32];
    if (sscanf(line, "%31s", key) != 1) continue;
    if (!strcmp(key, "model")) sscanf(line, "%*s %127s %lu", c->model, &c->model_bytes);
    else if (!strcmp(key, "input")) sscanf(line, "%*s %127s %lu", c->input, &c->input_bytes);
    else if (!strcmp(key, "arena")) sscanf(line, "%*s %lu", &c->arena);
    else if (!strcmp(key, "warmup")) sscanf(line, "%*s %d", &c->warmup);
    else if (!strcmp(key, "runs")) sscanf(line, "%*s %d", &c->runs);
    else if (!strcmp(key, "dump")) sscanf(line, "%*s %d", &c->dump);
    else if (!strcmp(key, "mode")) sscanf(line, "%*s %15s", c->mode);
  }
  fclose(f);
  return true;
}

// One semihosting SYS_READ per call: a whole model in a few calls, not 1 KB stdio chunks.
bool ReadFile(const char* path, uint8_t* dst, unsigned long bytes) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  unsigned long done = 0;
  while (done < bytes) {
    int n = read(fd, dst + done, bytes - done);
    if (n <= 0) break;
    done += static_cast<unsigned long>(n);
  }
  close(fd);
  return done == bytes;
}

int Fail(const char* what) {
  if (g_result != nullptr) {
    fprintf(g_result, "error %s\n", what);
    fclose(g_result);
  }
  fprintf(stderr, "edgekit-harness: %s\n", what);
  return 1;
}

void WriteDims(FILE* f, const TfLiteIntArray* dims) {
  fprintf(f, " %d", dims == nullptr ? 0 : dims->size);
  for (int i = 0; dims != nullptr && i < dims->size; ++i) fprintf(f, " %d", dims->data[i]);
}

void DumpTensor(void*, int op, int position, int tensor, const TfLiteEvalTensor* t) {
  size_t bytes = 0;
  if (t == nullptr || t->data.data == nullptr ||
      tflite::TfLiteEvalTensorByteLength(t, &bytes) != kTfLiteOk) {
    fprintf(g_result, "dump %d %d %d missing\n", op, position, tensor);
    return;
  }
  fwrite(t->data.data, 1, bytes, g_dump);
  fprintf(g_result, "dump %d %d %d %d %lu %lu", op, position, tensor, static_cast<int>(t->type), g_dump_offset,
          static_cast<unsigned long>(bytes));
  WriteDims(g_result, t->dims);
  fputc('\n', g_result);
  g_dump_offset += bytes;
}

bool SetInputs(Interpreter& interp, const uint8_t* data, unsigned long bytes) {
  unsigned long offset = 0;
  for (size_t i = 0; i < interp.inputs_size(); ++i) {
    TfLiteTensor* t = interp.input(i);
    if (offset + t->bytes > bytes) return false;
    memcpy(t->data.raw, data + offset, t->bytes);
    offset += t->bytes;
  }
  return offset == bytes;
}

void WriteOutputs(Interpreter& interp) {
  FILE* f = fopen("outputs.bin", "wb");
  for (size_t i = 0; i < interp.outputs_size(); ++i) {
    TfLiteTensor* t = interp.output(i);
    fwrite(t->data.raw, 1, t->bytes, f);
    fprintf(g_result, "output %u %d %lu", static_cast<unsigned>(i), static_cast<int>(t->type),
            static_cast<unsigned long>(t->bytes));
    WriteDims(g_result, t->dims);
    fputc('\n', g_result);
  }
  fclose(f);
}

int Run(const Config& cfg, const tflite::Model* model, const edgekit::OpResolver& resolver, uint8_t* arena,
        size_t arena_size, const uint8_t* input) {
  static edgekit::OpProfiler profiler;
  Interpreter interp(model, resolver, arena, arena_size, nullptr, &profiler);
  if (interp.AllocateTensors() != kTfLiteOk) {
    fprintf(g_result, "alloc fail\n");
    return 0;
  }
  fprintf(g_result, "alloc ok\narena_used %lu\n", static_cast<unsigned long>(interp.arena_used_bytes()));
  const tflite::SubGraph* subgraph = model->subgraphs()->Get(0);
  const int n_ops = subgraph->operators() ? static_cast<int>(subgraph->operators()->size()) : 0;
  fprintf(g_result, "operators %d\n", n_ops);
  uint64_t* op_ticks = static_cast<uint64_t*>(calloc(n_ops > 0 ? n_ops : 1, sizeof(uint64_t)));
  for (int r = 0; r < cfg.warmup + cfg.runs; ++r) {
    const bool timed = r >= cfg.warmup;
    // the planner reuses the input tensors' memory once they are consumed: set them before every invoke
    if (input != nullptr && !SetInputs(interp, input, cfg.input_bytes)) return Fail("input size mismatch");
    profiler.Start(timed ? op_ticks : nullptr, n_ops);
    const uint64_t t0 = edgekit_ticks();
    const TfLiteStatus status = interp.Invoke();
    const uint64_t t1 = edgekit_ticks();
    if (status != kTfLiteOk) return Fail("invoke failed");
    fprintf(g_result, "%s %d %llu\n", timed ? "run" : "warmup", timed ? r - cfg.warmup : r,
            static_cast<unsigned long long>(t1 - t0));
    for (int i = 0; timed && i < profiler.count() && i < n_ops; ++i) {
      fprintf(g_result, "opticks %d %d %llu\n", r - cfg.warmup, i, static_cast<unsigned long long>(op_ticks[i]));
    }
  }
  for (int i = 0; i < profiler.count() && i < n_ops; ++i) fprintf(g_result, "op %d %s\n", i, profiler.tag(i));
  if (cfg.dump) {
    if (input != nullptr && !SetInputs(interp, input, cfg.input_bytes)) return Fail("input size mismatch");
    g_dump = fopen("dump.bin", "wb");
    profiler.SetDump(DumpTensor, nullptr, interp.mutable_context(), subgraph);
    profiler.Start(nullptr, 0);
    const TfLiteStatus status = interp.Invoke();
    profiler.SetDump(nullptr, nullptr, nullptr, nullptr);
    fclose(g_dump);
    if (status != kTfLiteOk) return Fail("invoke failed (dump)");
  }
  WriteOutputs(interp);
  return 0;
}

// One AllocateTensors with arena_size bytes; the interpreter lives in static storage so that
// a probe sequence does not grow the stack.
bool Probe(const tflite::Model* model, const edgekit::OpResolver& resolver, uint8_t* arena, size_t size,
           size_t* used) {
  alignas(Interpreter) static uint8_t storage[sizeof(Interpreter)];
  Interpreter* interp = new (storage) Interpreter(model, resolver, arena, size);
  const bool ok = interp->AllocateTensors() == kTfLiteOk;
  *used = ok ? interp->arena_used_bytes() : 0;
  interp->~Interpreter();
  fprintf(g_result, "probe %lu %s\n", static_cast<unsigned long>(size), ok ? "ok" : "fail");
  fflush(g_result);  // a probe that crashes QEMU still leaves the ones before it
  return ok;
}

// The smallest arena (multiple of 16) that allocates: the arena used with all the memory is the
// first guess (N works and N-16 fails settles it), else a bisection between a failing and a
// working size. Same algorithm as edgekit.runtime.tflm.tflm_min_arena on the host.
int MinArena(const tflite::Model* model, const edgekit::OpResolver& resolver, uint8_t* arena, size_t avail) {
  size_t used = 0;
  if (!Probe(model, resolver, arena, avail, &used)) {
    fprintf(g_result, "min_arena none\n");
    return 0;
  }
  size_t hi = avail / kAlign * kAlign, lo = 0;
  const size_t guess = AlignUp(used);
  if (guess < hi) {
    size_t dummy;
    if (Probe(model, resolver, arena, guess, &dummy)) {
      hi = guess;
      lo = guess - kAlign;
      if (Probe(model, resolver, arena, lo, &dummy)) {  // the guess was not the minimum: search below it
        hi = lo;
        lo = 0;
      }
    } else {
      lo = guess;
    }
  }
  while (hi - lo > kAlign) {
    size_t mid = (lo + hi) / 2 / kAlign * kAlign, dummy;
    if (Probe(model, resolver, arena, mid, &dummy)) hi = mid;
    else lo = mid;
  }
  fprintf(g_result, "min_arena %lu\n", static_cast<unsigned long>(hi));
  return 0;
}

// RecordingMicroAllocator's report for this build (the same report the host's tflite_micro prints):
// per-category tail allocations with 32-bit struct sizes and this build's kernels.
int Record(const tflite::Model* model, const edgekit::OpResolver& resolver, uint8_t* arena, size_t size) {
  tflite::RecordingMicroInterpreter interp(model, resolver, arena, size);
  if (interp.AllocateTensors() != kTfLiteOk) {
    fprintf(g_result, "alloc fail\n");
    return 0;
  }
  fprintf(g_result, "alloc ok\narena_used %lu\n", static_cast<unsigned long>(interp.arena_used_bytes()));
  interp.GetMicroAllocator().PrintAllocations();
  fflush(stderr);
  return 0;
}

// sizeof/alignof of the structs TFLite-Micro allocates in the arena, as this build compiles them
// (the 32-bit numbers of edgekit/analysis/tflm_cortex_m.py are checked against these).
int Sizes() {
#define EDGEKIT_SIZE(T) fprintf(g_result, "sizeof %s %u %u\n", #T, static_cast<unsigned>(sizeof(T)), \
                                static_cast<unsigned>(alignof(T)))
  EDGEKIT_SIZE(tflite::SingleArenaBufferAllocator);
  EDGEKIT_SIZE(tflite::MicroAllocator);
  EDGEKIT_SIZE(tflite::GreedyMemoryPlanner);
  EDGEKIT_SIZE(tflite::SubgraphAllocations);
  EDGEKIT_SIZE(tflite::NodeAndRegistration);
  EDGEKIT_SIZE(tflite::ScratchBufferHandle);
  EDGEKIT_SIZE(tflite::internal::ScratchBufferRequest);
  EDGEKIT_SIZE(tflite::AllocationInfo);
  EDGEKIT_SIZE(TfLiteEvalTensor);
  EDGEKIT_SIZE(TfLiteTensor);
  EDGEKIT_SIZE(TfLiteAffineQuantization);
  EDGEKIT_SIZE(TfLiteIntArray);
  EDGEKIT_SIZE(TfLiteNode);
  EDGEKIT_SIZE(void*);
#undef EDGEKIT_SIZE
  fprintf(g_result, "planner_per_buffer %u\n",
          static_cast<unsigned>(tflite::GreedyMemoryPlanner::per_buffer_size()));
  return 0;
}

}  // namespace

int main() {
  g_result = fopen("result.txt", "w");
  if (g_result == nullptr) return Fail("cannot write result.txt");
  fprintf(g_result, "edgekit-harness 1\n");
  Config cfg;
  if (!ReadConfig(&cfg)) return Fail("cannot read config.txt");
  if (!strcmp(cfg.mode, "sizes")) {
    Sizes();
    fprintf(g_result, "done\n");
    fclose(g_result);
    return 0;
  }
  uint8_t* const psram = reinterpret_cast<uint8_t*>(EDGEKIT_PSRAM_BASE);
  uint8_t* const psram_end = psram + kPsramBytes;
  if (cfg.model_bytes == 0 || cfg.model_bytes + cfg.input_bytes + kAlign * 2 > kPsramBytes) {
    return Fail("model and inputs do not fit in the board's 16 MB PSRAM");
  }
  uint8_t* const model_buf = psram;
  if (!ReadFile(cfg.model, model_buf, cfg.model_bytes)) return Fail("cannot read the model");
  uint8_t* input = nullptr;
  uint8_t* free_mem = psram + AlignUp(cfg.model_bytes);
  if (cfg.input_bytes > 0) {
    input = free_mem;
    if (!ReadFile(cfg.input, input, cfg.input_bytes)) return Fail("cannot read the inputs");
    free_mem += AlignUp(cfg.input_bytes);
  }
  const size_t avail = static_cast<size_t>(psram_end - free_mem);
  fprintf(g_result, "arena_available %lu\n", static_cast<unsigned long>(avail));

  const tflite::Model* model = tflite::GetModel(model_buf);
  if (model->version() != TFLITE_SCHEMA_VERSION) return Fail("unsupported schema version");
  static edgekit::OpResolver resolver;
  if (edgekit::RegisterOps(resolver) != kTfLiteOk) return Fail("op registration failed");

  int rc;
  if (!strcmp(cfg.mode, "min_arena")) {
    rc = MinArena(model, resolver, free_mem, avail);
  } else if (!strcmp(cfg.mode, "record")) {
    rc = Record(model, resolver, free_mem, cfg.arena ? cfg.arena : avail);
  } else {
    const size_t arena_size = cfg.arena ? cfg.arena : avail;
    if (arena_size > avail) return Fail("arena larger than the board's free PSRAM");
    fprintf(g_result, "arena_size %lu\n", static_cast<unsigned long>(arena_size));
    rc = Run(cfg, model, resolver, free_mem, arena_size, input);
  }
  if (rc == 0) {
    fprintf(g_result, "done\n");
    fclose(g_result);
  }
  return rc;
}
