"""``FoldHook``: validate and test the folded model, leave training untouched.

Before each validation / test epoch the hook folds a **copy** of the model
(:func:`mmconvplug.fold_model`) and makes it the model the loop runs
(``runner.model``); after the epoch it puts the trained model back, exactly
the object it was (DDP wrapper included). The training model, its optimizer
state and its gradients are never touched, and folding preserves the RNG
state, so a seeded run trains identically with or without the hook.

Ordering: ``EMAHook`` swaps the EMA weights into the model in
``before_val_epoch`` / ``before_test_epoch`` (priority ``NORMAL`` or
higher in mmdet configs); this hook runs at ``BELOW_NORMAL``, after it, so
it folds the weights that are to be evaluated (the EMA ones when EMA is on).
An ``EMAHook`` ordered after this hook is refused in ``before_run``
(:class:`FoldHookOrderError`), since it would fold the raw weights.
It restores in ``after_*_epoch``, still at ``BELOW_NORMAL``: before
``CheckpointHook`` (``VERY_LOW``) saves a "best" checkpoint from
``runner.model``, which is then the trained model again.

On the first batch of each folded loop it can verify the fold
(:func:`mmconvplug.verify_fold`; a relative error above ``tolerance`` stops
the run with :class:`FoldVerificationError`) and, once per run, log
parameters and FLOPs (mmengine ``FlopAnalyzer``) and the inference time of
the trained and the folded model.
"""
import functools
from typing import Optional

import torch
from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import get_priority

from mmconvplug.analysis import (
    TensorModeForward,
    count_flops,
    count_parameters,
    eval_mode,
    format_table,
    interleaved_medians,
    prepare_inputs,
)
from mmconvplug.fold import DEFAULT_FOLD_TOLERANCE, fold_model, verify_fold
from mmconvplug.fold.fold_model import preserved_rng_state
from mmconvplug.registry import HOOKS


class FoldVerificationError(RuntimeError):
    """The folded model's outputs are further from the trained ones than allowed."""


class FoldHookOrderError(ValueError):
    """An ``EMAHook`` runs after ``FoldHook``, which would fold raw weights."""


@HOOKS.register_module()
class FoldHook(Hook):
    """Fold a copy of the model before validation and test.

    Args:
        fuse_bn: also fuse BatchNorms into the convs before them.
        fold_val: evaluate a folded copy in every validation.
        fold_test: evaluate a folded copy in test.
        verify: on the first batch of each folded loop, compare the folded
            and the trained model's outputs.
        tolerance: largest allowed relative error ``max|a-b| / max|a|``
            over the compared outputs (features and raw head outputs).
        log_complexity: once per run, log parameters, FLOPs and inference
            time of the trained and the folded model on the first batch.
        timing_iters: interleaved forwards timed per model for that log
            (medians reported).
    """

    priority = 'BELOW_NORMAL'

    def __init__(self,
                 fuse_bn: bool = False,
                 fold_val: bool = True,
                 fold_test: bool = True,
                 verify: bool = True,
                 tolerance: float = DEFAULT_FOLD_TOLERANCE,
                 log_complexity: bool = True,
                 timing_iters: int = 3) -> None:
        if not isinstance(tolerance, (int, float)) or not tolerance > 0:
            raise ValueError(
                f'FoldHook: tolerance must be a positive number (a relative '
                f'error, e.g. {DEFAULT_FOLD_TOLERANCE:g}), got {tolerance!r}.')
        if not isinstance(timing_iters, int) or timing_iters < 1:
            raise ValueError(
                f'FoldHook: timing_iters must be an int >= 1, got '
                f'{timing_iters!r}.')
        self.fuse_bn = fuse_bn
        self.fold_val = fold_val
        self.fold_test = fold_test
        self.verify = verify
        self.tolerance = float(tolerance)
        self.log_complexity = log_complexity
        self.timing_iters = timing_iters
        self._runner_model = None  # what runner.model was before the swap
        self._trained = None  # the unwrapped trained model
        self._folded = None
        self._first_batch_pending = False
        self._complexity_logged = False
        self.last_verification = None
        self.last_report = None

    def before_run(self, runner) -> None:
        """Refuse an ``EMAHook`` that would swap its weights in after the fold.

        Raises:
            FoldHookOrderError: an ``EMAHook`` comes after this hook in
                ``runner.hooks``; the folded copy would hold the raw weights
                while validation without the hook uses the EMA ones.
        """
        if not (self.fold_val or self.fold_test):
            return
        hooks = list(runner.hooks)
        mine = next(i for i, hook in enumerate(hooks) if hook is self)
        late = [hook for hook in hooks[mine + 1:] if isinstance(hook, EMAHook)]
        if late:
            raise FoldHookOrderError(
                f'FoldHook (priority {get_priority(self.priority)}) runs '
                f'before {type(late[0]).__name__} (priority '
                f'{get_priority(late[0].priority)}): it would fold and '
                'evaluate the raw weights, not the EMA weights the validation '
                'is meant to use. Give the EMAHook a priority that runs first '
                "(a smaller number, e.g. priority=49 as mmdet's configs do), "
                'or leave FoldHook at its default priority '
                "'BELOW_NORMAL' (60).")

    # -- swap in / out -------------------------------------------------
    def _swap_in_folded(self, runner, stage: str) -> None:
        runner_model = runner.model
        trained = runner_model.module if is_model_wrapper(
            runner_model) else runner_model
        folded, report = fold_model(
            trained, fuse_bn=self.fuse_bn, return_report=True)
        self.last_report = report
        runner.logger.info(f'FoldHook ({stage}): {report.summary()}')
        if report.nothing_to_fold:
            return
        for parameter in folded.parameters():
            parameter.grad = None
            parameter.requires_grad_(False)
        folded.eval()
        self._runner_model, self._trained, self._folded = (runner_model,
                                                           trained, folded)
        self._first_batch_pending = True
        runner.model = folded

    def _restore(self, runner) -> None:
        if self._runner_model is not None:
            runner.model = self._runner_model
        self._runner_model = self._trained = self._folded = None
        self._first_batch_pending = False

    def before_val_epoch(self, runner) -> None:
        if self.fold_val:
            self._swap_in_folded(runner, 'val')

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._restore(runner)

    def before_test_epoch(self, runner) -> None:
        if self.fold_test:
            self._swap_in_folded(runner, 'test')

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._restore(runner)

    # -- checks on the first batch ---------------------------------------
    def before_val_iter(self, runner, batch_idx: int,
                        data_batch=None) -> None:
        self._check_first_batch(runner, data_batch)

    def before_test_iter(self, runner, batch_idx: int,
                         data_batch=None) -> None:
        self._check_first_batch(runner, data_batch)

    def _check_first_batch(self, runner, data_batch) -> None:
        if not self._first_batch_pending or data_batch is None:
            return
        self._first_batch_pending = False
        with preserved_rng_state():
            if self.verify:
                self._verify(runner, data_batch)
            if self.log_complexity and not self._complexity_logged:
                self._complexity_logged = True
                self._log_complexity(runner, data_batch)

    def _verify(self, runner, data_batch) -> None:
        result = verify_fold(self._trained, self._folded, data_batch)
        self.last_verification = result
        runner.logger.info(f'FoldHook: {result} (tolerance {self.tolerance:g})')
        if not result.within(self.tolerance):
            worst = result.worst()
            raise FoldVerificationError(
                f'FoldHook: the folded model differs from the trained one by '
                f'a relative error of {result.max_rel_error:.3g} (output '
                f'{worst[0]}), above tolerance={self.tolerance:g}. A conv '
                "variant's fold() is wrong or numerically unstable; check it "
                'with mmconvplug.verify_fold, raise FoldHook(tolerance=...) '
                'if the error is expected, or test with --no-fold.')

    def _log_complexity(self, runner, data_batch) -> None:
        inputs, samples = prepare_inputs(self._trained, data_batch)
        models = dict(trained=self._trained, folded=self._folded)
        rows = []
        with eval_mode(*models.values()), torch.no_grad():
            forwards = {name: functools.partial(
                TensorModeForward(model, samples), inputs)
                for name, model in models.items()}
            seconds = interleaved_medians(forwards, self.timing_iters,
                                          cuda=inputs.is_cuda)
            for name, model in models.items():
                try:
                    flops = f'{count_flops(model, inputs, samples) / 1e9:.3f}'
                except RuntimeError as error:  # jit trace limits
                    flops = f'n/a ({error})'.splitlines()[0]
                rows.append([name, f'{count_parameters(model) / 1e6:.3f}',
                             flops, f'{seconds[name] * 1e3:.1f}'])
        table = format_table(['model', 'M params', 'GFLOPs', 'ms/forward'],
                             rows)
        runner.logger.info(
            'FoldHook: model complexity on the first batch (input '
            f'{tuple(inputs.shape)}, median of {self.timing_iters} '
            f'interleaved forwards):\n{table}\n  folded / trained '
            f'inference time: {seconds["folded"] / seconds["trained"]:.3f}')
