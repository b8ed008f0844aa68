#include "train/model_file.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace chainrule {
namespace {

ModelFile with_training(Model m) {
    std::optional<TrainingSpec> spec;
    if (!m.training.is_null()) spec = parse_training(m.training, m.graph, m.path, m.dir);
    return {std::move(m), std::move(spec)};
}

}  // namespace

const TrainingSpec& ModelFile::training_spec() const {
    if (!training)
        throw InputError(fmt::format("{}: the model has no \"training\" block; add one to train it "
                                     "(docs/model-format.md)",
                                     model.path));
    return *training;
}

ModelFile load_model_file(const std::string& path) { return with_training(load_model(path)); }

ModelFile parse_model_file(const std::string& text, const std::string& file) {
    return with_training(parse_model(text, file));
}

TrainedModel train_model_file(const std::string& path, const TrainOptions& options) {
    ModelFile f = load_model_file(path);
    TrainingSpec spec = with_overrides(f.training_spec(), options);
    TrainedModel t{std::move(f.model), std::move(spec), {}};
    data::Dataset ds = data::load_dataset(t.spec.data);
    t.history = train(t.model, t.spec, ds, options);
    return t;
}

}  // namespace chainrule
