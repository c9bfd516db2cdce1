"""Results-store schema (data contracts of ../shared/DESIGN.md), version :data:`SCHEMA_VERSION`.

SQLAlchemy Core tables, so the same schema runs on a SQLite file (the default) and on
PostgreSQL (shared use). Ids are deterministic strings derived from content or from natural
keys, never auto-increment counters: a killed and re-run stage, or several processes writing
shards, produce exactly the same rows.

Times: ``timestamp`` columns hold the camera-local clock time (naive); each deployment carries
its UTC offset in minutes. Bounding boxes are ``bbox_xywhn``: normalised top-left x, y, width,
height (the MegaDetector convention).
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 2  # 2: deployments.habitat (a version-1 store is migrated in place when opened)

metadata = sa.MetaData()

schema_info = sa.Table(
    "schema_info",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),  # nightly, ingest, detect, ...
    sa.Column("started_at", sa.DateTime, nullable=False),  # UTC
    sa.Column("finished_at", sa.DateTime),
    sa.Column("status", sa.String(16), nullable=False),  # running, finished, failed
    sa.Column("mlflow_run_id", sa.String(64)),
    sa.Column("params_json", sa.Text, nullable=False, default="{}"),
    sa.Column("counts_json", sa.Text, nullable=False, default="{}"),
)

dumps = sa.Table(
    "dumps",
    metadata,
    sa.Column("dump_id", sa.String(128), primary_key=True),  # the catalog name of the dump
    sa.Column("root", sa.Text, nullable=False),  # absolute path of the dump root when last ingested
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("deployment_id", sa.String(128), primary_key=True),
    sa.Column("location_id", sa.String(128), nullable=False),
    sa.Column("location_name", sa.String(256), nullable=False, default=""),
    sa.Column("latitude", sa.Float, nullable=False),
    sa.Column("longitude", sa.Float, nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),  # camera-local
    sa.Column("end", sa.DateTime, nullable=False),  # camera-local
    sa.Column("utc_offset_min", sa.Integer, nullable=False),
    sa.Column("camera_id", sa.String(128), nullable=False, default=""),
    sa.Column("camera_serial", sa.String(128), nullable=False, default=""),
    sa.Column("camera_make", sa.String(128), nullable=False, default=""),
    sa.Column("camera_model", sa.String(128), nullable=False, default=""),
    sa.Column("setup_notes", sa.Text, nullable=False, default=""),
    sa.Column("habitat", sa.Text, nullable=False, default="", server_default=""),
)

media = sa.Table(
    "media",
    metadata,
    sa.Column("media_id", sa.String(40), primary_key=True),  # hash of (dump_id, relpath)
    sa.Column("dump_id", sa.String(128), sa.ForeignKey("dumps.dump_id"), nullable=False),
    sa.Column("relpath", sa.Text, nullable=False),  # POSIX path relative to the dump root
    sa.Column("deployment_id", sa.String(128), sa.ForeignKey("deployments.deployment_id")),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("media_type", sa.String(16), nullable=False),  # image, video, other
    sa.Column("status", sa.String(16), nullable=False),  # ok, failed, skipped (recorded only: video, AppleDouble)
    sa.Column("width", sa.Integer),  # as displayed (after EXIF orientation)
    sa.Column("height", sa.Integer),
    sa.Column("orientation", sa.Integer),  # EXIF orientation tag, 1 when absent
    sa.Column("color_mode", sa.String(16)),  # PIL mode of the file: RGB, L, CMYK, ...
    sa.Column("is_greyscale", sa.Boolean),  # L mode or equal RGB channels (infrared night frames)
    sa.Column("timestamp", sa.DateTime),  # camera-local clock time
    sa.Column("timestamp_source", sa.String(32), nullable=False),  # exif_datetimeoriginal, ..., file_mtime, none
    sa.Column("camera_make", sa.String(128), nullable=False, default=""),
    sa.Column("camera_model", sa.String(128), nullable=False, default=""),
    sa.Column("camera_serial", sa.String(128), nullable=False, default=""),
    sa.Column("gps_latitude", sa.Float),
    sa.Column("gps_longitude", sa.Float),
    sa.Column("gps_altitude_m", sa.Float),
    sa.Column("deployment_source", sa.String(32), nullable=False, default=""),  # folder, serial_time, ...
    sa.Column("sequence_id", sa.String(200)),
    sa.Column("sequence_frame", sa.Integer),  # 1-based position in the sequence
    sa.Column("ingest_run_id", sa.String(64), nullable=False),
    sa.UniqueConstraint("dump_id", "relpath", name="uq_media_dump_relpath"),
)
sa.Index("ix_media_sha256", media.c.sha256)
sa.Index("ix_media_deployment_time", media.c.deployment_id, media.c.timestamp)

media_flags = sa.Table(
    "media_flags",
    metadata,
    sa.Column("media_id", sa.String(40), sa.ForeignKey("media.media_id"), primary_key=True),
    sa.Column("flag", sa.String(48), primary_key=True),  # zero_byte, truncated, not_an_image, ...
    sa.Column("message", sa.Text, nullable=False),
)

detections = sa.Table(
    "detections",
    metadata,
    sa.Column("detection_id", sa.String(64), primary_key=True),
    sa.Column("media_id", sa.String(40), sa.ForeignKey("media.media_id"), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),  # animal, person, vehicle
    sa.Column("conf", sa.Float, nullable=False),
    sa.Column("x", sa.Float, nullable=False),  # bbox_xywhn
    sa.Column("y", sa.Float, nullable=False),
    sa.Column("w", sa.Float, nullable=False),
    sa.Column("h", sa.Float, nullable=False),
    sa.Column("detector_name", sa.String(128), nullable=False),
    sa.Column("detector_version", sa.String(128), nullable=False),
    sa.Column("tile", sa.String(64)),  # e.g. "full" or "x0,y0,w,h" in pixels for tiled runs
    sa.Column("static_fp", sa.Boolean, nullable=False, default=False),
    sa.Column("run_id", sa.String(64), nullable=False),
)
sa.Index("ix_detections_media", detections.c.media_id, detections.c.detector_version)

detector_done = sa.Table(
    "detector_done",  # media processed by a detector version (also those with zero detections)
    metadata,
    sa.Column("media_id", sa.String(40), sa.ForeignKey("media.media_id"), primary_key=True),
    sa.Column("detector_version", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
)

classifications = sa.Table(
    "classifications",
    metadata,
    sa.Column("detection_id", sa.String(64), sa.ForeignKey("detections.detection_id"), primary_key=True),
    sa.Column("model_name", sa.String(128), primary_key=True),
    sa.Column("model_version", sa.String(128), primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True),  # 1 = top-1
    sa.Column("taxon_id", sa.String(128), nullable=False),
    sa.Column("score", sa.Float, nullable=False),  # calibrated probability
    sa.Column("temperature", sa.Float, nullable=False),
    sa.Column("unknown_score", sa.Float, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("observation_id", sa.String(64), primary_key=True),
    sa.Column("level", sa.String(8), nullable=False),  # media, event
    sa.Column("deployment_id", sa.String(128), sa.ForeignKey("deployments.deployment_id")),
    sa.Column("media_id", sa.String(40), sa.ForeignKey("media.media_id")),
    sa.Column("sequence_id", sa.String(200)),
    sa.Column("observation_type", sa.String(16), nullable=False),  # animal, human, vehicle, blank, unknown
    sa.Column("taxon_id", sa.String(128)),
    sa.Column("taxon_rank", sa.String(16)),
    sa.Column("probability", sa.Float),
    sa.Column("count", sa.Integer),
    sa.Column("source", sa.String(32), nullable=False),  # detector, classifier, classifier+prior, rollup_to_genus, human
    sa.Column("run_id", sa.String(64), nullable=False),
)
