"""Circular-shift consistency of classifiers and segmentors (Ding et al., 2023; Zhang, 2019).

* Classification: the fraction of images whose top-1 class is the same for two independent
  random circular shifts of the image. The paper draws each shift from ``0..14`` px per axis
  (``shift_range=(0, 14)``); the APS protocol (Chaman & Dokmanic, 2021) from ``-32..32`` px.
* Segmentation: the fraction of pixels whose predicted class is unchanged when the image is
  circularly shifted, segmented and the prediction shifted back.

The functions take a callable that maps a preprocessed batch ``[B, C, H, W]`` to logits
(``[B, K]`` or ``[B, K, H, W]``). :class:`ShiftConsistencyHook` applies them inside
``runner.test()`` (e.g. ``tools/test.py``) and adds the results to the test metrics::

    custom_hooks = [dict(type='ShiftConsistencyHook', shift_range=(0, 14))]
"""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..models.layers.polyphase import roll_per_sample

PROTOCOLS = {'paper': (0, 14), 'aps': (-32, 32)}


def sample_shifts(batch_size, shift_range, generator=None):
    """``[B, 2]`` integer shifts drawn uniformly from ``shift_range`` (inclusive) per axis."""
    low, high = shift_range
    if low > high:
        raise ValueError(f'shift_range {shift_range} must be (low, high) with low <= high')
    return torch.randint(low, high + 1, (batch_size, 2), generator=generator)


@torch.no_grad()
def classification_agreement(logits_fn, inputs, shift_range=(0, 14), generator=None):
    """Per-image top-1 agreement between two random circular shifts.

    Args:
        logits_fn (callable): ``[B, C, H, W] -> [B, K]``.
        inputs (Tensor): ``[B, C, H, W]`` preprocessed images.
        shift_range (tuple[int, int]): inclusive range of each shift component (px).

    Returns:
        BoolTensor: ``[B]``, True where both shifts give the same class.
    """
    b = inputs.shape[0]
    first = logits_fn(roll_per_sample(inputs, sample_shifts(b, shift_range, generator)))
    second = logits_fn(roll_per_sample(inputs, sample_shifts(b, shift_range, generator)))
    return (first.argmax(1) == second.argmax(1)).cpu()


@torch.no_grad()
def segmentation_agreement(logits_fn, inputs, shift_range=(-32, 32), generator=None):
    """Per-image fraction of pixels whose class survives shift -> segment -> un-shift.

    Args:
        logits_fn (callable): ``[B, C, H, W] -> [B, K, H, W]`` (logits at input size).

    Returns:
        Tensor: ``[B]`` fractions in ``[0, 1]``.
    """
    shifts = sample_shifts(inputs.shape[0], shift_range, generator)
    pred = logits_fn(inputs).argmax(1)
    pred_shifted = logits_fn(roll_per_sample(inputs, shifts)).argmax(1)
    unshifted = roll_per_sample(pred_shifted, -shifts.to(pred.device), hw_dims=(1, 2))
    return (pred == unshifted).float().mean((1, 2)).cpu()


@HOOKS.register_module()
class ShiftConsistencyHook(Hook):
    """Adds ``{prefix}/consistency`` (in %) to the metrics of ``runner.test()``.

    For an mmpretrain classifier (``model(inputs, mode='tensor')`` gives logits) it is the
    top-1 agreement between two random shifts; for an mmseg segmentor (``encode_decode``) the
    fraction of unchanged pixels.

    Args:
        shift_range (tuple[int, int] | str): inclusive per-axis range, or ``'paper'``
            (``(0, 14)``) / ``'aps'`` (``(-32, 32)``).
        seed (int): seed of the shift generator (same shifts in every run).
        prefix (str): metric name prefix.
    """

    priority = 'NORMAL'  # before LoggerHook, which prints the metrics

    def __init__(self, shift_range='paper', seed=0, prefix='shift'):
        self.shift_range = PROTOCOLS[shift_range] if isinstance(shift_range, str) else tuple(
            shift_range)
        self.seed = seed
        self.prefix = prefix
        self._scores = []
        self._generator = None

    def before_test_epoch(self, runner):
        self._scores = []
        self._generator = torch.Generator().manual_seed(self.seed)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        data = model.data_preprocessor(data_batch, False)
        inputs = data['inputs']
        if hasattr(model, 'encode_decode'):  # mmseg segmentor
            metas = [sample.metainfo for sample in data['data_samples']]
            scores = segmentation_agreement(lambda t: model.encode_decode(t, metas), inputs,
                                            self.shift_range, self._generator)
        else:
            scores = classification_agreement(lambda t: model(t, mode='tensor'), inputs,
                                              self.shift_range, self._generator).float()
        self._scores.append(scores)

    def after_test_epoch(self, runner, metrics=None):
        if not self._scores or metrics is None:
            return
        value = 100.0 * torch.cat(self._scores).mean().item()
        metrics[f'{self.prefix}/consistency'] = value
        runner.message_hub.update_scalar(f'test/{self.prefix}/consistency', value)
        runner.logger.info(f'circular-shift consistency {self.shift_range}: {value:.2f}%')
