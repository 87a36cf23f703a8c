"""Merge FDM data directories into one (``morobot merge-data --out OUT SRC [SRC ...]``).

Shards are hard-linked into ``OUT/shards/`` (copied where the file system cannot link), so a
merged set costs no disk space; the sources must share one data spec and no world may appear in
two sources with different contents. The merged manifest lists every shard with its source and
has its own data hash (the hash of the shards, as for a collected set).

    morobot merge-data --out data/fdm_stumble data/fdm_sensor12 data/fdm_rubble
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

from morobot.fdm.data.dataset import SHARD_DIR, DataSpec, DatasetError, read_manifest, write_manifest


def merge_datasets(out: str | Path, sources: Sequence[str | Path]) -> dict:
    """Merges ``sources`` into ``out`` and returns the new manifest.

    Raises:
        DatasetError: a source is missing or corrupt, the specs differ, or one world id comes
            with different shards.
        ValueError: no sources, or ``out`` already holds data.
    """
    out = Path(out)
    if not sources:
        raise ValueError("merge needs at least one source directory")
    if (out / "manifest.json").exists() or (out / SHARD_DIR).exists():
        raise ValueError(f"{out} already holds data; choose another --out")
    manifests = [(Path(src), read_manifest(src)) for src in sources]
    spec = manifests[0][1]["spec"]
    for src, m in manifests[1:]:
        if m["spec"] != spec:
            raise DatasetError(f"{src} has another data spec than {manifests[0][0]}; cannot merge")
    entries: dict[str, dict] = {}
    for src, m in manifests:
        for e in m["shards"]:
            seen = entries.get(e["world_id"])
            if seen is not None:
                if seen["sha256"] != e["sha256"]:
                    raise DatasetError(f"world {e['world_id']} is in several sources with different shards")
                continue
            entries[e["world_id"]] = {**e, "source": str(src)}
    (out / SHARD_DIR).mkdir(parents=True)
    for e in entries.values():
        target = out / e["file"]
        source = Path(e["source"]) / e["file"]
        if not source.is_file():
            raise DatasetError(f"shard {source} listed in its manifest is missing")
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
    meta = {"merged_from": [{"dir": str(src), "data_hash": m["data_hash"], "worlds": len(m["shards"])}
                            for src, m in manifests]}
    return write_manifest(out, DataSpec.from_dict(spec), list(entries.values()), meta,
                          complete=all(m.get("complete", True) for _, m in manifests))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="morobot merge-data", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="new data directory")
    p.add_argument("sources", nargs="+", help="data directories to merge")
    ns = p.parse_args(argv)
    try:
        m = merge_datasets(ns.out, ns.sources)
    except (ValueError, DatasetError) as exc:
        print(f"morobot merge-data: error: {exc}", file=sys.stderr)
        return 2
    print(f"{m['total_samples']} samples from {len(m['shards'])} worlds in {ns.out}; data hash {m['data_hash'][:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
