#!/usr/bin/env python3
"""Regenerates libyaml_depths.jsonl: random YAML-ish texts built from the pieces that decide
what libyaml treats as a flow bracket (quotes, plain and block scalars, indentation, tags,
comments), each with the deepest flow nesting libyaml's scanner reaches on it. The suite's
nesting pre-scan must never estimate less. Needs PyYAML built with libyaml (CParser).

    python3 tests/data/nesting/generate.py > tests/data/nesting/libyaml_depths.jsonl
"""
import json
import random

import yaml

PIECES = [
    "[", "[", "[", "]", "{", "}", ",", ": ", ":", "- ", "-", "? ", "?", "'", '"', "''", '\\"',
    "#", " #c", "|", ">", "|2", ">-", "|+", "!t ", "!t", "&a ", "*a", "a", "key", "x y", " ",
    "  ", "\t", "\n", "\n", "\n  ", "\n    ", "\n ", "\n- ", "\n  - ", "---\n", "...\n", "x: ",
    '"]]]"', "'[['", "%YAML 1.2\n", "\r\n", "\\", "]]", "[[", "é", "a:b", "a:[", "http://x",
    "\n      ", "|1", ">2", "\n  key: |\n", "\n- |\n", "\n   ", "\n     ", "k: ", "\n  k: ",
    "\n    - ", "\\\n",
]


def depth(text):
    """Deepest flow level libyaml's scanner reaches before the end or its first error."""
    level = deepest = 0
    try:
        for token in yaml.scan(text, Loader=yaml.CSafeLoader):
            name = type(token).__name__
            if name in ("FlowSequenceStartToken", "FlowMappingStartToken"):
                level += 1
                deepest = max(deepest, level)
            elif name in ("FlowSequenceEndToken", "FlowMappingEndToken"):
                level = max(0, level - 1)
    except yaml.YAMLError:
        pass
    return deepest


def main():
    rng = random.Random(8)
    seen = set()
    while len(seen) < 8000:
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 40)))
        if text in seen:
            continue
        seen.add(text)
        d = depth(text)
        if d == 0 and rng.random() < 0.8:
            continue
        print(json.dumps({"text": text, "depth": d}, ensure_ascii=False))


if __name__ == "__main__":
    main()
