"""``composer check HISTORY --checker NAME [--model MODEL]``: one checker on a history
file, outside any exploration (Jepsen's and Porcupine's histories too).

Exit 0 valid, 1 invalid, 4 unknown (the time limit ran out: not a pass), 2 when the
file or the options are wrong. Imports checkers, history_formats and errors.
"""

from __future__ import annotations

import argparse
import json
import sys

from composer import checkers, history_formats
from composer.errors import ConfigError, ExitCode

__all__ = ["run", "UNKNOWN_EXIT"]

#: the exit code of an unknown verdict (neither 0, a pass, nor 1, a failure)
UNKNOWN_EXIT = 4


def run(args: argparse.Namespace) -> int:
    """Check ``args.history``; print the verdict (as JSON with ``--json``)."""
    problem = checkers.model_problem(args.checker, args.model)
    if problem:
        needed = args.model is None and checkers.CHECKERS[args.checker]
        raise ConfigError(f"--checker {args.checker}{' needs --model' if needed else ''}: "
                          f"{problem}")
    try:
        history = history_formats.read_history(args.history)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    verdict = checkers.judge(args.checker, history, args.model, args.time_limit)
    if args.json:
        json.dump({"checker": args.checker, "model": args.model,
                   "operations": len(history.operations), **verdict.as_json()},
                  sys.stdout, indent=2, default=str)
        print()
    else:
        print(f"{verdict.outcome.upper()}: {verdict.explanation}")
        for op in verdict.details.get("window", []):
            print(f"  {'>' if op == verdict.details.get('blocked') else ' '} {op['text']}"
                  f"  [{op['call']} .. {'?' if op['ret'] is None else op['ret']}]")
        if history.garbage or history.unmatched:
            print(f"  ({history.garbage} line(s) could not be read, {history.unmatched} "
                  "completion(s) matched no invocation)")
    return {checkers.VALID: ExitCode.OK, checkers.INVALID: ExitCode.PROPERTY_FAILED}.get(
        verdict.outcome, UNKNOWN_EXIT)
