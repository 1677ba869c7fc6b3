# Mask R-CNN with a small ViTAEv2-VSA (detection variant) on toy-coco
# (python tools/make_toy_data.py): CPU demo and tests.
_base_ = '../swin/mask-rcnn_swin-mini-p4-w7_fpn_toy-coco.py'
vitaev2_vsa_mini = dict(
    embed_dims=(16, 16, 32, 64), token_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1),
    rc_heads=(1, 2, 4, 8), nc_heads=(1, 2, 4, 8), rc_groups=(1, 4, 8, 16),
    nc_groups=(1, 8, 16, 32), wide_pcm=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='ViTAEv2VSA',
        arch=vitaev2_vsa_mini,
        variant='det',
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3)))
