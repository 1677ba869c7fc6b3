"""windowlab: window- and sparse-attention vision backbones for the OpenMMLab stack."""
import os

from setuptools import find_packages, setup

# One folder per paper under projects/; each is a plugin that `import windowlab` loads.
PROJECTS = sorted(d for d in os.listdir('projects')
                  if os.path.isfile(os.path.join('projects', d, '__init__.py')))


def read_requirements(path='requirements.txt'):
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


setup(
    name='windowlab',
    version='0.1.0',
    description='Window- and sparse-attention vision models for mmpretrain, mmdet and mmseg',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=('windowlab', 'windowlab.*', 'projects', 'projects.*')),
    install_requires=read_requirements(),
    # Each paper in projects/ announces itself here; `import windowlab` imports every
    # registered project so that its modules are available to configs (see windowlab/registry.py).
    entry_points={
        'windowlab.projects': [f'{name} = projects.{name}' for name in PROJECTS],
    },
    include_package_data=True,
    zip_safe=False,
)
