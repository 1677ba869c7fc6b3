"""Deterministic toy datasets in the real on-disk formats (seconds to generate).

* ``toy-coco``: COCO 2017 instances layout (``train2017/``, ``val2017/``, JPEG images,
  ``annotations/instances_{train,val}2017.json`` with boxes and polygon masks).
* ``toy-ade``: ADE20K layout (``images/{training,validation}/*.jpg``,
  ``annotations/{training,validation}/*.png``); label 0 marks unlabelled pixels (thin
  object outlines), as ADE20K's "other", and is dropped by ``reduce_zero_label``.
* ``toy-in``: ImageNet-style classification (``{train,val}/<class>/*.jpg`` and
  ``meta/{train,val}.txt`` with ``relative/path label`` lines).

Objects are coloured geometric shapes whose class is their shape; colours are jittered so
that a model has to look at shape, not only colour. The same seed gives the same files.
"""
import json
import os

import cv2
import numpy as np

SHAPES = ('square', 'disc', 'triangle')
SHAPE_COLORS = {'square': (220, 60, 60), 'disc': (60, 200, 80), 'triangle': (70, 90, 230)}
ADE_CLASSES = ('wall', 'floor') + SHAPES
IN_CLASSES = SHAPES + ('ring',)


def _polygon(shape, cx, cy, r, rng):
    """Polygon (N x 2 float array) of a shape with centre ``(cx, cy)`` and radius ``r``."""
    if shape == 'square':
        a = rng.uniform(0, np.pi / 2)
        angles = a + np.arange(4) * np.pi / 2 + np.pi / 4
    elif shape == 'triangle':
        angles = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3
    else:  # disc
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)


def _jitter(color, rng, amount=40):
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


def _background(h, w, rng):
    """Textured two-region background (``wall`` above ``floor``); returns image and the split row."""
    img = np.empty((h, w, 3), np.uint8)
    split = int(h * rng.uniform(0.35, 0.65))
    img[:split] = _jitter((170, 160, 140), rng, 25)
    img[split:] = _jitter((90, 80, 70), rng, 25)
    noise = rng.normal(0, 8, (h, w, 3))
    return np.clip(img + noise, 0, 255).astype(np.uint8), split


def _place_objects(h, w, rng, max_objects, min_r=10, max_r=24):
    """Non-overlapping (shape, polygon) pairs."""
    objects, discs = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            r = rng.uniform(min_r, max_r)
            cx, cy = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, h - r - 2)
            if all(np.hypot(cx - x, cy - y) > r + q + 4 for x, y, q in discs):
                shape = SHAPES[int(rng.integers(len(SHAPES)))]
                objects.append((shape, _polygon(shape, cx, cy, r, rng)))
                discs.append((cx, cy, r))
                break
    return objects


def _write_jpg(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])


def make_toy_coco(root, num_train=48, num_val=16, image_size=(128, 160), max_objects=3, seed=0):
    """Write a COCO-format instance segmentation toy set under ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    h, w = image_size
    categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(SHAPES)]
    ann_id = 1
    for split, count in (('train2017', num_train), ('val2017', num_val)):
        images, annotations = [], []
        for i in range(count):
            image_id = len(images) + 1
            img, _ = _background(h, w, rng)
            for shape, poly in _place_objects(h, w, rng, max_objects):
                cv2.fillPoly(img, [np.round(poly).astype(np.int32)], _jitter(SHAPE_COLORS[shape], rng))
                mask = np.zeros((h, w), np.uint8)
                cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
                ys, xs = np.nonzero(mask)
                x0, y0 = float(xs.min()), float(ys.min())
                annotations.append(dict(
                    id=ann_id, image_id=image_id, category_id=SHAPES.index(shape) + 1, iscrowd=0,
                    segmentation=[[round(float(v), 2) for v in np.round(poly, 2).reshape(-1)]],
                    area=float(mask.sum()),
                    bbox=[x0, y0, float(xs.max()) - x0 + 1, float(ys.max()) - y0 + 1]))
                ann_id += 1
            name = f'{image_id:012d}.jpg'
            _write_jpg(os.path.join(root, split, name), img)
            images.append(dict(id=image_id, file_name=name, height=h, width=w))
        os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
        with open(os.path.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return root


def make_toy_ade(root, num_train=48, num_val=16, image_size=(128, 128), max_objects=3, seed=0):
    """Write an ADE20K-format semantic segmentation toy set under ``root``; returns ``root``.

    PNG labels: 0 = unlabelled (object outlines), ``k >= 1`` = ``ADE_CLASSES[k - 1]``.
    """
    rng = np.random.default_rng(seed)
    h, w = image_size
    for split, count in (('training', num_train), ('validation', num_val)):
        for i in range(count):
            img, split_row = _background(h, w, rng)
            label = np.full((h, w), ADE_CLASSES.index('floor') + 1, np.uint8)
            label[:split_row] = ADE_CLASSES.index('wall') + 1
            for shape, poly in _place_objects(h, w, rng, max_objects):
                pts = [np.round(poly).astype(np.int32)]
                cv2.fillPoly(img, pts, _jitter(SHAPE_COLORS[shape], rng))
                cv2.fillPoly(label, pts, ADE_CLASSES.index(shape) + 1)
                cv2.polylines(label, pts, True, 0, thickness=1)
            name = f'ADE_{split[0]}_{i:08d}'
            _write_jpg(os.path.join(root, 'images', split, name + '.jpg'), img)
            os.makedirs(os.path.join(root, 'annotations', split), exist_ok=True)
            cv2.imwrite(os.path.join(root, 'annotations', split, name + '.png'), label)
    return root


def make_toy_imagenet(root, num_train=16, num_val=4, image_size=(64, 64), seed=0):
    """Write an ImageNet-style classification toy set (one centred shape per image);
    ``num_train``/``num_val`` images per class."""
    rng = np.random.default_rng(seed)
    h, w = image_size
    os.makedirs(os.path.join(root, 'meta'), exist_ok=True)
    for split, per_class in (('train', num_train), ('val', num_val)):
        lines = []
        for label, cls in enumerate(IN_CLASSES):
            for i in range(per_class):
                img, _ = _background(h, w, rng)
                r = rng.uniform(0.25, 0.4) * min(h, w)
                cx, cy = w / 2 + rng.uniform(-6, 6), h / 2 + rng.uniform(-6, 6)
                color = _jitter((200, 120, 60), rng, 60)
                if cls == 'ring':
                    cv2.circle(img, (int(cx), int(cy)), int(r), color, thickness=max(2, int(r / 3)))
                else:
                    poly = np.round(_polygon(cls, cx, cy, r, rng)).astype(np.int32)
                    cv2.fillPoly(img, [poly], color)
                rel = f'{cls}/{cls}_{i:05d}.jpg'
                _write_jpg(os.path.join(root, split, rel), img)
                lines.append(f'{rel} {label}')
        with open(os.path.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root


TOY_DATASETS = {'toy-coco': make_toy_coco, 'toy-ade': make_toy_ade, 'toy-in': make_toy_imagenet}


def make_toy_data(root='data', names=tuple(TOY_DATASETS), **kwargs):
    """Generate the named toy sets under ``root`` (``root/toy-coco`` ...); returns their paths.
    ``kwargs`` (``num_train``, ``num_val``, ``seed``) go to every generator."""
    return {name: TOY_DATASETS[name](os.path.join(root, name), **kwargs) for name in names}
