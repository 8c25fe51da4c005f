"""mmconvplug.analysis: timing, memory, parameters, output differences,
tables. No timed assertions: only what the functions count and compute."""
import pytest
import torch
from torch import nn

from mmconvplug.analysis import (
    compare_outputs,
    count_flops,
    count_parameters,
    format_table,
    interleaved_medians,
    interleaved_samples,
    output_difference,
    peak_memory_bytes,
    ratio_spread,
    spread,
)
from mmconvplug.analysis.memory import rss_peak_supported


def test_interleaved_medians_calls_each_function_once_per_round():
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in 'abc'}
    prepared = []
    medians = interleaved_medians(calls, repeats=3, warmup=2,
                                  before_each=lambda: prepared.append(1))
    assert set(medians) == set('abc')
    assert all(value >= 0 for value in medians.values())
    # 2 warm-up rounds in order, then 3 timed rounds (shuffled)
    assert ''.join(order[:6]) == 'abc' * 2
    assert all(sorted(order[i:i + 3]) == list('abc')
               for i in range(6, 15, 3))
    assert len(prepared) == 15
    with pytest.raises(ValueError, match='repeats must be >= 1'):
        interleaved_medians(calls, repeats=0)


def test_interleaved_medians_are_medians_of_a_fake_clock():
    ticks = iter([0, 1, 10, 12, 20, 25])  # durations 1, 2, 5

    def clock():
        return next(ticks)

    medians = interleaved_medians({'x': lambda: None}, repeats=3, warmup=0,
                                  clock=clock)
    assert medians == {'x': 2}


def test_samples_are_paired_per_round_and_spreads_are_quartiles():
    # round 1: x 1, y 2; round 2: x 4, y 4; round 3: x 3, y 6 (each call
    # advances a fake clock by its duration, whatever the round's order)
    now = [0.0]
    durations = {'x': iter([1, 4, 3]), 'y': iter([2, 4, 6])}

    def advance(name):
        now[0] += next(durations[name])

    samples = interleaved_samples(
        {name: (lambda name=name: advance(name)) for name in 'xy'},
        repeats=3, warmup=0, clock=lambda: now[0])
    assert samples == {'x': [1, 4, 3], 'y': [2, 4, 6]}
    # per-round ratios 0.5, 1.0, 0.5: not the ratio of medians (3/4)
    ratios = ratio_spread(samples['x'], samples['y'])
    assert (ratios.q1, ratios.median, ratios.q3) == (0.5, 0.5, 0.75)
    assert ratios.count == 3 and ratios.iqr == 0.25
    assert ratios.format() == '0.50 (0.50-0.75)'
    assert spread(range(1, 10)) == spread([9, 1, 8, 2, 7, 3, 6, 4, 5])
    assert (spread(range(1, 10)).q1, spread(range(1, 10)).q3) == (3, 7)
    assert spread([2.0]).iqr == 0
    assert spread([1.0, 3.0]).median == 2.0
    with pytest.raises(ValueError, match='at least one value'):
        spread([])
    with pytest.raises(ValueError, match='paired samples'):
        ratio_spread([1.0], [1.0, 2.0])


def test_rounds_are_shuffled_so_no_call_always_follows_the_same_one():
    """Each round calls every function once, in a seeded order that changes
    between rounds: over the rounds a function has more than one
    predecessor (a rotated order would always give it the same one)."""
    called = []
    calls = {name: (lambda name=name: called.append(name))
             for name in 'abcd'}
    samples = interleaved_samples(calls, repeats=8, warmup=0)
    rounds = [''.join(called[i:i + 4]) for i in range(0, 32, 4)]
    assert all(sorted(r) == list('abcd') for r in rounds)
    assert len(set(rounds)) > 1
    predecessors = {r[(r.index('a') - 1) % 4] for r in rounds}
    assert len(predecessors) > 1
    assert {name: len(values) for name, values in samples.items()} == {
        name: 8 for name in 'abcd'}
    called.clear()
    interleaved_samples(calls, repeats=8, warmup=0)
    assert [''.join(called[i:i + 4]) for i in range(0, 32, 4)] == rounds


def test_warm_calls_are_timed_right_after_an_untimed_call_of_themselves():
    called = []
    calls = {name: (lambda name=name: called.append(name))
             for name in 'abc'}
    samples = interleaved_samples(calls, repeats=5, warmup=0, warm=['b'])
    assert called.count('b') == 10 and called.count('a') == 5
    # every timed b follows an untimed b: the b's come in pairs
    runs = ''.join(called).replace('bb', '')
    assert 'b' not in runs
    assert len(samples['b']) == 5
    with pytest.raises(ValueError, match=r"warm names \['z'\]"):
        interleaved_samples(calls, repeats=1, warm=['z'])


def test_peak_memory_of_a_train_step_holds_its_activations():
    conv = nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(1, 8, 256, 256, requires_grad=True)
    activation = 8 * 256 * 256 * 4  # bytes of the conv output (2 MiB)

    def step():
        conv(x).relu().sum().backward()

    assert peak_memory_bytes(step) >= activation
    if rss_peak_supported():
        assert peak_memory_bytes(step, method='rss') >= activation
    with pytest.raises(ValueError, match="'timeline' or 'rss'"):
        peak_memory_bytes(step, method='psutil')


def test_parameter_counts_and_flops_of_a_conv():
    conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
    frozen = nn.Sequential(conv, nn.BatchNorm2d(8))
    frozen[1].requires_grad_(False)
    assert count_parameters(frozen) == 4 * 8 * 9 + 16
    assert count_parameters(frozen, trainable_only=True) == 4 * 8 * 9
    # one multiply-add per weight per output pixel
    assert count_flops(conv, torch.randn(1, 4, 5, 5)) == 4 * 8 * 9 * 25


def test_output_difference_of_a_model_with_itself_and_a_perturbed_copy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    x = torch.randn(2, 3, 8, 8)
    assert output_difference(model, model, x).max_abs_error == 0
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other[0].bias.add_(0.5)
    diff = output_difference(model, other, x)
    assert diff.max_abs_error == pytest.approx(0.5, abs=1e-6)
    assert not diff.within(1e-3) and diff.worst()[0] == 'out'
    assert model.training  # the mode is restored


def test_compare_outputs_refuses_different_structures():
    a = [('out.0', torch.zeros(2, 3))]
    with pytest.raises(ValueError, match='gives 1 output tensors but'):
        compare_outputs(a, [])
    with pytest.raises(ValueError, match=r'shape \(2, 3\)'):
        compare_outputs(a, [('out.0', torch.zeros(3, 2))])


def test_format_table_text_and_markdown():
    text = format_table(['name', 'value'], [['a', 1], ['bb', 22]])
    assert 'name' in text and '22' in text and '+' in text
    markdown = format_table(['name', 'value'], [['a', 1]], markdown=True)
    lines = markdown.splitlines()
    assert lines[0].startswith('|') and set(lines[1]) <= set('|:- ')
    with pytest.raises(ValueError, match='has 1 cells'):
        format_table(['name', 'value'], [['a']])
