"""Compare two results.json files number by number (a refactoring must leave every number alone).

Run by hand:  python benchmarks/compare_results.py BEFORE/results.json AFTER/results.json

Prints the largest absolute and relative difference and where it occurs, and every key or
string that differs; exits 1 when the structure or any string differs.
"""

import json
import sys


def walk(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out["structure"].append(f"{path}/{k}: only in {'after' if k not in a else 'before'}")
            else:
                walk(a[k], b[k], f"{path}/{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out["structure"].append(f"{path}: length {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        d = abs(a - b)
        out["n"] += 1
        if d > out["abs"][0]:
            out["abs"] = (d, path, a, b)
        rel = d / max(abs(a), abs(b)) if d else 0.0
        if rel > out["rel"][0]:
            out["rel"] = (rel, path, a, b)
    elif a != b:
        out["structure"].append(f"{path}: {a!r} vs {b!r}")


def main():
    before, after = (json.load(open(p, encoding="utf-8")) for p in sys.argv[1:3])
    out = {"n": 0, "abs": (0.0, "", None, None), "rel": (0.0, "", None, None), "structure": []}
    walk(before, after, "", out)
    print(f"numbers compared: {out['n']}")
    print("largest absolute difference: {:.3g} at {} ({!r} vs {!r})".format(*out["abs"]))
    print("largest relative difference: {:.3g} at {} ({!r} vs {!r})".format(*out["rel"]))
    for line in out["structure"]:
        print("differs:", line)
    sys.exit(1 if out["structure"] else 0)


if __name__ == "__main__":
    main()
