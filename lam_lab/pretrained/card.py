"""Temporary alias (the background pre-training started before the rename); removed once it has finished."""
from lam_lab.pretrained.model_card import *  # noqa: F401,F403
from lam_lab.pretrained.model_card import make_card, write_card  # noqa: F401
