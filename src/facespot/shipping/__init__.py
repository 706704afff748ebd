"""Shipping a trained detector: calibrate its score scale, then export and package it.

A step between training and use (``scripts/ship_model.py`` drives it): it measures a trained
model through :class:`facespot.runtime.Detector`'s public calls, on images held out of training,
and never trains. It sits beside ``train`` and ``runtime`` in the layering (cli -> serve /
distributed -> train / runtime / shipping -> eval -> models / data -> core).
"""
