# mmseg runtime (as mmseg 1.2 configs/_base_/default_runtime.py)
default_scope = 'mmseg'
# upstream tools and APIs (inferencers, browse_dataset, ...) import windowlab from the config
custom_imports = dict(imports=['windowlab'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)

log_level = 'INFO'
load_from = None
resume = False

# tools/test.py --tta averages the segmentation logits of the dataset's tta_pipeline views
tta_model = dict(type='SegTTAModel')

