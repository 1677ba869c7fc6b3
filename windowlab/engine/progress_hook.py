"""A progress bar over the test set (``tools/test.py`` adds it), with rate and ETA."""
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.utils import ProgressBar


@HOOKS.register_module()
class TestProgressHook(Hook):
    """Draws ``[>>>   ] done/total, rate, elapsed, ETA`` on the main process, one step per
    batch (counted in images of this process's share)."""

    priority = 'VERY_LOW'

    def __init__(self):
        self._bar = None

    def before_test_epoch(self, runner):
        if is_main_process():
            self._bar = ProgressBar(len(runner.test_dataloader.sampler))

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self._bar is not None:
            self._bar.update(len(outputs))

    def after_test_epoch(self, runner, metrics=None):
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar = None
