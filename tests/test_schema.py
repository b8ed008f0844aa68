#!/usr/bin/python3
"""models/schema.json against the loader: every shipped model and example validates, and
the structural mistakes of the regression corpus (tests/regression/models) that need no
cross-reference to see are rejected by the schema as they are by chainrule. Errors that
need the whole graph (unknown names, cycles, shapes that do not fit) are the loader's
alone; the schema is for editors and generators. Usage: test_schema.py SOURCE_ROOT"""

import glob
import json
import os
import sys

import jsonschema

# Regression files whose mistake the schema alone can see.
STRUCTURAL = """bad_symbol dim_fraction dim_negative dim_zero dtype_float16 empty_node_name
init_constant_string init_missing init_normal_negative_std init_two_kinds init_unknown_kind
init_value_null init_value_string_element input_missing_shape input_name_not_string
inputs_not_array inputs_not_object missing_format missing_nodes missing_outputs node_not_object
output_unknown_role parameter_symbolic_shape rank_9 shape_not_array top_level_array
training_not_object unknown_node_key unknown_top_key version_2 version_string
wrong_format""".split()


def main():
    root = sys.argv[1]
    schema = json.load(open(os.path.join(root, "models/schema.json")))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failures = []

    shipped = sorted(glob.glob(os.path.join(root, "models/*.json")) + glob.glob(os.path.join(root, "examples/*/*.json")))
    shipped = [f for f in shipped if not f.endswith("schema.json")]
    if len(shipped) < 10:
        failures.append(f"only {len(shipped)} shipped models found under {root}")
    for f in shipped:
        for e in validator.iter_errors(json.load(open(f))):
            failures.append(f"{os.path.relpath(f, root)}: the schema rejects a shipped model: {e.message} at "
                            f"/{'/'.join(map(str, e.absolute_path))}")

    for name in STRUCTURAL:
        f = os.path.join(root, "tests/regression/models", name + ".json")
        if not os.path.exists(f):
            failures.append(f"{name}.json: listed here but missing from tests/regression/models")
            continue
        if validator.is_valid(json.load(open(f))):
            failures.append(f"{os.path.relpath(f, root)}: the schema accepts what chainrule rejects "
                            f"({open(f[:-5] + '.expect').read().strip()})")

    # training.sparse_inputs: the two values the loader accepts, and no other
    lecture = json.load(open(os.path.join(root, "models/mnist_lecture.json")))
    for value, valid in (("auto", True), ("off", True), ("on", False), (True, False)):
        lecture["training"]["sparse_inputs"] = value
        if validator.is_valid(lecture) != valid:
            failures.append(f"training.sparse_inputs {value!r}: the schema {'rejects' if valid else 'accepts'} it")

    for line in failures:
        print(line)
    print(f"{len(shipped)} shipped models valid, {len(STRUCTURAL)} structural mistakes rejected"
          if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
