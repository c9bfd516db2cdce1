"""Seeded, deterministic generator of realistic synthetic camera-trap SD-card dumps and drone flights.

Every later stage (ingest, detector and classifier training, context priors, reports) is
developed and benchmarked on this data. The same :class:`DumpSpec` gives byte-identical files and
ground truth, whatever the number of workers::

    from ecowatch.synth import DumpSpec, generate_dump
    summary = generate_dump(Path("work/sample"), DumpSpec.preset("sample"))

Modules: :mod:`.spec` (knobs and presets), :mod:`.taxa` and :mod:`.geo` (species, regions,
ranges, sun), :mod:`.deployments` and :mod:`.events` (who was where, what triggered),
:mod:`.scene`, :mod:`.species`, :mod:`.bodies`, :mod:`.figures`, :mod:`.shapes` (drawing),
:mod:`.camera` (card layout, EXIF, data bar), :mod:`.render`, :mod:`.broken`, :mod:`.drone` and :mod:`.topdown`,
:mod:`.truth` (ground-truth files), :mod:`.parallel` and :mod:`.dump` (orchestration), :mod:`.cli`.
"""

from ecowatch.synth.dump import GENERATOR_VERSION, DumpSummary, generate_dump
from ecowatch.synth.spec import PRESETS, DumpSpec

__all__ = ["GENERATOR_VERSION", "PRESETS", "DumpSpec", "DumpSummary", "generate_dump"]
