# mmdet runtime (as mmdet 3.3 configs/_base_/default_runtime.py)
default_scope = 'mmdet'
# upstream tools and APIs (inferencers, browse_dataset, ...) import windowlab from the config
custom_imports = dict(imports=['windowlab'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # checkpoints also keep the random generator states: --resume continues the same stream
    rng_state=dict(type='RNGStateHook'),
    finite_loss=dict(type='FiniteLossHook'),  # stop on a NaN/inf loss (stop=False: train on)
    visualization=dict(type='DetVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False

# tools/test.py --tta: windowlab's InstanceTTAModel is mmdet's DetTTAModel that also merges masks
tta_model = dict(type='InstanceTTAModel',
                 tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
