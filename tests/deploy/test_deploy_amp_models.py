"""Models built from the configs, with DO-Conv, under CPU autocast.

For the tiny SSD, Mask R-CNN, DeepLabv3+ and Keypoint R-CNN (its keypoint
head included), in bfloat16 and float16 autocast:

* a training step: the loss is within a stated relative tolerance of the
  float32 loss of the same model on the same batch, gradients land on the
  float32 parameters (float32, finite), and an SGD step keeps them finite;
* evaluation: backbone + neck features within a tolerance of float32, the
  full ``predict`` runs, and the eval-mode kernel cache of DO-Conv is never
  left holding a low-precision kernel (a float32 forward after the autocast
  forward equals the one before it, bit for bit).

GPU AMP (mmengine's ``AmpOptimWrapper``, ``tools/train.py --amp``) is
tested in ``test_deploy_amp_cuda.py``.

mmcv 2.1.0's CPU kernels of NMS and RoIAlign take float32 only (its CUDA
kernels take half): under CPU autocast the RPN, the RoI heads and every
detector's ``predict`` stop there with "expected scalar type Float". These
tests run those two mmcv ops on float32 copies of their inputs
(:func:`mmcv_cpu_ops_in_float32`), the rest of the model in autocast.
"""
import copy
import importlib

import pytest
import torch
from deploy_tiny_models import (
    CASES,
    build_model,
    case_config,
    first_batch,
    make_case_data,
)

from mmconvplug.analysis import flatten_tensors

#: Relative tolerance of the autocast loss against float32. Dense models
#: (SSD, DeepLabv3+) measured <= 2.5e-4 (bf16) / 4e-5 (fp16); two-stage
#: detectors up to 2.2e-2 / 1.3e-2: their proposals come from low-precision
#: boxes, so a few RoIs are sampled and matched differently (a discrete
#: change, not rounding).
LOSS_RTOL = {'ssd': 5e-3, 'deeplabv3plus': 5e-3, 'mask_rcnn': 0.05,
             'keypoint_rcnn': 0.05}
#: Relative tolerance of the backbone + neck features (DO-Conv inside):
#: measured <= 8.5e-3 (bf16, 8-bit mantissa) and 9.3e-4 (fp16, 11 bits).
FEATURE_RTOL = {torch.bfloat16: 0.03, torch.float16: 0.005}

def _cpu_autocast_supports(dtype) -> bool:
    """torch < 2.4 CPU autocast takes bfloat16 only."""
    try:
        with torch.autocast('cpu', dtype=dtype):
            pass
    except RuntimeError:
        return False
    return True


DTYPES = [torch.bfloat16,
          pytest.param(torch.float16, marks=pytest.mark.skipif(
              not _cpu_autocast_supports(torch.float16),
              reason='CPU float16 autocast needs torch >= 2.4'))]


@pytest.fixture(autouse=True)
def mmcv_cpu_ops_in_float32(monkeypatch):
    """mmcv's CPU NMS / RoIAlign kernels on float32 copies of their inputs."""
    nms_module = importlib.import_module('mmcv.ops.nms')
    roi_align_module = importlib.import_module('mmcv.ops.roi_align')
    nms, roi_align = nms_module.nms, roi_align_module.roi_align

    def nms_float32(boxes, scores, *args, **kwargs):
        return nms(boxes.float(), scores.float(), *args, **kwargs)

    def roi_align_float32(inputs, rois, *args, **kwargs):
        # in the input's dtype, as mmcv's CUDA kernel returns it
        return roi_align(inputs.float(), rois.float(), *args,
                         **kwargs).to(inputs.dtype)

    monkeypatch.setattr(nms_module, 'nms', nms_float32)
    monkeypatch.setattr(roi_align_module, 'roi_align', roi_align_float32)


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    """Per case: the config, a preprocessed train batch and a val batch."""
    cache = {}

    def get(name):
        if name not in cache:
            root = str(tmp_path_factory.mktemp(f'amp_{name}'))
            cfg = case_config(name, make_case_data(name, root))
            model = build_model(cfg)
            train = model.data_preprocessor(first_batch(cfg, 'train'), True)
            val = first_batch(cfg, 'val')
            cache[name] = (cfg, train, val)
        return cache[name]

    return get


def _loss(model, data, seed=0):
    torch.manual_seed(seed)  # samplers draw random proposals
    losses = model(**copy.deepcopy(data), mode='loss')
    loss, _ = model.parse_losses(losses)
    return loss


def _features(model, inputs):
    return [t.float() for _, t in flatten_tensors(model.extract_feat(inputs))]


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item()


@pytest.mark.parametrize('dtype', DTYPES, ids=['bf16', 'fp16'])
@pytest.mark.parametrize('case', sorted(CASES))
def test_train_step_under_autocast(prepared, case, dtype):
    cfg, data, _ = prepared(case)
    reference = build_model(cfg).train()
    model = copy.deepcopy(reference)
    loss32 = _loss(reference, data)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with torch.autocast('cpu', dtype=dtype):
        loss = _loss(model, data)
    loss.backward()

    assert torch.isfinite(loss)
    rel = abs(loss.item() - loss32.item()) / abs(loss32.item())
    assert rel < LOSS_RTOL[case], (
        f'{case} {dtype}: loss {loss.item():.5f} vs float32 '
        f'{loss32.item():.5f} (relative {rel:.3g})')
    with_grad = [(n, p) for n, p in model.named_parameters()
                 if p.grad is not None]
    assert any(n.endswith('.D_delta') for n, _ in with_grad), (
        'no gradient reached DO-Conv')
    for name, param in model.named_parameters():
        assert param.dtype == torch.float32, name
    for name, param in with_grad:
        assert param.grad.dtype == torch.float32, name
        assert torch.isfinite(param.grad).all(), name
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize('dtype', DTYPES, ids=['bf16', 'fp16'])
@pytest.mark.parametrize('case', sorted(CASES))
def test_eval_under_autocast(prepared, case, dtype):
    cfg, _, batch = prepared(case)
    model = build_model(cfg).eval()
    inputs = model.data_preprocessor(copy.deepcopy(batch), False)['inputs']
    with torch.no_grad():
        before = _features(model, inputs)
        with torch.autocast('cpu', dtype=dtype):
            low = _features(model, inputs)
            predictions = model.test_step(copy.deepcopy(batch))
        after = _features(model, inputs)

    # the eval kernel cache did not keep an autocast (low-precision) kernel
    for a, b in zip(before, after):
        assert torch.equal(a, b)
    worst = max(_rel(x, ref) for x, ref in zip(low, before))
    assert worst < FEATURE_RTOL[dtype], f'{case} {dtype}: {worst:.3g}'
    assert len(predictions) == len(batch['inputs'])
    for sample in predictions:
        pred = (sample.pred_instances.scores if 'pred_instances' in sample
                else sample.seg_logits.data)
        assert torch.isfinite(pred.float()).all()


@pytest.mark.parametrize('dtype', DTYPES, ids=['bf16', 'fp16'])
def test_fold_under_autocast_is_done_in_float32(prepared, dtype):
    from mmconvplug.fold import fold_model
    cfg, _, _ = prepared('ssd')
    model = build_model(cfg).eval()
    expected = fold_model(model).state_dict()
    with torch.autocast('cpu', dtype=dtype):
        folded = fold_model(model).state_dict()
    assert folded.keys() == expected.keys()
    for key, value in expected.items():
        assert folded[key].dtype == value.dtype, key
        assert torch.equal(folded[key], value), key
