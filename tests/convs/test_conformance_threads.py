"""Conformance: two threads serving one eval model.

A served model runs requests in several threads at once, ``no_grad`` in one
and ``inference_mode`` in another. ``inference_mode`` forwards clear a
variant's kernel cache, so a cache that re-read its attribute after filling
it could hand the other thread ``None`` (a TypeError in ``F.conv2d``) or a
kernel of other weights. Here two threads hammer one eval layer for a
bounded number of iterations, with cache invalidations in between, and
every output must equal the single-threaded one, for every registered
variant (see ``docs/conformance.md``).
"""
import contextlib
import sys
import threading

import pytest
import torch
from test_conv_contract import VARIANTS, build, inputs

from mmconvplug.convs import kernel_cache as kernel_cache_module

#: Forwards per thread (a bounded hammer; the forced interleaving below is
#: what catches the race every time).
ITERATIONS = 300

CACHING = [n for n in VARIANTS if hasattr(build(n), 'kernel_cache')]


@pytest.fixture
def frequent_thread_switches():
    """Switch threads every 10 us instead of every 5 ms."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.parametrize('name', VARIANTS)
def test_two_threads_share_one_eval_model(name, frequent_thread_switches):
    layer = build(name).eval()
    x = inputs(layer, batch=1, size=(5, 5))
    with torch.no_grad():
        expected = layer(x)
    errors = []
    barrier = threading.Barrier(2)

    def serve(context, invalidate):
        try:
            barrier.wait()
            for step in range(ITERATIONS):
                with context():
                    out = layer(x)
                if not torch.equal(out, expected):
                    raise AssertionError(
                        f'step {step}: output differs by '
                        f'{(out - expected).abs().max():.3g}')
                if invalidate and step % 7 == 0:
                    cache = getattr(layer, 'kernel_cache', None)
                    if cache is not None:
                        cache.clear()
        except Exception as error:  # reported by the main thread
            errors.append(f'{context.__name__}: {type(error).__name__}: '
                          f'{error}')

    threads = [
        threading.Thread(target=serve, args=(torch.no_grad, False)),
        threading.Thread(target=serve, args=(torch.inference_mode, True)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), 'a thread hangs'
    assert errors == []


@pytest.mark.parametrize('name', CACHING)
def test_a_clear_while_a_forward_fills_the_cache_does_not_reach_it(
        name, monkeypatch):
    """The race, forced: thread A (``no_grad``) has composed its kernel and
    not yet returned it when thread B's ``inference_mode`` forward clears
    the cache. A must still convolve with the kernel it composed."""
    layer = build(name).eval()
    x = inputs(layer)
    with torch.no_grad():
        expected = layer(x)
    layer.kernel_cache.clear()
    thread_a = threading.current_thread()
    go_b, b_done = threading.Event(), threading.Event()
    real_full_precision = kernel_cache_module.full_precision

    @contextlib.contextmanager
    def full_precision_then_thread_b():
        with real_full_precision():
            yield
        # A leaves the composition's context: let B run to completion now.
        if threading.current_thread() is thread_a and not go_b.is_set():
            go_b.set()
            assert b_done.wait(60), 'thread B did not finish'

    results = {}

    def thread_b():
        go_b.wait(60)
        try:
            with torch.inference_mode():
                results['b'] = layer(x)
        finally:
            b_done.set()

    monkeypatch.setattr(kernel_cache_module, 'full_precision',
                        full_precision_then_thread_b)
    other = threading.Thread(target=thread_b)
    other.start()
    try:
        with torch.no_grad():
            out = layer(x)
    finally:
        go_b.set()
        other.join(60)
    assert go_b.is_set() and b_done.is_set()  # the interleaving happened
    assert torch.equal(out, expected)
    assert torch.equal(results['b'], expected)
    with torch.no_grad():  # and the cache works afterwards
        assert torch.equal(layer(x), expected)
