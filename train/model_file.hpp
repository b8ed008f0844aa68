// A model file as a whole: its graph (format/model_json.hpp) and its training block, typed
// and validated at load time, so that `check` refuses whatever `train` would refuse
// before reading data.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "format/model_json.hpp"
#include "train/metrics.hpp"
#include "train/trainer.hpp"
#include "train/training.hpp"

namespace chainrule {

struct ModelFile {
    Model model;
    std::optional<TrainingSpec> training;  // empty when the file has no "training" block

    // The training spec; a model without one is an InputError saying so.
    const TrainingSpec& training_spec() const;
};

// Every problem is an InputError "FILE: JSON.PATH: what was expected".
ModelFile load_model_file(const std::string& path);
ModelFile parse_model_file(const std::string& text, const std::string& file);

struct TrainedModel {
    Model model;                         // with the trained parameters
    TrainingSpec spec;                   // the file's training block with the options applied
    std::vector<EpochMetrics> history;   // every epoch, including those of a resumed run
};

// Loads a model file, reads its data and trains it: `chainrule train` as one call.
TrainedModel train_model_file(const std::string& path, const TrainOptions& options = {});

}  // namespace chainrule
