"""Minimal test harness for kvmfleet's integration tests (python3 standard library only).

    from kvmtest import test, skip, run, check, ROOT, BUILD

    @test
    def hello_reaches_console():
        check(x == y, "what went wrong")

    run()

Each test prints "ok - NAME", "not ok - NAME" (with the reason on "#" lines) or
"skip - NAME: reason"; tests/run-tests.sh counts those lines. run() exits 1 if any test failed.
"""
import os
import sys
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))

_tests = []


class Skip(Exception):
    pass


class Failure(AssertionError):
    pass


def test(fn):
    _tests.append(fn)
    return fn


def skip(reason):
    """Skip the current test; only for a capability that is really absent. Say which."""
    raise Skip(reason)


def check(cond, msg="check failed"):
    if not cond:
        raise Failure(msg)


def check_eq(a, b, msg=""):
    if a != b:
        raise Failure("%s%r != %r" % (msg + ": " if msg else "", a, b))


def run():
    sys.stdout.reconfigure(line_buffering=True)
    only = sys.argv[1] if len(sys.argv) > 1 else None
    failed = 0
    for fn in _tests:
        name = fn.__name__
        if only and only not in name:
            continue
        try:
            fn()
        except Skip as e:
            print("skip - %s: %s" % (name, e))
            continue
        except Exception:  # noqa: BLE001 - every error is a test failure
            for line in traceback.format_exc().rstrip().splitlines():
                print("#   " + line)
            print("not ok - %s" % name)
            failed += 1
            continue
        print("ok - %s" % name)
    sys.exit(1 if failed else 0)
