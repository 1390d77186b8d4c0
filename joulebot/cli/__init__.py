"""The `joulebot` command: the terminal front end (ask, compare, history, stats, bench), the
measurement worker, the meters, and the services (boxes, models, carbon, the dashboard, the bots).

`parser.py` holds every command and its help; each command's function lives in the module of its
group and is imported only when that command runs, so `joulebot ask` loads none of the others.
"""

from __future__ import annotations

import argparse
import os
import sys

from joulebot.config import SettingsError, get_settings


def main(argv: list[str] | None = None) -> None:
    """The `joulebot` command. A setting that cannot work is one line naming it, exit 2, wherever it shows."""
    from joulebot.cli.console import fail
    from joulebot.cli.parser import build_parser
    from joulebot.config.files import private_dir

    try:
        settings = get_settings()  # every setting, before any command runs
        if settings.data_dir.exists():
            private_dir(settings.data_dir)  # one made by an older joulebot may be 0755 with 0644 files
        args = vars(build_parser().parse_args(argv))
        handler = args.pop("handler")
        if isinstance(handler, argparse.ArgumentParser):  # `joulebot` or `joulebot meter` alone
            handler.print_help()
            sys.exit(2)
        handler.load()(**args)
    except SettingsError as exc:
        raise fail(str(exc), 2) from None
    except KeyboardInterrupt:  # a command that does not handle Ctrl-C itself: no traceback
        print("\nAborted!", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # `joulebot history --csv | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
