# mmpretrain runtime (as mmpretrain 1.2 configs/_base_/default_runtime.py)
default_scope = 'mmpretrain'
# upstream tools and APIs (inferencers, browse_dataset, ...) import windowlab from the config
custom_imports = dict(imports=['windowlab'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # checkpoints also keep the random generator states: --resume continues the same stream
    rng_state=dict(type='RNGStateHook'),
    finite_loss=dict(type='FiniteLossHook'),  # stop on a NaN/inf loss (stop=False: train on)
    visualization=dict(type='VisualizationHook', enable=False))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)

# tools/test.py --tta averages the class scores of the dataset's tta_pipeline views
# (windowlab's ClsScoreTTAModel: mmpretrain's AverageClsScoreTTA with the label of those scores)
tta_model = dict(type='ClsScoreTTAModel')
