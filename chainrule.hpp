// chainrule for programs that embed it: one include for building, running and training
// graphs from C++ (docs/cpp-api.md).
//
//     #include <chainrule/chainrule.hpp>
//
// Every room's public headers, in the rooms' order (docs/architecture.md). Left out are
// the headers only the library's own hot loops use (core/simd.hpp, core/text.hpp,
// data/pixels.hpp, cpu/workers.hpp, cpu/gemm.hpp): they add macros and helpers, not API.
#pragma once

// core/: Tensor, Shape/Dim, errors, JSON, files, RNG, printing
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
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
#include "ops/vjp.hpp"

// graph/: Graph, the plan, gradcheck, the stepper
#include "graph/backward_graph.hpp"
#include "graph/hessian.hpp"
#include "graph/gradcheck.hpp"
#include "graph/graph.hpp"
#include "graph/stepper.hpp"

// data/: data sets (CSV, IDX) and PNG
#include "data/csv.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/kind.hpp"
#include "data/png.hpp"

// format/: the model file format (JSON <-> Graph) and feed files
#include "format/model_json.hpp"

// render/: DOT and SVG of a graph, the SVG plots of a run
#include "render/dot.hpp"
#include "render/plot.hpp"

// train/: training spec, trainer, checkpoints, metrics
#include "train/checkpoint.hpp"
#include "train/model_file.hpp"
#include "train/metrics.hpp"
#include "train/trainer.hpp"
#include "train/training.hpp"
