from .toy import ADE_CLASSES, IN_CLASSES, SHAPES, make_toy_ade, make_toy_coco, make_toy_data, make_toy_imagenet

__all__ = ['ADE_CLASSES', 'IN_CLASSES', 'SHAPES', 'make_toy_ade', 'make_toy_coco', 'make_toy_data',
           'make_toy_imagenet']
