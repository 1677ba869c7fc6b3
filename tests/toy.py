"""Helpers for tests that run configs on the generated toy datasets."""
from mmengine.config import Config, ConfigDict

TOY_DATASETS = ('toy-coco', 'toy-ade', 'toy-in')


def toy_dataset_of(config_name):
    return next((name for name in TOY_DATASETS if name in config_name), None)


def redirect_data(cfg, data_root):
    """Point every ``data/toy-*`` path of ``cfg`` at ``data_root/toy-*`` (in place)."""

    def fix(value):
        if isinstance(value, str) and value.startswith('data/toy-'):
            return str(data_root) + '/' + value[len('data/'):]
        if isinstance(value, (dict, ConfigDict)):
            for k in list(value):
                value[k] = fix(value[k])
        elif isinstance(value, list):
            return [fix(v) for v in value]
        return value

    fix(cfg._cfg_dict)
    return cfg


def quick_training_cfg(path, data_root, work_dir, iters, checkpoint_interval=None, num_workers=0):
    """A toy config set up for a short CPU run: ``iters`` iterations, logging every one,
    no validation, constant learning rate after the config's own optimizer settings."""
    cfg = Config.fromfile(str(path))
    redirect_data(cfg, data_root)
    cfg.work_dir = str(work_dir)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.param_scheduler = []
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=checkpoint_interval or iters + 1)
    cfg.default_hooks.pop('visualization', None)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0, deterministic=True)
    loader = cfg.train_dataloader
    loader.num_workers = num_workers
    loader.persistent_workers = num_workers > 0
    if loader.get('sampler', {}).get('type') == 'DefaultSampler':
        loader.sampler = dict(type='InfiniteSampler', shuffle=True)
    return cfg
