"""The ``tembench`` command line: parse, call :mod:`tembench.api`, print. No logic here.

One module per command group, each registering its commands on the Typer ``app`` of
:mod:`tembench.cli.app` (which also holds the shared, validated options): ``profile`` (list, profile),
``claims``, ``eval`` (eval, metrics, data), ``results``, ``report``, ``check`` (check, compare, sanity).
Errors from the library (:class:`~tembench.errors.TembenchError`) become one line on stderr and a
non-zero exit (2 for bad input); ``--debug`` anywhere on the command line (or ``TEMBENCH_DEBUG=1``)
shows the traceback.
"""
from __future__ import annotations

import os
import sys
import traceback

import typer

try:  # typer >= 0.22 vendors click as typer._click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

# each command module registers its commands on `app`, in this order in --help
from tembench.cli import profile  # noqa: F401,I001  (list, profile)
from tembench.cli import claims  # noqa: F401
from tembench.cli import eval  # noqa: F401  (eval, metrics, data)
from tembench.cli import results  # noqa: F401
from tembench.cli import report  # noqa: F401
from tembench.cli import check  # noqa: F401  (check, compare, sanity)
from tembench.cli.app import app, err
from tembench.errors import TembenchError
from tembench.signals import sigterm_as_interrupt

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """The ``tembench`` entry point: one line on stderr and a non-zero exit for every error (the traceback
    too with ``--debug`` anywhere on the command line, or ``TEMBENCH_DEBUG=1``); SIGTERM stops a command
    as Ctrl-C does, so a killed measurement keeps what it measured."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("TEMBENCH_DEBUG", "") not in ("", "0")
    args, registries, builtin = _global_options([a for a in args if a != "--debug"])
    from tembench.registry import configure

    configure(registries, builtin)
    try:
        # without standalone mode, typer returns the exit code of typer.Exit (130 for Ctrl-C)
        with sigterm_as_interrupt():
            rv = app(args=args, prog_name="tembench", standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except click_exceptions.ClickException as e:
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err(f"error: {e.format_message().replace('Value error, ', '')}{hint}")
        sys.exit(e.exit_code)
    except typer.Abort:
        err("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)
    except TembenchError as e:
        if debug:
            traceback.print_exc()
        err(f"error: {e}")
        sys.exit(e.exit_code)
    except Exception as e:  # noqa: BLE001 -- one line unless --debug
        if debug:
            traceback.print_exc()
        err(f"error: {type(e).__name__}: {e} (run with --debug for the traceback)")
        sys.exit(1)
    if isinstance(rv, int) and rv:
        if rv == 130:
            err("interrupted")
        sys.exit(rv)
    sys.exit(0)


def _global_options(args: list[str]) -> tuple[list[str], list[str], bool]:
    """Take ``--registry DIR`` (repeatable, also ``--registry=DIR``) and ``--no-builtin`` out of the command
    line wherever they are: (the rest, the directories, whether the built-in registry is included)."""
    rest, dirs, builtin, i = [], [], True, 0
    while i < len(args):
        a = args[i]
        if a == "--no-builtin":
            builtin = False
        elif a == "--registry" and i + 1 < len(args):
            dirs.append(args[i + 1])
            i += 1
        elif a.startswith("--registry="):
            dirs.append(a.split("=", 1)[1])
        else:
            rest.append(a)
        i += 1
    return rest, dirs, builtin


if __name__ == "__main__":
    main()
