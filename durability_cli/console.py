"""The command line's boundary with the process: the stderr console, one `Error:` line and an
exit code for every failure (the project's errors, a closed pipe, Ctrl-C, a bug), JSON on stdout,
and the entry point that turns the option parser's own errors into the same one line."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from durability_cli.errors import DurabilityError


# Tables on a pipe or in a log get a width that fits them, not the 80 columns rich assumes.
class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader of stderr went away (`2>&1 | head`): rich would exit 1; stop quietly (run_command)."""
        self.quiet = True
        raise BrokenPipeError


err = _Console(stderr=True, width=None if sys.stderr is not None and sys.stderr.isatty() else 120)


def run_command(debug: bool, fn):
    """Call ``fn`` and turn the project's errors into one line on stderr and an exit code; SIGTERM
    is taken as Ctrl-C is (its clean-up runs), exit 143, and SIGHUP (a closed terminal or ssh
    session) likewise, exit 129."""
    with _terminate_as_interrupt():
        return _run(debug, fn)


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM raises errors.Terminated (SIGHUP errors.HungUp) in the main thread while the block
    runs, where it would otherwise end the process at once and leave temporary files behind; a
    handler someone else installed (training's stop_signals installs its own inside, nohup
    ignores SIGHUP) is left alone."""
    import signal
    import threading

    from durability_cli.errors import raise_hung_up, raise_terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = {signal.SIGTERM: raise_terminated}
    if hasattr(signal, "SIGHUP"):  # not on Windows
        wanted[signal.SIGHUP] = raise_hung_up
    previous = {
        sig: signal.signal(sig, handler)
        for sig, handler in wanted.items()
        if signal.getsignal(sig) in (signal.SIG_DFL, None)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(debug: bool, fn):
    from durability_cli.errors import HungUp, Terminated

    try:
        return fn()
    except HungUp:  # the terminal may be gone: the message is best effort
        with contextlib.suppress(OSError):
            err.print("Hung up.")
        raise typer.Exit(129) from None
    except Terminated:
        err.print("Terminated.")
        raise typer.Exit(143) from None
    except DurabilityError as exc:
        if debug:
            raise
        if not _main_process():  # torchrun: every rank hits the same error; rank 0 says it
            import time

            time.sleep(1.0)  # torchrun stops the job at the first exit: let rank 0 print first
            raise typer.Exit(exc.exit_code) from None
        error_line(exc.cli_message())
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        _quiet_broken_pipe()
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130) from None
    except OSError as exc:  # disk full, stdout closed, ...: not the user's input, still one line
        if debug:
            raise
        error_line(f"{exc.strerror or exc} ({type(exc).__name__}); rerun with --debug for details")
        raise typer.Exit(1) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug: say so in one line; --debug shows the traceback
        if debug:
            raise
        error_line(f"unexpected {type(exc).__name__}: {exc}; rerun with --debug and report it")
        raise typer.Exit(1) from None


def error_line(message: str) -> None:
    """One line on stderr, whatever the message holds ([brackets] or line breaks from the data)."""
    from durability_cli.errors import one_line

    message = one_line(message)
    try:
        err.print("[bold red]Error:[/] ", end="", highlight=False)
        err.print(message, markup=False, highlight=False, soft_wrap=True)
    except (OSError, ValueError, AttributeError):  # stderr closed or full: the exit code still tells
        pass


def _main_process() -> bool:
    from durability_cli.parallel import main_process

    return main_process()


def _quiet_broken_pipe() -> None:
    """The reader of stdout went away (`| head`): stop quietly, as Unix tools do."""
    import contextlib
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    with contextlib.suppress(OSError, ValueError, AttributeError):  # the reader of stderr may be gone too
        os.dup2(devnull, sys.stderr.fileno())
    raise typer.Exit(0)


def write_json(info: dict, path: str | None = None) -> None:
    """``info`` as indented JSON to ``path`` (atomically), or to stdout."""
    text = json.dumps(info, indent=2) + "\n"
    if path:
        from durability_cli.io import atomic_path

        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    else:
        if sys.stdout is None:  # started with stdout closed (`>&-`)
            from durability_cli.errors import InputError

            raise InputError("stdout: is closed; give -o FILE, or leave stdout open")
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            raise  # the reader went away: run_command ends quietly
        except OSError as exc:  # `> /dev/full`: name stdout, as the tables' writer does
            from durability_cli.io import drop_stdout

            drop_stdout()
            raise DurabilityError(f"stdout: could not write the output ({exc.strerror or exc})") from None


def run_app(app) -> None:
    """Run ``app`` as the console entry point. Usage errors that the option parser finds (an
    unknown option, a missing argument, a value of the wrong type) are one line and exit code 2,
    like every other bad input, instead of the parser's framed box."""
    try:
        code = app(standalone_mode=False, prog_name="durability")
    except Exception as exc:  # the parser's exceptions, told apart by what they carry
        name = type(exc).__name__
        if name == "NoArgsIsHelpError":  # `durability` or `durability plot` alone
            text = exc.format_message()  # Typer has printed the help; plain click hands it over
            if text:
                print(text)
            sys.exit(exc.exit_code)
        if name == "Abort":  # end of input at a prompt
            err.print("Aborted.", highlight=False)
            sys.exit(1)
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "durability"
        message = " ".join(exc.format_message().replace("Value error, ", "").split()).rstrip(".")
        sep = " " if message.endswith("?") else "; "  # "... Did you mean 'forecast'? see ..."
        err.print(f"Error: {message}{sep}see {command} --help", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
