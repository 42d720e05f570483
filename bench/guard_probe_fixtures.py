"""Other scanners' test fixtures as a probe of the leak guard (issue 12): secretlint's rule
snapshots and ripsecrets' test files, both MIT, read from bare git directories (as the
project's `fetch` tool or `git clone --mirror` leaves them); nothing is copied here.

    .venv/bin/python bench/guard_probe_fixtures.py \\
        --secretlint /work/.mirror/secretlint+secretlint/repo \\
        --ripsecrets /work/.mirror/sirwart+ripsecrets/repo [--show]

secretlint: each rule package's `test/snapshots/ng.*` case is a positive (each reported
range must overlap a finding), each `ok.*` case a file that must give none; the presets, the
comment/path/home-directory rules and the `options.*` cases are left out. ripsecrets: each
line of `test/one_per_line/*` and each file of `test/one_per_file/*` must give a finding,
`test/none` none. Both use made-up values, many of them documentation samples the guard
rejects by design (`sk_live_AAAA…`, `tskey-api-AAAA…`, alphabet runs), so the figure is a
probe of formats and syntaxes, not of field recall; session 6 fixed what it showed, so it
now measures regressions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections import defaultdict

from emancipate.guard import Guard, GuardConfig

SKIP_RULES = ("filter-comments", "no-homedir", "no-dotenv", "pattern", "example",
              "no-k8s-kind-secret", "preset-")


def git(git_dir: str, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True,
                          capture_output=True).stdout


def secretlint_cases(git_dir: str) -> list[tuple[str, str, str, list[list[int]]]]:
    """(rule, case, text, ranges) per snapshot; ranges is [] for an `ok.*` case."""
    root = "packages/@secretlint/"
    files = git(git_dir, "ls-tree", "-r", "--name-only", "HEAD", root).decode().split("\n")
    cases: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for path in files:
        parts = path.split("/")
        if len(parts) != 7 or parts[3:5] != ["test", "snapshots"]:
            continue
        rule = parts[2].removeprefix("secretlint-rule-")
        if any(rule.startswith(s) for s in SKIP_RULES) or not parts[5].startswith(
                ("ng.", "ok.")):
            continue
        cases[(rule, parts[5])][parts[6]] = path
    out = []
    for (rule, case), found in sorted(cases.items()):
        inputs = [p for name, p in found.items() if name.startswith("input")]
        if not inputs or "output.json" not in found:
            continue
        text = git(git_dir, "show", f"HEAD:{inputs[0]}").decode("utf-8", "replace")
        report = json.loads(git(git_dir, "show", f"HEAD:{found['output.json']}"))
        ranges = [m["range"] for m in report.get("messages", [])] if case.startswith(
            "ng.") else []
        if case.startswith("ng.") and not ranges:
            continue
        out.append((rule, case, text, ranges))
    return out


def ripsecrets_cases(git_dir: str) -> list[tuple[str, str, bool]]:
    """(name, text, positive) per line of `one_per_line`, file of `one_per_file`, and the
    negative file `none`."""
    files = git(git_dir, "ls-tree", "-r", "--name-only", "HEAD", "test").decode().split()
    out = []
    for path in sorted(files):
        text = git(git_dir, "show", f"HEAD:{path}").decode("utf-8", "replace")
        if "/one_per_line/" in path:
            out += [(path, line, True) for line in text.split("\n") if line.strip()]
        elif "/one_per_file/" in path:
            out.append((path, text, True))
        elif path.endswith("/none"):
            out.append((path, text, False))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--secretlint", required=True, help="bare git dir of secretlint")
    ap.add_argument("--ripsecrets", required=True, help="bare git dir of ripsecrets")
    ap.add_argument("--show", action="store_true", help="list every miss and false alarm")
    args = ap.parse_args()
    guard = Guard.from_config(GuardConfig())

    def secrets(text: str) -> list[tuple[int, int]]:
        return [(f.start, f.end) for f in guard.scan(text) if f.cls == "secret"]

    hit = miss = ok_files = ok_flagged = 0
    for rule, case, text, ranges in secretlint_cases(args.secretlint):
        found = secrets(text)
        if not ranges:
            ok_files += 1
            ok_flagged += bool(found)
            if found and args.show:
                print(f"  false alarm  secretlint {rule}/{case}: "
                      f"{[text[s:e][:60] for s, e in found]}")
        for a, b in ranges:
            if any(s < b and a < e for s, e in found):
                hit += 1
            else:
                miss += 1
                if args.show:
                    print(f"  missed       secretlint {rule}/{case}: {text[a:b][:80]!r}")
    print(f"secretlint snapshots: ranges found {hit}/{hit + miss} ({hit / (hit + miss):.3f}); "
          f"ok cases flagged {ok_flagged}/{ok_files}")
    pos = pos_hit = 0
    negatives: list[str] = []
    for name, text, positive in ripsecrets_cases(args.ripsecrets):
        found = secrets(text)
        if positive:
            pos += 1
            pos_hit += bool(found)
            if not found and args.show:
                print(f"  missed       ripsecrets {name}: {text[:80]!r}")
        else:
            negatives += [text[s:e][:60] for s, e in found]
    print(f"ripsecrets tests: positives found {pos_hit}/{pos} ({pos_hit / pos:.3f}); findings "
          f"in its no-secret file: {len(negatives)} {negatives if args.show else ''}".rstrip())


if __name__ == "__main__":
    main()
