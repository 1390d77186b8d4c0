"""The estimate meter's windows share one sampling thread: readings as a thread per window gave."""

import threading
import time

import pytest

from joulebot.metering.estimate import BusyTime, EstimateMeter
from joulebot.metering.power_figures import configured
from joulebot.metering.sample_feed import SampleFeed
from joulebot.metering.sampling import MeterUnavailable, SampledWindow

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket

MODEL = configured(5.0, 10.0)
BUSY_CORES = 0.5  # the counter below: half a core busy, always
# a read is stamped at the middle of its call, its value taken somewhere in it: 1 ms off at 5 W
ABS_J = MODEL.per_core_w * BUSY_CORES * 0.001


def busy_counter() -> float:
    """A busy-CPU counter that rises exactly with time: every window's figure is known in advance."""
    return BUSY_CORES * time.perf_counter()


def window(feed: SampleFeed | None, sample=busy_counter) -> SampledWindow:
    return SampledWindow(sample, 0.01, "estimate", "machine", BusyTime(MODEL), accuracy=0.0, measured=False, feed=feed)


def expected_j(w: SampledWindow) -> float:
    """The window's figure from the counter: the first read's value holds back to the window's start,
    the end is interpolated between the reads around it."""
    assert w.end is not None
    return MODEL.joules(w.end - w.start, BUSY_CORES * (w.end - w.samples[0][0]))


def samplers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "estimate-sampler" and t.is_alive()]


def test_windows_on_a_feed_read_as_windows_with_their_own_thread():
    feed = SampleFeed(busy_counter, 0.01, "estimate-sampler", MeterUnavailable)
    for own in (None, feed):
        w = window(own)
        time.sleep(0.1)
        reading = w.stop()
        assert reading.joules == pytest.approx(expected_j(w), abs=ABS_J)
        assert reading.samples >= 3  # the start, reads while open, the end
        times = [t for t, _ in w.samples]
        assert times == sorted(set(times)) and w.start <= times[0] and times[-1] >= w.end


def test_overlapping_windows_each_get_the_reads_of_their_own_time():
    feed = SampleFeed(busy_counter, 0.01, "estimate-sampler", MeterUnavailable)
    outer = window(feed)
    time.sleep(0.05)
    inner = window(feed)
    time.sleep(0.05)
    inner_reading = inner.stop()
    time.sleep(0.05)
    outer_reading = outer.stop()
    assert outer_reading.joules == pytest.approx(expected_j(outer), abs=ABS_J)
    assert inner_reading.joules == pytest.approx(expected_j(inner), abs=ABS_J)
    assert inner.end is not None and inner.samples[0][0] >= inner.start
    assert all(t <= inner.end for t, _ in inner.samples[:-1])  # no read of the outer's time after its end
    assert outer_reading.samples > inner_reading.samples


def test_one_meter_keeps_one_sampling_thread_across_its_windows():
    meter = EstimateMeter.configured(5.0, 10.0)
    before = len(samplers())
    for _ in range(20):
        meter.start().stop()
    assert len(samplers()) == before + 1  # one for this meter, alive between answers


def test_a_failed_read_ends_the_open_windows_and_the_next_window_reads_again():
    failing = threading.Event()

    def sample() -> float:
        if failing.is_set():
            raise MeterUnavailable("the counters are gone")
        return busy_counter()

    feed = SampleFeed(sample, 0.01, "estimate-sampler", MeterUnavailable)
    w = window(feed, sample)
    failing.set()
    time.sleep(0.1)
    reading = w.stop()
    assert reading.joules is None and reading.error == "the counters are gone"
    failing.clear()
    again = window(feed, sample)
    time.sleep(0.05)
    assert again.stop().joules == pytest.approx(expected_j(again), abs=ABS_J)
    assert len(again.samples) >= 3
