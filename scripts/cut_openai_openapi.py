"""Cut the OpenAI OpenAPI spec down to the request schemas of the endpoints this gateway
serves, for the property-based fuzzer (tests/test_fuzz.py), which cannot fetch it at run time.

    python scripts/cut_openai_openapi.py /path/to/openai-openapi/openapi.json [commit]

Source: github.com/openai/openai-openapi (MIT, see tests/data/openai-openapi/LICENSE).
Kept: the request bodies of POST /chat/completions and POST /embeddings, the path parameter
of GET /models/{model}, and every component schema they reach. Dropped: prose (descriptions,
titles, examples, x-oai* annotations), which the fuzzer does not read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "openai-openapi"
ROOTS = {"chat": "CreateChatCompletionRequest", "embeddings": "CreateEmbeddingRequest"}
PROSE = {"description", "title", "example", "examples", "deprecated"}


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def _closure(schemas: dict[str, Any], roots: list[str]) -> list[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            found: set[str] = set()
            _refs(schemas[name], found)
            todo.extend(found - seen)
    return sorted(seen)


def _strip(node: Any, in_properties: bool = False) -> Any:
    """Drop prose keywords (but not properties that happen to be named like them)."""
    if isinstance(node, dict):
        return {k: _strip(v, k == "properties" and not in_properties) for k, v in node.items()
                if in_properties or not (k in PROSE or k.startswith("x-"))}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    schemas = spec["components"]["schemas"]
    model_param = next(p for p in spec["paths"]["/models/{model}"]["get"]["parameters"]
                       if p["name"] == "model")
    cut = {
        "source": "https://github.com/openai/openai-openapi openapi.json"
                  + (f" at commit {sys.argv[2]}" if len(sys.argv) > 2 else ""),
        "openapi_version": spec["info"]["version"],
        "requests": {name: {"$ref": f"#/components/schemas/{root}"}
                     for name, root in ROOTS.items()},
        "model_path_parameter": _strip(model_param["schema"]),
        "components": {"schemas": {n: _strip(schemas[n])
                                   for n in _closure(schemas, list(ROOTS.values()))}},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "openapi-cut.json").write_text(json.dumps(cut, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
