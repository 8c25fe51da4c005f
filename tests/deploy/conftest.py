"""Trained tiny models shared by the deploy tests of one session (training
is the slow part: each case trains once)."""
import json

import pytest
from deploy_trained_models import derive_faster_rcnn, train_case


@pytest.fixture(scope='session')
def trained_model(tmp_path_factory):
    """``trained_model(case, conv_cfg=None) -> (config, checkpoint,
    validation metrics)``, trained once per session (DO-Conv by
    default)."""
    cache = {}

    def get(case, conv_cfg=None):
        key = (case, json.dumps(conv_cfg, sort_keys=True))
        if key not in cache:
            root = str(tmp_path_factory.mktemp(f'trained-{case}'))
            if case == 'faster_rcnn':
                config, checkpoint, _ = get('mask_rcnn', conv_cfg)
                cache[key] = derive_faster_rcnn(config, checkpoint, root,
                                                conv_cfg)
            else:
                cache[key] = train_case(case, root, conv_cfg)
        return cache[key]

    return get


@pytest.fixture(scope='session')
def exported_tiny(tmp_path_factory):
    """``exported_tiny(case, build, conv_cfg=None)``: ``build(case,
    tmp_path, conv_cfg)`` (a test module's export helper) run once per
    session for that case; tests must not change what it returns."""
    cache = {}

    def get(case, build, conv_cfg=None):
        key = (case, build.__module__, json.dumps(conv_cfg, sort_keys=True))
        if key not in cache:
            cache[key] = build(case, tmp_path_factory.mktemp(f'export-{case}'),
                               conv_cfg)
        return cache[key]

    return get
