// A tflite::MicroProfilerInterface that times every top-level operator with the SysTick clock of
// startup.c and, when asked, copies each operator's output tensors out right after it ran.
//
// TFLite-Micro wraps every kernel invoke in a ScopedMicroProfiler (micro_interpreter_graph.cc
// InvokeSubgraph): BeginEvent before registration->invoke, EndEvent after it and after
// ResetTempAllocations. Operators of nested subgraphs (IF/WHILE bodies) run inside their parent's
// event; only depth-0 events (subgraph 0) are recorded, so event k is operator k of subgraph 0.
#ifndef EDGEKIT_HARNESS_PROFILER_H_
#define EDGEKIT_HARNESS_PROFILER_H_

#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern "C" uint64_t edgekit_ticks(void);

namespace edgekit {

// Called with (operator index, output position, tensor index, tensor) right after an operator ran.
typedef void (*DumpFn)(void* user, int op, int position, int tensor, const TfLiteEvalTensor* t);

class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  static const int kMaxOps = 4096;

  void Start(uint64_t* op_ticks, int max_ops) {
    op_ticks_ = op_ticks;
    max_ops_ = max_ops < kMaxOps ? max_ops : kMaxOps;
    count_ = 0;
    depth_ = 0;
  }
  int count() const { return count_; }
  const char* tag(int i) const { return i < kMaxOps ? tags_[i] : "?"; }

  // Dumping needs the interpreter's context (to find a tensor's data in the planned arena) and
  // the model (which tensors each operator writes). dump == nullptr: timing only.
  void SetDump(DumpFn dump, void* user, TfLiteContext* context, const tflite::SubGraph* subgraph) {
    dump_ = dump;
    dump_user_ = user;
    context_ = context;
    subgraph_ = subgraph;
  }

  uint32_t BeginEvent(const char* tag) override {
    uint32_t handle = static_cast<uint32_t>(depth_);
    if (depth_ == 0 && count_ < kMaxOps) tags_[count_] = tag;
    ++depth_;
    if (depth_ == 1) begin_ = edgekit_ticks();
    return handle;
  }

  void EndEvent(uint32_t handle) override {
    const uint64_t end = edgekit_ticks();
    depth_ = static_cast<int>(handle);
    if (depth_ != 0) return;
    const int op = count_++;
    if (op_ticks_ != nullptr && op < max_ops_) op_ticks_[op] = end - begin_;
    if (dump_ != nullptr) DumpOutputs(op);
  }

 private:
  void DumpOutputs(int op) {
    const auto* ops = subgraph_->operators();
    if (ops == nullptr || op >= static_cast<int>(ops->size())) return;
    const auto* outs = ops->Get(op)->outputs();
    if (outs == nullptr) return;
    for (int k = 0; k < static_cast<int>(outs->size()); ++k) {
      const int tensor = outs->Get(k);
      if (tensor < 0) continue;
      dump_(dump_user_, op, k, tensor, context_->GetEvalTensor(context_, tensor));
    }
  }

  uint64_t* op_ticks_ = nullptr;
  int max_ops_ = 0;
  int count_ = 0;
  int depth_ = 0;
  uint64_t begin_ = 0;
  const char* tags_[kMaxOps] = {};
  DumpFn dump_ = nullptr;
  void* dump_user_ = nullptr;
  TfLiteContext* context_ = nullptr;
  const tflite::SubGraph* subgraph_ = nullptr;
};

}  // namespace edgekit

#endif  // EDGEKIT_HARNESS_PROFILER_H_
