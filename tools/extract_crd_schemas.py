"""How src/rigsize/data/launch/{lws,jobset}-*-crd.schema.json were made (run once per pinned tag).

    git show v0.10.0:config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml   (kubernetes-sigs/lws)
    git show v0.12.0:config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml         (kubernetes-sigs/jobset)

    python tools/extract_crd_schemas.py CRD.yaml VERSION SOURCE OUT.json

Writes the CRD's ``spec.versions[name=VERSION].schema.openAPIV3Schema`` as JSON with every ``description``
dropped (the schema's structure, types, enums, required fields and x-kubernetes-* markers kept; the
descriptions are four fifths of the file and validate nothing), plus a ``$comment`` naming the source.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def main(crd_path: str, version: str, source: str, out_path: str) -> None:
    import yaml

    crd = yaml.safe_load(open(crd_path))
    row = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema = strip_descriptions(row["schema"]["openAPIV3Schema"])
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    out = {"$comment": f"openAPIV3Schema of CRD {crd['metadata']['name']} ({group}/{version}, kind {kind}); "
                       f"source: {source}; descriptions dropped by tools/extract_crd_schemas.py", **schema}
    with open(out_path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"), sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:5])
