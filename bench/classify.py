"""Throughput of the species classifier: training crops/s and inference crops/s, on CPU (and GPU if present).

For each backbone (default: the CPU ones, plus ``convnext_tiny`` and ``efficientnet_v2_s`` when a
GPU is present) it measures, on crops of a generated camera-trap dump:

- **training**: crops per second of Lightning training steps (class-balanced sampling, the
  training augmentations, forward, taxonomy-aware loss, backward, AdamW; the precision
  ``train.precision: auto`` picks: bf16/16-bit mixed on a GPU, bf16 on a CPU with AMX tiles or AVX512-BF16 for the
  dense backbones, else float32), after ``--warmup`` steps: the steps alone ("train"), and the whole
  loop by the wall clock ("loop": waits for data included; with ``--workers 0`` the augmentations
  run there, with workers they take cores from the steps);
- **inference, network**: crops per second of the network alone on ready input tensors (channels-last
  memory, as the stage and the training use);
- **inference, end to end**: crops per second of the classify stage's prediction loop (decode the
  JPEG, cut the crop, preprocess in DataLoader workers, forward, top-k, the knn unknown score
  against a bank of 400 embeddings per class), without the store writes; once with one pass per
  crop and once with test-time flip (each crop and its mirror image, ``model.test_time_flip``:
  the recipe of ``conf/classifier.yaml``).

    python bench/classify.py                                   # CPU backbones, 640x360 dump generated once
    python bench/classify.py --backbones resnet18 --threads 2 --input-size 112
    python bench/classify.py --accelerator gpu --backbones convnext_tiny,efficientnet_v2_s --input-size 224

Weights are random (speed does not depend on them); nothing is downloaded. Figures are printed;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _dump(workdir: Path, frames: int) -> Path:
    from ecowatch.synth import DumpSpec, generate_dump

    out = workdir / f"dump-{frames}"
    if not (out / ".bench-complete").is_file():
        print(f"generating a {frames}-frame dump in {out} (once) ...", flush=True)
        generate_dump(out, DumpSpec.preset("train", n_frames=frames, image_size=(960, 540), workers=2), overwrite=True)
        (out / ".bench-complete").write_text("ok\n")
    return out


class _StepTimer:
    """Times training batches after a warm-up: the steps alone (data waits outside steps excluded), and
    the loop by the wall clock (data waits included: with no DataLoader workers the augmentations run there)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.seconds = 0.0
        self.images = 0
        self.batches = 0  # over every epoch: a small dump's epoch can be shorter than the warm-up
        self._t = 0.0
        self.wall_start: float | None = None
        self.wall_end = 0.0

    def callback(self):  # noqa: ANN201 - a Lightning Callback
        from lightning.pytorch.callbacks import Callback

        timer = self

        class Timer(Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # noqa: ANN001, ANN202
                if pl_module.device.type == "cuda":
                    import torch

                    torch.cuda.synchronize()
                timer._t = time.perf_counter()
                if timer.wall_start is None and timer.warmup == 0:
                    timer.wall_start = timer._t

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # noqa: ANN001, ANN202
                if pl_module.device.type == "cuda":
                    import torch

                    torch.cuda.synchronize()
                timer.batches += 1
                now = time.perf_counter()
                if timer.batches > timer.warmup:
                    timer.seconds += now - timer._t
                    timer.images += len(batch[1])
                    timer.wall_end = now
                elif timer.batches == timer.warmup:
                    timer.wall_start = now

        return Timer()


def main(argv: list[str] | None = None) -> dict[str, dict[str, float | str]]:
    """Print the table; return {backbone: {precision, train, train_loop, infer_net, infer_e2e, infer_e2e_flip}}
    (crops/s)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="a generate-dump output folder (default: generate one)")
    parser.add_argument("--workdir", default="work/bench-classify")
    parser.add_argument("--frames", type=int, default=600, help="frames of the generated dump")
    parser.add_argument("--backbones", default=None, help="comma-separated (default: CPU ones; + GPU ones on a GPU)")
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--crop-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first training steps")
    parser.add_argument("--crops", type=int, default=512, help="crops for the inference figures")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: every core)")
    parser.add_argument("--accelerator", choices=("auto", "cpu", "gpu"), default="auto")
    args = parser.parse_args(argv)

    import lightning as L
    import torch
    from torch.utils.data import DataLoader

    from ecowatch.classify.backbones import BACKBONES, build_backbone, channels_last
    from ecowatch.classify.checkpoint import SpeciesClassifier
    from ecowatch.classify.crops import CropCache, CropGeometry, sources_from_coco
    from ecowatch.classify.datamodule import ClassifierDataModule, LabelledCrop
    from ecowatch.classify.openset import OpenSetCalibration, embeddings_and_logits
    from ecowatch.classify.predict import ClassifierModule, DetectionCropDataset, collate_crops
    from ecowatch.classify.split import LocationSplit
    from ecowatch.classify.task import SpeciesClassificationTask
    from ecowatch.classify.taxonomy import ClassTaxonomy
    from ecowatch.classify.train import resolve_precision, set_threads
    from ecowatch.classify.transforms import Preprocessing
    from ecowatch.tables import read_taxonomy

    threads = set_threads(args.threads)
    gpu = args.accelerator != "cpu" and torch.cuda.is_available()
    accelerator = "gpu" if gpu else "cpu"
    names = args.backbones.split(",") if args.backbones else [
        n for n, e in BACKBONES.items() if e.target == "cpu" or (gpu and n in ("convnext_tiny", "efficientnet_v2_s"))]
    device = torch.device("cuda" if gpu else "cpu")
    data = Path(args.data) if args.data else _dump(Path(args.workdir), args.frames)
    sources = sources_from_coco(data / "coco_camera_traps.json", data / "dump", exclude_taxa=["homo_sapiens"])
    taxonomy = ClassTaxonomy.from_taxa(read_taxonomy(data / "taxonomy.csv"), sorted({s.taxon_id for s in sources}))
    pre = Preprocessing(geometry=CropGeometry(args.crop_size), input_size=args.input_size)
    paths = CropCache(Path(args.workdir) / "crop_cache", pre.geometry).build(sources, workers=args.workers)
    crops = [LabelledCrop(s.crop_id, p, s.taxon_id or "", s.location_id, s.deployment_id)
             for s, p in zip(sources, paths, strict=True) if p is not None]
    everywhere = LocationSplit(tuple(sorted({c.location_id for c in crops})), (), ())
    device_name = torch.cuda.get_device_name(0) if gpu else f"CPU, {threads} torch threads"
    print(f"{device_name}; {len(crops)} crops from {data}; input {args.input_size} px; "
          f"batch {args.batch_size}; {args.workers} DataLoader workers; inference in float32 on a CPU", flush=True)
    print(f"{'backbone':20s} {'train precision':>16s} {'train crops/s':>14s} {'loop crops/s':>13s} "
          f"{'infer net crops/s':>18s} {'infer e2e crops/s':>18s} {'e2e, flip crops/s':>18s}")
    results: dict[str, dict[str, float | str]] = {}
    for name in names:
        precision = resolve_precision("auto", accelerator, name)  # what training with precision: auto uses
        torch.manual_seed(0)
        datamodule = ClassifierDataModule(crops, taxonomy=taxonomy, split=everywhere, preprocessing=pre,
                                          batch_size=args.batch_size, workers=args.workers, preload=True)
        task = SpeciesClassificationTask(backbone=name, taxonomy=taxonomy.to_record(), pretrained=False)
        timer = _StepTimer(args.warmup)
        trainer = L.Trainer(accelerator=accelerator, devices=1, precision=precision,
                            max_steps=args.steps + args.warmup, limit_val_batches=0, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[timer.callback()])
        trainer.fit(task, train_dataloaders=datamodule.train_dataloader())
        train_rate = timer.images / timer.seconds if timer.seconds else float("nan")
        loop_seconds = timer.wall_end - timer.wall_start if timer.wall_start is not None else 0.0
        loop_rate = timer.images / loop_seconds if loop_seconds > 0 else float("nan")

        network = build_backbone(name, taxonomy.num_classes, pretrained=False).eval().to(device)
        network.to(memory_format=torch.channels_last)  # the layout the stage and the training use
        x = channels_last(torch.randn(args.batch_size, 3, args.input_size, args.input_size, device=device))
        autocast = torch.autocast(device.type, dtype=torch.bfloat16 if "bf16" in precision else torch.float16,
                                  enabled=gpu)
        with torch.no_grad(), autocast:
            network(x)
            if gpu:
                torch.cuda.synchronize()
            started, done = time.perf_counter(), 0
            while done < args.crops:
                network(x)
                done += len(x)
            if gpu:
                torch.cuda.synchronize()
            net_rate = done / (time.perf_counter() - started)

        # the default knn unknown score, with a bank the size conf/classifier.yaml keeps (400 per class)
        with torch.no_grad():
            dims = embeddings_and_logits(network.eval(), x[:1])[0].shape[1]
        bank = torch.nn.functional.normalize(torch.randn(400 * taxonomy.num_classes, dims), dim=1).to(x.device)
        subset = sources[: args.crops]
        e2e = {}
        for flip in (False, True):
            classifier = SpeciesClassifier(network=network, model_name="bench", version="", backbone=name,
                                           taxonomy=taxonomy, preprocessing=pre, temperature=1.0,
                                           open_set=OpenSetCalibration("knn", 0.0, 1.0, 0.95, k=100, bank=bank),
                                           test_time_flip=flip)
            loader = DataLoader(DetectionCropDataset(subset, pre), batch_size=args.batch_size,
                                num_workers=args.workers, collate_fn=collate_crops, pin_memory=gpu)
            predictor = L.Trainer(accelerator=accelerator, devices=1, precision=precision if gpu else "32-true",
                                  logger=False, enable_progress_bar=False, enable_model_summary=False)
            started = time.perf_counter()
            predictor.predict(ClassifierModule(classifier, top_k=5), dataloaders=loader, return_predictions=False)
            e2e[flip] = len(subset) / (time.perf_counter() - started)
        print(f"{name:20s} {precision:>16s} {train_rate:14.1f} {loop_rate:13.1f} {net_rate:18.1f} {e2e[False]:18.1f} "
              f"{e2e[True]:18.1f}", flush=True)
        results[name] = {"precision": precision, "train": train_rate, "train_loop": loop_rate,
                         "infer_net": net_rate, "infer_e2e": e2e[False], "infer_e2e_flip": e2e[True]}
    return results


if __name__ == "__main__":
    main()
