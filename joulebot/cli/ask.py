"""`joulebot ask` and `joulebot compare`: a question through the same queue and worker as the chat
bots, then the wait for its answer (the spinner, the streamed text, Ctrl-C).

In embedded mode the first question starts the embedded Redis and worker; they stay up for a while
so the next question is fast. This path imports neither rich (until a progress report comes) nor
the history's database libraries (unless --continue reads the last conversation).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from joulebot.attachments.kept import KeptImages
from joulebot.chat.asking import InputError, build_request
from joulebot.chat.footer import energy_ratio, footer
from joulebot.chat.status import status_text
from joulebot.cli.console import Spinner, fail, print_json, say, settled
from joulebot.cli.store import cli_user, open_store
from joulebot.config import Settings, get_settings
from joulebot.exchange import Request, Result, Units
from joulebot.queueing.client import JobError, NoBox, QueueClient, QueueUnavailable

if TYPE_CHECKING:
    from joulebot.attachments.parts import Attached
    from joulebot.queueing.client import Job


def _requests(
    settings: Settings,
    models: list[str | None],
    prompt: str,
    units: Units | None,
    box: str | None = None,
    attached: Attached | None = None,
) -> list[Request]:
    """Validated Requests with their box chosen (all on one box); exit 2 on bad input."""
    from joulebot.queueing.catalog import catalog_for_front_end

    catalog = catalog_for_front_end(settings)
    try:
        requests = [
            build_request(
                settings,
                catalog,
                platform="cli",
                user_id=cli_user(),
                prompt=prompt,
                model=m,
                units=units,
                attached=attached,
            )
            for m in models
        ]
        return QueueClient(settings).route(requests, box)
    except (InputError, NoBox) as exc:
        raise fail(str(exc), 2) from None
    except JobError as exc:
        raise fail(str(exc)) from None


def _attached(settings: Settings, image_paths: list[Path], file_paths: list[Path]) -> Attached:
    """The images and text files named on the command line, read and checked; exit 2 with one line if not.
    Pillow is imported only when an image is given."""
    from joulebot.attachments.parts import Attached, AttachmentError
    from joulebot.attachments.text_files import check_file_size, read_text_file

    try:
        images = []
        if image_paths:
            from joulebot.attachments.images import check_count, check_size, image_limits, read_images

            limits = image_limits(settings)
            check_count(len(image_paths), limits)
            for path in image_paths:
                check_size(path.name, _size(path), limits)
            images = read_images([(path.name, _read(path)) for path in image_paths], limits)
        files = []
        for path in file_paths:
            check_file_size(path.name, _size(path), settings.max_file_chars)
            files.append(read_text_file(path.name, _read(path), settings.max_file_chars))
    except AttachmentError as exc:
        raise fail(f"{exc}; nothing was queued", 2) from None
    return Attached(images=images, files=files)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}", 2) from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}", 2) from None


def _follow_streaming(client: QueueClient, job: Job, spinner: Spinner) -> Result:
    """Wait for one job, printing its answer as the worker publishes it; the rest once it is done."""
    printed = ""
    while (result := client.poll(job, 1)) is None:
        partial = settled(client.partial(job.id) or "")
        if len(partial) > len(printed) and partial.startswith(printed):
            if not printed:
                spinner.stop()
            say(partial[len(printed) :], end="")
            printed = partial
        elif not printed:
            spinner.update(status_text(client.progress(job)))
    spinner.stop()
    say(result.answer[len(printed) :] if result.answer.startswith(printed) else "\n" + result.answer)
    return result


def _submit(client: QueueClient, requests: list[Request], jobs: list[Job]) -> None:
    """Queue the requests in order, each job into `jobs` as it is queued (a Ctrl-C between them leaves
    the queued ones there to be cancelled)."""
    for request in requests:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # no Ctrl-C between queueing and noting it
        try:
            jobs.append(client.submit(request))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _wait(client: QueueClient, jobs: list[Job], results: list[Result], quiet: bool, stream: bool) -> None:
    """Each job's Result into `results` as it comes, with the spinner (or, one job streaming, its text)."""
    spinner = Spinner()
    try:
        if stream and len(jobs) == 1:
            results.append(_follow_streaming(client, jobs[0], spinner))
            return
        for number, job in enumerate(jobs, start=1):
            label = f"[{number}/{len(jobs)}] " if len(jobs) > 1 else ""
            show = None if quiet else (lambda p, label=label: spinner.update(f"{label}{status_text(p)}"))
            results.append(client.wait(job, show))
    finally:
        spinner.stop()


def _run(settings: Settings, requests: list[Request], quiet: bool, stream: bool = False) -> list[Result]:
    """Queue the requests (in order, on the same worker) and wait for all Results.

    With `stream` (one request), its answer is printed as it is generated.
    Ctrl-C at any point cancels what has not started (nothing recorded) and leaves a
    running answer to finish and be stored.
    """
    client = QueueClient(settings)
    jobs: list[Job] = []
    results: list[Result] = []
    try:
        _submit(client, requests, jobs)
        _wait(client, jobs, results, quiet, stream)
    except QueueUnavailable as exc:
        if not jobs:  # nothing was queued
            raise fail(str(exc)) from None
        raise fail("the queue went away while waiting; your answer may still be stored: joulebot history") from None
    except JobError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        try:
            cancelled = [client.cancel(job) for job in jobs[len(results) :]]  # every one, not just up to a running one
        except QueueUnavailable:
            raise fail("stopped waiting; the queue does not answer, so nothing could be cancelled", 130) from None
        if all(cancelled):
            raise fail("cancelled before it ran; nothing was recorded", 130) from None
        raise fail("stopped waiting; the answer is still being made and will be in `joulebot history`", 130) from None
    return results


def _continuing(settings: Settings, request: Request, continue_last: bool, system: str | None) -> Request:
    """The request with its system prompt and, with --continue, your last conversation before it."""
    from joulebot.chat.context import Context, kept_images

    context = Context()
    if continue_last:
        store = open_store(settings)
        last = store.recent("cli", cli_user(), 1)
        thread = store.thread(last[0].id) if last and last[0].id is not None else []
        if not thread:
            say("joulebot: no earlier exchange to continue; this starts a new conversation", stderr=True)
        else:  # your earlier questions' images, where KEEP_IMAGES kept them
            context = Context.after(thread, kept_images(KeptImages.of(settings), "cli", lambda _: cli_user()))
    if system is not None and len(system) > settings.max_prompt_chars:
        raise fail(f"the system prompt has {len(system)} characters; the maximum is {settings.max_prompt_chars}", 2)
    return context.apply(request, system if system is not None else (settings.system_prompt or None))


def ask(
    prompt: str,
    model: str | None,
    units: Units | None,
    as_json: bool,
    box: str | None,
    continue_last: bool,
    system: str | None,
    no_stream: bool,
    images: list[Path] | None = None,
    files: list[Path] | None = None,
    verbose: bool = False,
) -> None:
    """One model, one question: the answer as it is generated, then its footer (or the Result as JSON)."""
    settings = get_settings()
    attached = _attached(settings, images or [], files or [])
    (request,) = _requests(settings, [model], prompt, units, box, attached)
    request = _continuing(settings, request, continue_last, system)
    if request.images and (kept := KeptImages.of(settings)) is not None:  # for the conversation's later turns
        kept.keep("cli", cli_user(), request.images)
    stream = not (as_json or no_stream)
    request.stream = stream
    (result,) = _run(settings, [request], quiet=as_json, stream=stream)
    if as_json:
        print_json(result.model_dump_json())
        return
    if not stream:
        say(result.answer)
    say()
    say(footer(result, public_url=settings.public_url, verbose=verbose))


def compare(
    model_a: str,
    model_b: str,
    prompt: str,
    units: Units | None,
    as_json: bool,
    box: str | None,
    verbose: bool = False,
) -> None:
    """Two models, one question, one after the other on the same box: the ratio compares like with like."""
    settings = get_settings()
    requests = _requests(settings, [model_a, model_b], prompt, units, box)
    a, b = _run(settings, requests, quiet=as_json)
    if as_json:
        print_json(json.dumps({"a": a.model_dump(mode="json"), "b": b.model_dump(mode="json")}))
        return
    for tag, result in (("A", a), ("B", b)):
        say(f"── {tag}: {result.model} ──")
        say(result.answer)
        say()
        say(footer(result, public_url=settings.public_url, verbose=verbose))
        say()
    say(energy_ratio(a, b))
