"""Differential fuzzing in the test suite: seeded and bounded (tests/fuzzing.py; make fuzz runs
it for as long as asked against a sanitizer build)."""
import pytest

import fuzzing

BUILT_IN = ("every-type", "no-bytes", "label-after", "generated-ztf")


def _fuzz(names, rounds: int, seed: int) -> fuzzing.Counts:
    among = [s for s in fuzzing.subjects() if s.name in names]
    counts = fuzzing.run(seed=seed, rounds=rounds, among=among)
    print(counts.line())
    assert not counts.mismatches, "\n".join(counts.mismatches[:10])
    return counts


def test_fuzzed_values_of_every_avro_type_decode_in_c_as_the_reference_decodes_them():
    counts = _fuzz(BUILT_IN, rounds=1000, seed=19)
    # What the comparison is about was there: values each way, labels, the item bound.
    assert counts.c_accepted > 1000 and counts.rejected > 5000 and counts.accepted > counts.c_accepted
    assert counts.too_many_items > 500 and counts.labels_compared > 2000


def test_fuzzed_values_of_real_fink_schemas_decode_in_c_as_the_reference_decodes_them():
    real = [s.name for s in fuzzing.subjects() if s.name not in BUILT_IN]
    if not real:
        pytest.skip(f"no sample Fink alerts in {fuzzing.FINK_DATA}")
    counts = _fuzz(real, rounds=250, seed=19)
    assert counts.c_accepted > 300 and counts.rejected > 1000 and counts.labels_compared > 500
