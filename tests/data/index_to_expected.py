#!/usr/bin/env python3
"""Converts tests/data/index.json into one `<capture>.expected` file per capture.

Same line format as benches/data/*.txt: `A <addr> <flags as decimal>` for an added peer,
`D <addr>` for a dropped one, in decode order: added, added6, dropped, dropped6.
Run from the crate root: python3 tests/data/index_to_expected.py
"""
import json
import pathlib

DATA = pathlib.Path(__file__).resolve().parent

for entry in json.loads((DATA / "index.json").read_text()):
    lines = []
    for key in ("added", "added6"):
        lines += [f"A {peer['addr']} {peer['flags']}" for peer in entry[key]]
    for key in ("dropped", "dropped6"):
        lines += [f"D {addr}" for addr in entry[key]]
    name = pathlib.Path(entry["file"]).with_suffix(".expected").name
    (DATA / name).write_text("".join(line + "\n" for line in lines))
