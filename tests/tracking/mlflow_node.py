"""One "node" of the shared-MLflow recipe test: log one run to a tracking server with ecowatch.tracking.

Run as ``python -m tests.tracking.mlflow_node TRACKING_URL NODE_NAME WORK_DIR``, in its own process
like a job on another machine. It logs parameters, metrics (three steps) and one artefact file,
then prints the MLflow run id on its last line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ecowatch.tracking import tracked_run, tracking_target

EXPERIMENT = "ecowatch-cluster-recipe"


def main(url: str, node: str, work: Path) -> str:
    work.mkdir(parents=True, exist_ok=True)
    counts = work / "counts.csv"
    counts.write_text(f"node,media\n{node},{len(node) * 10}\n", encoding="utf-8")
    with tracked_run(tracking_target(url), experiment=EXPERIMENT, run_name=f"nightly-{node}",
                     tags={"ecowatch.node": node}) as run:
        run.log_params({"node": node, "dump": f"cards_{node}"})
        for step in range(3):
            run.log_metrics({"ingest.files_seen": 10.0 * (step + 1)}, step=step)
        run.log_artifact(counts, "tables")
    return str(run.run_id)


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
