// chainrule for programs that embed it: one include for building, running and training
// graphs from C++ (docs/cpp-api.md).
//
//     #include <chainrule/chainrule.hpp>
//
// Every room's public headers, in the rooms' order (docs/architecture.md). Left out are
// the headers only the library's own hot loops use (core/simd.hpp, core/text.hpp,
// data/pixels.hpp, cpu/workers.hpp, cpu/gemm.hpp): they add macros and helpers, not API.
#pragma once

// core/: Tensor, Shape/Dim, errors, JSON, RNG, printing
#include "core/error.hpp"
#include "core/json_io.hpp"
#include "core/print.hpp"
#include "core/random.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"

// cpu/: the backend: the choice and check of OpenBLAS's kernels, the thread policy
#include "cpu/blas_kernel.hpp"
#include "cpu/threads.hpp"

// ops/: the Op record and registry, helpers for writing ops, plugins, the op checks
#include "ops/broadcast.hpp"
#include "ops/elementwise.hpp"
#include "ops/op.hpp"
#include "ops/opcheck.hpp"
#include "ops/plugin.hpp"

// graph/: Graph, the model JSON loader, gradcheck, the stepper, DOT pictures
#include "graph/dot.hpp"
#include "graph/gradcheck.hpp"
#include "graph/graph.hpp"
#include "graph/model_json.hpp"
#include "graph/stepper.hpp"

// data/: data sets (CSV, IDX) and PNG
#include "data/csv.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/kind.hpp"
#include "data/png.hpp"

// train/: training spec, trainer, checkpoints, metrics, plots
#include "train/checkpoint.hpp"
#include "train/model_file.hpp"
#include "train/metrics.hpp"
#include "train/plot.hpp"
#include "train/trainer.hpp"
#include "train/training.hpp"
