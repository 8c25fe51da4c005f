"""The fused CPU kernels (``mmconvplug/convs/cpu_kernels.py``) compute what
the eager ops compute, for every case they take, and step aside for every
case they do not."""
import subprocess
import sys

import pytest
import torch

from mmconvplug.convs import (
    CondConv,
    DOConv,
    RefConv,
    cond_conv_ops,
    cpu_kernels,
    do_conv_ops,
)
from mmconvplug.convs.cond_conv_ops import mix_experts
from mmconvplug.convs.do_conv_ops import compose_do_kernel
from mmconvplug.convs.ref_conv_ops import refocus_kernel

F64 = torch.float64


@pytest.fixture(scope='module')
def kernels():
    """The built module; a build failure fails these tests (never skips)."""
    return cpu_kernels.load_kernels(raise_error=True)


@pytest.fixture(autouse=True)
def _fused_at_every_size(monkeypatch):
    """DO-Conv takes the fused kernels from 2**19 kernel entries, CondConv
    from 2**18 entries per expert and 2 threads; these tests use small
    shapes (and the suite may run on one thread), so the thresholds are
    lifted."""
    monkeypatch.setattr(do_conv_ops, 'FUSED_MIN_KERNEL_NUMEL', 0)
    monkeypatch.setattr(cond_conv_ops, 'FUSED_MIN_KERNEL_NUMEL', 0)
    monkeypatch.setattr(cond_conv_ops, 'FUSED_MIN_THREADS', 1)


@pytest.fixture
def two_threads():
    """Two intra-op threads (pytest may run on one): the kernels' parallel
    chunks, and the per-chunk partial sums of the small gradients, run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def eager(monkeypatch):
    """Runs the block with the kernels off (the eager ops)."""
    def use_eager():
        monkeypatch.setenv(cpu_kernels.ENV_VAR, '0')
    return use_eager


def _do_grads(weight, depthwise, groups, grad):
    weight = weight.detach().requires_grad_()
    depthwise = depthwise.detach().requires_grad_()
    kernel = compose_do_kernel(weight, depthwise, groups)
    kernel.backward(grad)
    return kernel.detach(), weight.grad, depthwise.grad


# (C_out, C_in, groups, k*k, D_mul): dense 3x3, D_mul > k*k, grouped,
# depthwise, depthwise with a depth multiplier, 5x5, 1x3, a grouped layer
# large enough for the D gradient's per-chunk partial sums (one chunk per
# thread from 2**16 multiply-adds; run on 2 threads), and a dense 3x3 with
# more output channels than one 64-row block (plus a part block).
DO_CASES = [(16, 8, 1, 9, 9), (12, 8, 1, 9, 13), (12, 8, 4, 9, 11),
            (8, 8, 8, 9, 9), (24, 8, 8, 9, 9), (6, 4, 2, 25, 25),
            (128, 70, 1, 3, 4), (96, 64, 2, 9, 10), (160, 16, 1, 9, 9)]


@pytest.mark.parametrize('out_ch,in_ch,groups,taps,d_mul', DO_CASES)
def test_do_composition_equals_the_eager_ops_in_float64(
        kernels, eager, two_threads, out_ch, in_ch, groups, taps, d_mul):
    weight = torch.randn(out_ch, in_ch // groups, d_mul, dtype=F64)
    depthwise = torch.randn(in_ch, taps, d_mul, dtype=F64)
    grad = torch.randn(out_ch, in_ch // groups, taps, dtype=F64)
    assert cpu_kernels.usable(weight, depthwise)
    fused = _do_grads(weight, depthwise, groups, grad)
    eager()
    assert not cpu_kernels.usable(weight, depthwise)
    reference = _do_grads(weight, depthwise, groups, grad)
    for ours, theirs in zip(fused, reference):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    # The formula itself (independent of both): a per-slot einsum.
    per_slot = depthwise.reshape(groups, in_ch // groups, taps, d_mul)
    outs = weight.reshape(groups, out_ch // groups, in_ch // groups, d_mul)
    formula = torch.einsum('gcsd,gocd->gocs', per_slot, outs).reshape(
        fused[0].shape)
    torch.testing.assert_close(fused[0], formula, rtol=1e-12, atol=1e-12)


def test_do_composition_float32_matches_float64(kernels):
    weight = torch.randn(64, 32, 9, dtype=F64)
    depthwise = torch.randn(32, 9, 9, dtype=F64)
    grad = torch.randn(64, 32, 9, dtype=F64)
    exact = _do_grads(weight, depthwise, 1, grad)
    single = _do_grads(weight.float(), depthwise.float(), 1, grad.float())
    for ours, theirs in zip(single, exact):
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours.double(), theirs, rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize('needs', [(True, False), (False, True)])
def test_do_composition_computes_only_the_gradients_asked_for(kernels,
                                                              needs):
    weight = torch.randn(8, 4, 9, dtype=F64, requires_grad=needs[0])
    depthwise = torch.randn(4, 9, 9, dtype=F64, requires_grad=needs[1])
    compose_do_kernel(weight, depthwise, 1).sum().backward()
    assert (weight.grad is not None) == needs[0]
    assert (depthwise.grad is not None) == needs[1]


def test_fused_functions_pass_gradcheck(kernels):
    weight = torch.randn(6, 2, 9, dtype=F64, requires_grad=True)
    depthwise = torch.randn(4, 9, 9, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda w, d: compose_do_kernel(w, d, 2), (weight, depthwise))
    basis = torch.randn(3, 2, 3, 3, dtype=F64)
    refocus = torch.randn(6, 1, 3, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: refocus_kernel(basis, t, 6), (refocus, ))
    routing = torch.rand(3, 4, dtype=F64, requires_grad=True)
    experts = torch.randn(4, 37, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(mix_experts, (routing, experts))


def _refocus_grads(basis, refocus, map_groups, grad):
    refocus = refocus.detach().requires_grad_()
    kernel = refocus_kernel(basis, refocus, map_groups)
    kernel.backward(grad)
    return kernel.detach(), refocus.grad


# (C_out, C_in/groups, kernel, map): the paper's 3x3/3x3, a 5x5 kernel with
# the 3x3 map, a 5x5 map, a 3x1 kernel with a 3x1 map.
REFOCUS_CASES = [(8, 4, (3, 3), (3, 3)), (6, 4, (5, 5), (3, 3)),
                 (4, 2, (5, 5), (5, 5)), (4, 3, (3, 1), (3, 1))]


@pytest.mark.parametrize('out_ch,per_group,kernel,map_size', REFOCUS_CASES)
def test_refocus_equals_the_eager_conv_in_float64(kernels, eager,
                                                  two_threads, out_ch,
                                                  per_group, kernel,
                                                  map_size):
    num = out_ch * per_group
    basis = torch.randn(out_ch, per_group, *kernel, dtype=F64)
    refocus = torch.randn(num, 1, *map_size, dtype=F64)
    grad = torch.randn(out_ch, per_group, *kernel, dtype=F64)
    fused = _refocus_grads(basis, refocus, num, grad)
    eager()
    reference = _refocus_grads(basis, refocus, num, grad)
    for ours, theirs in zip(fused, reference):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def _mix_grads(routing, experts, grad):
    routing = routing.detach().requires_grad_()
    experts = experts.detach().requires_grad_()
    kernels = mix_experts(routing, experts)
    kernels.backward(grad)
    return kernels.detach(), routing.grad, experts.grad


# (N, E, K): CondConv's batch, experts and kernel entries. Blocks of 256
# columns with a remainder; one expert; a single example; 32 experts over
# more columns than one chunk per thread (the routing gradient's per-chunk
# partial sums, from 2**16 multiply-adds); an empty batch.
MIX_CASES = [(2, 4, 600), (3, 1, 256), (1, 8, 257), (4, 32, 2100),
             (0, 4, 300)]


@pytest.mark.parametrize('batch,experts,numel', MIX_CASES)
def test_expert_mixing_equals_the_matmul_in_float64(kernels, eager,
                                                    two_threads, batch,
                                                    experts, numel):
    routing = torch.rand(batch, experts, dtype=F64)
    weight = torch.randn(experts, numel, dtype=F64)
    grad = torch.randn(batch, numel, dtype=F64)
    fused = _mix_grads(routing, weight, grad)
    eager()
    reference = _mix_grads(routing, weight, grad)
    # The formula itself, independently of both paths.
    torch.testing.assert_close(
        fused[0], torch.einsum('ne,ek->nk', routing, weight), rtol=1e-12,
        atol=1e-12)
    for ours, theirs in zip(fused, reference):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('needs', [(True, False), (False, True)])
def test_expert_mixing_computes_only_the_gradients_asked_for(kernels,
                                                             needs):
    routing = torch.rand(2, 4, requires_grad=needs[0])
    experts = torch.randn(4, 300, requires_grad=needs[1])
    mix_experts(routing, experts).sum().backward()
    assert (routing.grad is not None) == needs[0]
    assert (experts.grad is not None) == needs[1]
    ours = routing.grad if needs[0] else experts.grad
    theirs = (torch.ones(2, 300) @ experts.t() if needs[0] else
              routing.t() @ torch.ones(2, 300))
    torch.testing.assert_close(ours, theirs.detach())


def test_small_expert_stacks_take_the_matmul(kernels, monkeypatch):
    """Below ``FUSED_MIN_KERNEL_NUMEL`` entries per expert, and on one
    thread, CondConv mixes with ``mm``; so it does under autocast (the
    routing weights are half precision there)."""
    monkeypatch.setattr(cond_conv_ops, 'FUSED_MIN_KERNEL_NUMEL', 301)
    monkeypatch.setattr(cond_conv_ops, 'FUSED_MIN_THREADS', 2)
    routing = torch.rand(2, 4, requires_grad=True)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert mix_experts(routing, torch.randn(4, 300)).grad_fn.name() == (
            'MmBackward0')
        assert 'MixExperts' in mix_experts(
            routing, torch.randn(4, 301)).grad_fn.name()
        torch.set_num_threads(1)
        assert mix_experts(routing, torch.randn(4, 301)).grad_fn.name() == (
            'MmBackward0')
    finally:
        torch.set_num_threads(threads)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        layer = CondConv(8, 8, 3, padding=1)
        kernels_, _ = layer.mixed_kernels(
            layer.routing_weights(torch.randn(2, 8, 5, 5)))
    assert kernels_.dtype == torch.bfloat16


def test_layers_train_the_same_with_and_without_the_kernels(kernels,
                                                            monkeypatch):
    """A DOConv, a RefConv and a CondConv (both of its paths) forward +
    backward, the kernels against the eager ops, float64: outputs and
    every gradient."""
    x = torch.randn(2, 6, 9, 9, dtype=F64)
    results = []
    for setting in ('1', '0'):
        monkeypatch.setenv(cpu_kernels.ENV_VAR, setting)
        torch.manual_seed(3)
        layers = [DOConv(6, 8, 3, padding=1, groups=2).double(),
                  RefConv(6, 8, 3, padding=1).double(),
                  CondConv(6, 8, 3, padding=1, num_experts=3,
                           strategy='grouped').double(),
                  CondConv(6, 8, 1, groups=2, num_experts=5,
                           strategy='unfold').double()]
        for layer in layers:
            with torch.no_grad():
                for tensor in layer.parameters():
                    tensor.normal_()
            out = layer(x)
            out.pow(2).sum().backward()
            results.append([out.detach()] +
                           [t.grad for t in layer.parameters()])
    half = len(results) // 2
    for fused, reference in zip(results[:half], results[half:]):
        for ours, theirs in zip(fused, reference):
            torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_the_kernels_step_aside_where_they_do_not_apply(kernels):
    cpu = torch.randn(4, 2, 9)
    assert cpu_kernels.usable(cpu)
    assert not cpu_kernels.usable(cpu.half())
    assert not cpu_kernels.usable(cpu.bfloat16())
    assert not cpu_kernels.usable(cpu, cpu.double())  # mixed dtypes
    assert not cpu_kernels.usable(torch.randn(4, 2, 9, device='meta'))
    # A grouped refocusing map (G < N) and a trainable basis: F.conv2d.
    from mmconvplug.convs.ref_conv_ops import _fused_refocus_applies
    basis = torch.randn(4, 2, 3, 3)
    assert _fused_refocus_applies(basis, torch.randn(8, 1, 3, 3), 8)
    assert not _fused_refocus_applies(basis, torch.randn(8, 2, 3, 3), 4)
    assert not _fused_refocus_applies(basis.requires_grad_(),
                                      torch.randn(8, 1, 3, 3), 8)


def test_small_do_conv_kernels_take_the_eager_ops(kernels, monkeypatch):
    """Below ``FUSED_MIN_KERNEL_NUMEL`` DO-Conv composes with ``bmm``
    (faster there); the values are the same either way."""
    monkeypatch.setattr(do_conv_ops, 'FUSED_MIN_KERNEL_NUMEL', 8 * 4 * 9 + 1)
    calls = []
    real = cpu_kernels.load_kernels

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cpu_kernels, 'load_kernels', counting)
    weight = torch.randn(8, 4, 9, requires_grad=True)
    compose_do_kernel(weight, torch.randn(4, 9, 9), 1).sum().backward()
    assert not calls
    compose_do_kernel(torch.randn(8, 5, 9, requires_grad=True),
                      torch.randn(5, 9, 9), 1).sum().backward()
    assert calls


@pytest.mark.parametrize('layer_type', ['DOConv', 'CondConv'])
def test_a_recorded_graph_takes_the_eager_ops(kernels, layer_type):
    """Tracing records the eager ops (plain tensor ops, exportable), not an
    opaque call into the extension."""
    layer = dict(DOConv=DOConv, CondConv=CondConv)[layer_type](
        4, 4, 3, padding=1).eval()
    traced = torch.jit.trace(layer, torch.randn(2, 4, 8, 8))
    graph = str(traced.inlined_graph)
    assert ('aten::bmm' if layer_type == 'DOConv' else 'aten::matmul') in (
        graph)
    assert 'PythonOp' not in graph
    assert 'do_compose' not in graph and 'expert_mix' not in graph


def test_results_do_not_depend_on_the_call(kernels):
    weight = torch.randn(256, 128, 9)
    depthwise = torch.randn(128, 9, 9)
    grad = torch.randn(256, 128, 9)
    first = _do_grads(weight, depthwise, 1, grad)
    second = _do_grads(weight, depthwise, 1, grad)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def _run_in_a_fresh_process(script, tmp_path, **env):
    """``script``'s stdout, run by this interpreter in a fresh process with
    an empty extension cache and ``env`` (no inherited environment)."""
    env = dict(env, TORCH_EXTENSIONS_DIR=str(tmp_path / 'ext'),
               PATH='/usr/bin:/bin', OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-c', script], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_failed_build_warns_once_and_the_layers_fall_back(tmp_path):
    """No compiler: one warning naming the cause and the fix, then the eager
    ops (the layer still trains). Run in a fresh process with a compiler
    that does not exist and an empty extension cache."""
    script = (
        'import warnings, torch\n'
        'from mmconvplug.convs import RefConv, cpu_kernels\n'
        'with warnings.catch_warnings(record=True) as caught:\n'
        '    warnings.simplefilter("always")\n'
        '    layer = RefConv(4, 4, 3, padding=1)\n'
        '    for _ in range(2):\n'
        '        layer(torch.randn(1, 4, 6, 6)).sum().backward()\n'
        'ours = [w for w in caught if "fused CPU kernels" in str(w.message)]\n'
        'assert len(ours) == 1, [str(w.message) for w in caught]\n'
        'print(ours[0].message)\n'
        'print(cpu_kernels.kernels_status())\n'
        'assert layer.refocus_weight.grad is not None\n')
    out = _run_in_a_fresh_process(script, tmp_path,
                                  CXX=str(tmp_path / 'no-such-compiler'))
    assert 'install a C++17 compiler and ninja' in out
    assert f'{cpu_kernels.ENV_VAR}=0' in out
    assert 'unavailable:' in out


def test_turned_off_the_kernels_are_never_built(tmp_path):
    script = ('import torch\n'
              'from mmconvplug.convs import RefConv, cpu_kernels\n'
              'RefConv(4, 4, 3)(torch.randn(1, 4, 5, 5)).sum().backward()\n'
              'print(cpu_kernels.kernels_status())\n')
    out = _run_in_a_fresh_process(script, tmp_path,
                                  **{cpu_kernels.ENV_VAR: '0'})
    assert 'off (MMCONVPLUG_CPU_KERNELS=0)' in out
    assert not (tmp_path / 'ext').exists()


@pytest.mark.parametrize('machine,capability,flags', [
    ('x86_64', 'AVX512', ['-mavx2', '-mfma']),
    ('x86_64', 'AVX2', ['-mavx2', '-mfma']),
    ('x86_64', 'DEFAULT', []),  # also ATEN_CPU_CAPABILITY=default
    ('aarch64', 'DEFAULT', []),
])
def test_the_build_targets_the_cpus_vector_units(monkeypatch, machine,
                                                 capability, flags):
    """AVX2 + FMA where ATen runs its AVX2 kernels, SSE2 otherwise; the
    module name tells the two builds apart (one extension cache can serve
    machines of both kinds)."""
    monkeypatch.setattr(cpu_kernels.platform, 'machine', lambda: machine)
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability',
                        lambda: capability, raising=False)
    assert cpu_kernels.simd_flags() == flags
    assert cpu_kernels.extension_name().endswith('_avx2') == bool(flags)
    assert torch.__version__.split('+')[0].replace('.', '_') in (
        cpu_kernels.extension_name())
