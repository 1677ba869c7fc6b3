"""windowlab: window- and sparse-attention vision backbones for the OpenMMLab stack."""
import os

from setuptools import find_packages, setup

# One folder per paper under projects/. They install as ``windowlab.projects.<paper>`` (a name
# nobody else's ``projects`` package can shadow); windowlab/projects/__init__.py explains how a
# checkout maps the same name onto the folder.
PROJECTS = sorted(d for d in os.listdir('projects')
                  if os.path.isfile(os.path.join('projects', d, '__init__.py')))
PROJECT_PACKAGES = {f'windowlab.projects.{name}': f'projects/{name}' for name in PROJECTS}


def read_requirements(name):
    """The package list in ``requirements/<name>.txt`` (tools/install.py reads the same files)."""
    with open(os.path.join('requirements', f'{name}.txt')) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


# Optional extras: ``pip install windowlab[tests]``; one file each under requirements/.
EXTRAS = sorted(os.path.splitext(f)[0] for f in os.listdir('requirements') if f != 'runtime.txt')


setup(
    name='windowlab',
    version='0.1.0',
    description='Window- and sparse-attention vision models for mmpretrain, mmdet and mmseg',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=('windowlab', 'windowlab.*')) + sorted(PROJECT_PACKAGES),
    package_dir=PROJECT_PACKAGES,
    install_requires=read_requirements('runtime'),
    extras_require={name: read_requirements(name) for name in EXTRAS},
    include_package_data=True,
    zip_safe=False,
)
