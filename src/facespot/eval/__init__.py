"""Evaluation: the official WIDER FACE protocol, FDDB discrete ROC, PR plots."""
